//! The commands, one file each. A command only parses its arguments into settings, loads, calls
//! the operations (`ops`) and the host machinery (`host`), and prints; what several commands share
//! before they start — the format check, loading the manifest (at a git revision with `--rev`),
//! the runtime, the one confirmation prompt — is here, once.

pub mod agent;
pub mod apply;
pub mod audit;
pub mod history;
pub mod import;
pub mod logs;
pub mod misc;
pub mod plan;
pub mod promote;
pub mod rollback;
pub mod unlock;
pub mod validate;

use crate::cli::{Format, Selection as CliSelection};
use crate::config::Config;
use crate::engine::docker::DockerEngine;
use crate::error::{Error, Exit, Result};
use crate::host::lock::LockConfig;
use crate::host::report::HostReport;
use crate::host::runner::{HostWork, Settings};
use crate::manifest::diagnostics::{ManifestError, Problem};
use crate::manifest::{self, Loaded};
use crate::ops::deploy::Prepared;
use crate::ops::deploy::Selection;
use crate::ops::event::{Event, Outcome};
use crate::ops::hooks::{self, Hook};
use crate::ops::notify::Sent;
use crate::plan::labels::DeployStamp;
use std::io::IsTerminal;
use std::path::Path;

/// Refuses the formats only `audit` prints.
pub fn table_or_json(config: &Config) -> Result<()> {
    if matches!(config.format, Format::Markdown | Format::Html) {
        return Err(Error::msg(
            "--format markdown and html are for `fleetpin audit`; use table or json",
        ));
    }
    Ok(())
}

/// Loads the manifest named by `-f`, at git revision `rev` when given (read from git, not
/// checked out; relative env_file and tls paths still come from the working tree).
pub fn load(config: &Config, rev: Option<&str>) -> Result<Loaded> {
    Ok(match rev {
        None => manifest::load(&config.file)?,
        Some(r) => load_at_rev(&config.file, r)?,
    })
}

fn load_at_rev(path: &Path, rev: &str) -> Result<Loaded, ManifestError> {
    let display = format!("{}@{rev}", path.display());
    let (text, commit) = crate::git::read_at_rev(path, rev).map_err(|e| {
        ManifestError::single(
            &display,
            String::new(),
            Problem::new(Default::default(), e.to_string()),
        )
    })?;
    manifest::from_text(&display, path, text, Some(commit))
}

/// The runtime the host work runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Asks `question` unless `yes`; refuses when nobody can answer (stdin not a terminal).
/// `verb` completes "pass --yes to … without asking".
pub fn confirm(yes: bool, question: &str, verb: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::msg(format!(
            "stdin is not a terminal, so nobody can confirm: pass --yes to {verb} without asking"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "nothing done: not confirmed (pass --yes to {verb} without asking)"
        )))
    }
}

/// The command line's selection, as the operations take it.
pub fn selection(s: &CliSelection) -> Selection {
    Selection {
        services: s.services.clone(),
        hosts: s.hosts.clone(),
    }
}

/// Prints one JSON document on stdout.
/// Whether this run pushes its pin commit: `--push`, or `git: {push: true}` unless `--no-push`.
pub fn wants_push(m: &crate::manifest::Manifest, push: bool, no_push: bool) -> bool {
    push || (m.git.push && !no_push)
}

/// An environment followed by pull agents (`pull: true`) takes its pins from the pushed branch:
/// a command that changes them must end with its commit pushed (`--push`, or `git: {push: true}`),
/// or the agents put the old pins back at their next sync. Checked before anything is done.
pub fn require_push_for_pull(
    loaded: &Loaded,
    env: &str,
    commits: bool,
    pushes: bool,
    command: &str,
) -> Result<()> {
    if !loaded
        .manifest
        .environments
        .get(env)
        .is_some_and(|e| e.pull)
        || (commits && pushes)
    {
        return Ok(());
    }
    Err(Error::msg(format!(
        "environment `{env}` is followed by pull agents (`pull: true`): `{command}` must end with its pin commit pushed, or the agents would undo it at their next sync; pass --push (or set `git: {{push: true}}`){}",
        if commits { "" } else { " and let it commit" }
    )))
}

