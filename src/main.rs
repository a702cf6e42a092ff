//! The `fleetpin` binary: everything lives in the library, so integration tests and the binary
//! share one code path.

fn main() -> std::process::ExitCode {
    // `fleetpin history | head` must end quietly when head closes the pipe, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SAFETY: the first thing the process does, before any thread: SOPS_AGE_KEY* are taken out
    // of the environment so that no child process inherits a key.
    unsafe {
        fleetpin::secrets::take_process_keys();
    }
    fleetpin::run(std::env::args_os())
}
