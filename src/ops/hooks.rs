//! The manifest's hooks: the operator's own commands around apply, rollback and promote (a smoke
//! test or a change window before, a cache purge or a ticket after, a page on failure), run on
//! this machine with `sh -c` in the manifest's directory.
//!
//! A hook sees fleetpin's own environment (that is how it gets its tokens; under the console,
//! PATH, LANG and TZ alone) — never the env_file
//! values, which fleetpin reads into containers only — plus what the command is about to do or
//! did: `FLEETPIN_CHANGES` (the event document, `ops::event`) and `FLEETPIN_CHANGES_FILE` (the
//! same, in a file removed afterwards: one environment variable is limited to 128 KiB).
//! Its stdout goes to fleetpin's stderr, so `--format json` keeps one document on stdout.
//! It runs in a process group of its own, so a timeout (or Ctrl-C) stops it and whatever it
//! started.

use crate::ops::event::Event;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The largest `NAME=value` the kernel passes in one environment variable (MAX_ARG_STRLEN).
const ENV_VALUE_MAX: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the {hook} hook failed ({status})")]
    Failed { hook: String, status: String },
    #[error("the {hook} hook did not finish within {after} and was killed")]
    TimedOut { hook: String, after: String },
    #[error("the {hook} hook was interrupted (Ctrl-C)")]
    Interrupted { hook: String },
    #[error("the {hook} hook could not be started: {reason}")]
    Start { hook: String, reason: String },
    #[error("the {hook} hook was not run: {why}")]
    Refused { hook: String, why: String },
}

impl HookError {
    pub fn interrupted(&self) -> bool {
        matches!(self, HookError::Interrupted { .. })
    }
}

/// One hook to run.
pub struct Hook<'a> {
    /// `pre_apply`, …, `on_failure`.
    pub name: &'a str,
    pub command: &'a str,
    /// The manifest's directory.
    pub dir: &'a Path,
    pub timeout: Duration,
    /// The operation's cancellation: a press during the hook stops it.
    pub cancel: &'a crate::cancel::Cancel,
    /// Run with an environment of PATH, LANG and TZ alone (and fleetpin's variables), not the
    /// process's (the console's).
    pub scrubbed: bool,
}

/// What a scrubbed hook keeps of the process's environment.
const KEPT_WHEN_SCRUBBED: [&str; 3] = ["PATH", "LANG", "TZ"];

/// Runs `hook` with `event` in its environment; Ok when it exited 0. `announce` is told what runs.
pub fn run(hook: &Hook<'_>, event: &Event, announce: &dyn Fn(&str)) -> Result<(), HookError> {
    let start = |reason: String| HookError::Start {
        hook: hook.name.into(),
        reason,
    };
    let json = serde_json::to_string(event).expect("an event serialises");
    let file = ChangesFile::write(&json).map_err(|e| start(format!("a temporary file: {e}")))?;
    let first = hook.command.lines().next().unwrap_or("");
    announce(&format!(
        "{} hook: {first}{}",
        hook.name,
        if hook.command.trim_end().contains('\n') {
            " …"
        } else {
            ""
        }
    ));
    // The hook's stdout is fleetpin's stderr.
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| start(e.to_string()))?;
    let mut cmd = Command::new("sh");
    if hook.scrubbed {
        cmd.env_clear();
        for k in KEPT_WHEN_SCRUBBED {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
    }
    cmd.arg("-c")
        .arg(hook.command)
        .current_dir(hook.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .env("FLEETPIN_HOOK", hook.name)
        .env("FLEETPIN_COMMAND", &event.command)
        .env("FLEETPIN_PLATFORM", &event.platform)
        .env("FLEETPIN_ENVIRONMENT", &event.environment)
        .env("FLEETPIN_COMMIT", &event.commit)
        .env("FLEETPIN_USER", &event.who)
        .env("FLEETPIN_CHANGES_FILE", &file.path)
        .env_remove("FLEETPIN_CHANGES")
        .env_remove("FLEETPIN_RESULT")
        .env_remove("FLEETPIN_FROM_ENVIRONMENT")
        .process_group(0);
    if "FLEETPIN_CHANGES=".len() + json.len() < ENV_VALUE_MAX {
        cmd.env("FLEETPIN_CHANGES", &json);
    }
    if let Some(r) = event.result {
        let r = serde_json::to_value(r).expect("an outcome serialises");
        cmd.env("FLEETPIN_RESULT", r.as_str().unwrap_or_default());
    }
    if let Some(f) = &event.from_environment {
        cmd.env("FLEETPIN_FROM_ENVIRONMENT", f);
    }
    let presses = hook.cancel.presses();
    let mut child = cmd.spawn().map_err(|e| start(e.to_string()))?;
    let group = child.id() as i32;
    let deadline = Instant::now() + hook.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(start(e.to_string())),
        }
        if hook.cancel.presses() > presses {
            stop_group(group, &mut child);
            return Err(HookError::Interrupted {
                hook: hook.name.into(),
            });
        }
        if Instant::now() >= deadline {
            kill_group(group);
            let _ = child.wait();
            return Err(HookError::TimedOut {
                hook: hook.name.into(),
                after: humantime::format_duration(hook.timeout).to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(file);
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            hook: hook.name.into(),
            status: match (status.code(), status.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                _ => status.to_string(),
            },
        })
    }
}

