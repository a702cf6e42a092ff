//! The commands, one file each. A command only parses its arguments into settings, loads, calls
//! the operations (`ops`) and the host machinery (`host`), and prints; what several commands share
//! before they start — the format check, loading the manifest (at a git revision with `--rev`),
//! the runtime, the one confirmation prompt — is here, once.

pub mod apply;
pub mod audit;
pub mod history;
pub mod import;
pub mod misc;
pub mod plan;
pub mod promote;
pub mod rollback;
pub mod unlock;
pub mod validate;

use crate::cli::{Format, Selection as CliSelection};
use crate::config::Config;
use crate::engine::docker::DockerEngine;
use crate::error::{Error, Result};
use crate::host::lock::LockConfig;
use crate::host::report::HostReport;
use crate::host::runner::{HostWork, Settings};
use crate::manifest::diagnostics::{ManifestError, Problem};
use crate::manifest::{self, Loaded};
use crate::ops::deploy::Prepared;
use crate::ops::deploy::Selection;
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
pub fn print_json(v: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a report serialises")
    );
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
    /// else all; the gate's bound; the lock as this operator.
    pub fn settings(&self, loaded: &Loaded, env: &str, hosts: usize, identity: &str) -> Settings {
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
            lock: LockConfig::new(identity, self.lock_wait),
            health_timeout: self.health_timeout(),
            retain: loaded.manifest.retain,
            rollout: e.rollout.clone(),
        }
    }

    pub fn health_timeout(&self) -> std::time::Duration {
        self.health_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(crate::host::gate::DEFAULT_TIMEOUT)
    }
}

/// Runs `work` over the prepared hosts as the environment's rollout says (canaries, batches, what
/// a failure does; `opts` put changed hosts back), showing progress; Ctrl-C finishes the step in
/// flight.
pub fn run_on_hosts<W: HostWork<DockerEngine>>(
    config: &Config,
    rt: &tokio::runtime::Runtime,
    prepared: &[Prepared],
    settings: &Settings,
    work: &W,
    opts: &crate::host::converge::Options,
    changes: &dyn Fn(&Prepared) -> bool,
) -> Vec<HostReport> {
    let targets = prepared.iter().map(|p| p.target(changes(p))).collect();
    let sink = crate::render::progress::ProgressSink::new(config.quiet);
    crate::interrupt::install_on(rt);
    let reports = rt.block_on(crate::host::rollout::run(
        targets,
        settings,
        work,
        opts,
        &|h: &str| sink.host(h),
    ));
    sink.clear();
    reports
}

/// The environment `env` of the manifest, or an error naming those there are.
pub fn environment<'a>(loaded: &'a Loaded, env: &str) -> Result<&'a crate::manifest::Environment> {
    crate::host::fleet::environment(loaded, env).map_err(Error::msg)
}
