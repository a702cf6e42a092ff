//! The one way test crates run the fleetpin binary. Fleet-free: nothing here reads the fleet's
//! env file, so `cli`, `import`, `hostile`, `history` and `corpus` use it without a fleet.

use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_fleetpin");

/// `fleetpin`, without colours and without the caller's FLEETPIN_FILE (a test names its
/// manifest itself).
pub fn fleetpin() -> Command {
    wrapped(&[])
}

/// `fleetpin()` run in `dir`.
pub fn fleetpin_in(dir: &Path) -> Command {
    let mut c = fleetpin();
    c.current_dir(dir);
    c
}

/// `fleetpin()` under a wrapper program (`faketime +2h`, `sh -c 'ulimit …; exec "$0" "$@"'`,
/// …): the wrapper and its arguments, then the binary.
pub fn wrapped(wrapper: &[&str]) -> Command {
    let mut c = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.env("NO_COLOR", "1").env_remove("FLEETPIN_FILE");
    c
}

/// What a finished run printed, as text.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<Output> for Out {
    fn from(out: Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to its end with no stdin.
pub fn output(cmd: &mut Command) -> Out {
    cmd.stdin(Stdio::null()).output().unwrap().into()
}

/// Runs `cmd` (any program) to its end with no stdin: its trimmed stdout, or a panic with
/// `what` and its stderr when it fails.
pub fn stdout_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `fleetpin ARGS…` in `dir`, to its end.
pub fn run_in(dir: &Path, args: &[&str]) -> Out {
    output(fleetpin_in(dir).args(args))
}