fn kill_group(group: i32) {
    // SAFETY: kill(2) on the hook's own process group (the hook leads it: `process_group(0)`).
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Ctrl-C: what the terminal would have done had the hook been in its foreground group, then,
/// after a grace of 5 s, SIGKILL.
fn stop_group(group: i32, child: &mut std::process::Child) {
    // SAFETY: as in `kill_group`.
    unsafe {
        libc::kill(-group, libc::SIGINT);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(group);
    let _ = child.wait();
}

/// The event in a private temporary file (mode 0600), removed when dropped.
struct ChangesFile {
    path: PathBuf,
}

impl ChangesFile {
    fn write(json: &str) -> std::io::Result<ChangesFile> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let mut last = None;
        for _ in 0..16 {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!(
                "fleetpin-changes-{}-{}-{n}.json",
                std::process::id(),
                crate::host::report::now_millis()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let file = ChangesFile { path };
                    f.write_all(json.as_bytes())?;
                    f.write_all(b"\n")?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free name")))
    }
}

impl Drop for ChangesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new("apply", "acme", "prod", "uncommitted", "ops@acme.test")
    }

    fn hook<'a>(command: &'a str, dir: &'a Path, timeout: Duration) -> Hook<'a> {
        static NEVER: std::sync::OnceLock<crate::cancel::Cancel> = std::sync::OnceLock::new();
        Hook {
            name: "pre_apply",
            command,
            dir,
            timeout,
            cancel: NEVER.get_or_init(crate::cancel::Cancel::new),
            scrubbed: false,
        }
    }

    #[test]
    fn a_scrubbed_hook_keeps_path_and_fleetpins_variables_alone() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env.txt");
        let command = format!("env > '{}'", out.display());
        let mut h = hook(&command, dir.path(), Duration::from_secs(10));
        h.scrubbed = true;
        // HOME and USER are in any test process's environment; a scrubbed hook has neither.
        run(&h, &event(), &|_| {}).unwrap();
        let env = std::fs::read_to_string(&out).unwrap();
        let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        assert!(
            names.contains(&"PATH") && names.contains(&"FLEETPIN_ENVIRONMENT"),
            "{env}"
        );
        for name in &names {
            assert!(
                name.starts_with("FLEETPIN_")
                    || ["PATH", "LANG", "TZ", "PWD", "SHLVL", "OLDPWD", "_"].contains(name),
                "{name} reached a scrubbed hook:\n{env}"
            );
        }
    }

    #[test]
    fn a_hook_sees_the_event_and_its_file_which_is_removed_after() {
        let dir = std::env::temp_dir();
        let out = dir.join(format!("fleetpin-hook-test-{}", std::process::id()));
        let cmd = format!(
            "printf '%s|%s|%s|%s\\n' \"$FLEETPIN_HOOK\" \"$FLEETPIN_COMMAND\" \"$FLEETPIN_ENVIRONMENT\" \"$FLEETPIN_USER\" > {o}; \
             echo \"$FLEETPIN_CHANGES\" >> {o}; cat \"$FLEETPIN_CHANGES_FILE\" >> {o}; echo \"$FLEETPIN_CHANGES_FILE\" >> {o}",
            o = out.display()
        );
        run(
            &hook(&cmd, &dir, Duration::from_secs(30)),
            &event(),
            &|_| {},
        )
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pre_apply|apply|prod|ops@acme.test");
        let doc: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(doc["format"], "fleetpin-event/1");
        assert_eq!(lines[1], lines[2], "the file holds the same JSON");
        assert!(!Path::new(lines[3]).exists(), "the file is removed after");
    }

    #[test]
    fn failures_timeouts_and_grandchildren() {
        let dir = std::env::temp_dir();
        let e = run(
            &hook("exit 3", &dir, Duration::from_secs(30)),
            &event(),
            &|_| {},
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "the pre_apply hook failed (exit status 3)"
        );
        // The whole group is killed at the timeout: what the hook started in the background too.
        let pidfile = dir.join(format!("fleetpin-hook-bg-{}", std::process::id()));
        let cmd = format!("sleep 60 & echo $! > {}; sleep 60", pidfile.display());
        let e = run(&hook(&cmd, &dir, Duration::from_secs(1)), &event(), &|_| {});
        assert_eq!(
            e.unwrap_err().to_string(),
            "the pre_apply hook did not finish within 1s and was killed"
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = std::fs::remove_file(&pidfile);
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .map_or(true, |s| s.split(' ').nth(2) == Some("Z"))
        };
        // SIGKILL is delivered at once; the process is reaped by its new parent shortly after.
        for _ in 0..250 {
            if gone() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the hook's background process {pid} was killed too");
    }

    #[test]
    fn a_change_too_large_for_one_variable_is_in_the_file_only() {
        let dir = std::env::temp_dir();
        let mut big = event();
        big.notes = vec!["x".repeat(200 * 1024)];
        run(
            &hook(
                "test -z \"${FLEETPIN_CHANGES+set}\" && test \"$(wc -c < \"$FLEETPIN_CHANGES_FILE\")\" -gt 204800",
                &dir,
                Duration::from_secs(30),
            ),
            &big,
            &|_| {},
        )
        .unwrap();
    }
}