/// Pushes a pin commit; prints where it went (or why not) and returns the JSON `push` field and
/// whether it failed.
pub fn push_commit(
    config: &Config,
    path: &std::path::Path,
    commit: &str,
) -> (serde_json::Value, bool) {
    match crate::git::push(path, commit) {
        Ok(up) => {
            if config.format != crate::cli::Format::Json {
                println!("pushed {} to {up}", &commit[..12.min(commit.len())]);
            }
            (
                serde_json::json!({"ok": true, "to": up.to_string(), "error": null}),
                false,
            )
        }
        Err(e) => {
            eprintln!("{} {e}", config.err.red("error:"));
            (
                serde_json::json!({"ok": false, "to": null, "error": e.to_string()}),
                true,
            )
        }
    }
}

pub fn print_json(v: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a report serialises")
    );
}

/// After a run's report, when Ctrl-C stopped it: what that left, so a report whose every line is
/// `done` (the steps in flight finished) is not read as a finished run.
pub fn say_interrupted(command: &str, env: &str) {
    if crate::interrupt::interrupted() {
        println!(
            "
interrupted: the steps in flight finished and every service kept serving; nothing \
             else was started. Run `fleetpin {command} {env}` again to finish."
        );
    }
}

/// The exit code after a run over hosts: interrupted, failed or not.
pub fn run_exit(failed: bool) -> crate::error::Exit {
    use crate::error::Exit;
    if crate::interrupt::interrupted() {
        Exit::Interrupted
    } else if failed {
        Exit::Failure
    } else {
        Exit::Success
    }
}

/// What a run over an environment's hosts needs, resolved from its flags and the manifest.
pub struct RunFlags {
    pub max_parallel: Option<u32>,
    pub health_timeout: Option<u64>,
    pub lock_wait: Option<std::time::Duration>,
}

impl RunFlags {
    /// The runner's settings: hosts at once from the flag, else the environment's `max_parallel`,
    /// else all; the gate's bound; the lock as the operator who deploys (`stamp`).
    pub fn settings(
        &self,
        loaded: &Loaded,
        env: &str,
        hosts: usize,
        stamp: DeployStamp,
    ) -> Settings {
        let e = &loaded.manifest.environments[env];
        Settings {
            platform: loaded.manifest.platform.clone(),
            environment: env.to_string(),
            parallel: self
                .max_parallel
                .or(e.max_parallel)
                .map(|n| n as usize)
                .unwrap_or(hosts)
                .max(1),
            lock: LockConfig::new(&stamp.deployed_by, self.lock_wait),
            health_timeout: self.health_timeout(),
            retain: loaded.manifest.retain,
            rollout: e.rollout.clone(),
            stamp,
        }
    }

    pub fn health_timeout(&self) -> std::time::Duration {
        self.health_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(crate::host::gate::DEFAULT_TIMEOUT)
    }
}

/// Prints a Swarm run's progress lines on stderr, indented, unless `quiet`.
fn swarm_progress(quiet: bool) -> impl Fn(&str) {
    move |line: &str| {
        if !quiet {
            eprintln!("  {line}");
        }
    }
}

/// Runs `work` over the prepared hosts as the environment's rollout says (canaries, batches, what
/// a failure does), showing progress; Ctrl-C finishes the step in flight.
pub fn run_on_hosts<W: HostWork<DockerEngine>>(
    config: &Config,
    rt: &tokio::runtime::Runtime,
    prepared: &[Prepared],
    settings: &Settings,
    work: &W,
    changes: &dyn Fn(&Prepared) -> bool,
) -> Vec<HostReport> {
    let targets = prepared.iter().map(|p| p.target(changes(p))).collect();
    let sink = crate::render::progress::ProgressSink::new(config.quiet);
    crate::interrupt::install_on(rt);
    let reports = rt.block_on(crate::host::rollout::run(
        targets,
        settings,
        work,
        &|h: &str| sink.host(h),
    ));
    sink.clear();
    reports
}

