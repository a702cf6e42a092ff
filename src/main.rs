//! The `fleetpin` binary: everything lives in the library, so integration tests and the binary
//! share one code path.

fn main() -> std::process::ExitCode {
    fleetpin::run(std::env::args_os())
}
