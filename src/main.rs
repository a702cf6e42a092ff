//! The `fleetpin` binary: everything lives in the library, so integration tests and the binary
//! share one code path.

fn main() -> std::process::ExitCode {
    // `fleetpin history | head` must end quietly when head closes the pipe, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    fleetpin::run(std::env::args_os())
}
