//! The commands, one file each. A command only parses its arguments into settings, loads, calls
//! the operations (`ops`) and the host machinery (`host`), and prints; what several commands share
//! before they start — the format check, loading the manifest (at a git revision with `--rev`),
//! the runtime, the one confirmation prompt — is here, once.

pub mod apply;
pub mod audit;
pub mod history;
pub mod misc;
pub mod plan;
pub mod promote;
pub mod rollback;
pub mod unlock;
pub mod validate;

use crate::app::Config;
use crate::cli::{Format, Selection as CliSelection};
use crate::error::{Error, Result};
use crate::manifest::diagnostics::{ManifestError, Problem};
use crate::manifest::{self, Loaded};
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