/// The environment `env` of the manifest, or an error naming those there are.
pub fn environment<'a>(loaded: &'a Loaded, env: &str) -> Result<&'a crate::manifest::Environment> {
    Ok(crate::host::fleet::environment(loaded, env)?)
}

/// Runs the manifest's `pre_<command>` hook, if it has one, before any host is touched (promote:
/// before the pins are written). A hook that fails, times out or is interrupted stops the command
/// there — exit 1 (130 when interrupted) with a message naming the hook and how it ended — after
/// the webhooks were told the command was blocked.
pub fn pre_hook(
    config: &Config,
    loaded: &Loaded,
    rt: &tokio::runtime::Runtime,
    event: &Event,
) -> Result<()> {
    let name = format!("pre_{}", event.command);
    let Some(command) = loaded.manifest.hooks.get(&name) else {
        return Ok(());
    };
    let Err(e) = run_hook(config, loaded, rt, &name, &command.value, event) else {
        return Ok(());
    };
    let exit = if e.interrupted() {
        Exit::Interrupted
    } else {
        Exit::Failure
    };
    let mut blocked = event.clone().ended(if e.interrupted() {
        Outcome::Interrupted
    } else {
        Outcome::Blocked
    });
    blocked.notes.push(e.to_string());
    notify(config, loaded, rt, &blocked);
    eprintln!("{} {e}: nothing was changed", config.err.red("error:"));
    Err(Error::Reported(exit))
}

/// After the work, whatever its outcome (never changing the exit code): the `post_<command>`
/// hook when it succeeded, else `on_failure`; a failing hook warns. Then the webhooks.
pub fn after_work(config: &Config, loaded: &Loaded, rt: &tokio::runtime::Runtime, event: &Event) {
    let name = match event.result {
        Some(Outcome::Success) => format!("post_{}", event.command),
        _ => "on_failure".to_string(),
    };
    if let Some(command) = loaded.manifest.hooks.get(&name)
        && let Err(e) = run_hook(config, loaded, rt, &name, &command.value, event)
    {
        eprintln!("{} {e}", config.err.yellow("warning:"));
    }
    notify(config, loaded, rt, event);
}

/// One hook of the manifest, in its directory, with its timeout; Ctrl-C reaches the hook (in its
/// own process group) through fleetpin.
fn run_hook(
    config: &Config,
    loaded: &Loaded,
    rt: &tokio::runtime::Runtime,
    name: &str,
    command: &str,
    event: &Event,
) -> std::result::Result<(), hooks::HookError> {
    crate::interrupt::install_on(rt);
    let dir = loaded.dir();
    let hook = Hook {
        name,
        command,
        dir: &dir,
        timeout: loaded.manifest.hooks.timeout(),
    };
    hooks::run(&hook, event, &|what| announce(config, what))
}

fn announce(config: &Config, what: &str) {
    if !config.quiet {
        eprintln!("{}", config.err.dim(what));
    }
}

/// Posts the event to the manifest's webhooks; a failure is a warning.
fn notify(config: &Config, loaded: &Loaded, rt: &tokio::runtime::Runtime, event: &Event) {
    for sent in rt.block_on(crate::ops::notify::send_all(&loaded.manifest.notify, event)) {
        match sent {
            Sent::Delivered { to, status } => {
                if config.verbose > 0 {
                    eprintln!("notified {to} (HTTP {status})");
                }
            }
            Sent::Failed { to, why } => eprintln!(
                "{} the notification to {to} failed: {why}",
                config.err.yellow("warning:")
            ),
        }
    }
}
