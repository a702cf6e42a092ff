//! The `fleetpin` binary: everything lives in the library, so integration tests and the binary
//! share one code path.

fn main() -> std::process::ExitCode {
    // SIGPIPE stays ignored (Rust's default): with its default disposition, an ssh session that
    // ends before fleetpin writes its request would kill fleetpin silently. A closed stdout
    // (`fleetpin history | head`) is handled where stdout is written, in render::term.
    // SAFETY: the first thing the process does, before any thread: SOPS_AGE_KEY* are taken out
    // of the environment so that no child process inherits a key.
    unsafe {
        fleetpin::secrets::take_process_keys();
    }
    fleetpin::run(std::env::args_os())
}
