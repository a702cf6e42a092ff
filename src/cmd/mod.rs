//! The commands, one file each. A command only parses its arguments into an operation's input,
//! calls that operation (`ops`) and hands its outcome to a renderer (`render::show`). What several
//! commands share before they start is here, once: the format check, loading the manifest (at a
//! git revision with `--rev`), the runtime, and the operation's context — the actor, Ctrl-C as
//! its cancellation, the terminal as its sink.

pub mod agent;
pub mod apply;
pub mod audit;
pub mod history;
pub mod import;
pub mod logs;
pub mod misc;
pub mod plan;
pub mod promote;
pub mod publish;
pub mod rollback;
pub mod serve;
pub mod unlock;
pub mod validate;

use crate::cli::{Format, Selection as CliSelection};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::manifest::Loaded;
use crate::ops::context::{Actor, Ctx};
use crate::ops::deploy::Selection;
use crate::render::show::Look;
use std::path::Path;
use std::sync::Arc;

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
    Ok(crate::ops::deploy::load(&config.file, rev)?)
}

/// The runtime the operations run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The command line's selection, as the operations take it.
pub fn selection(s: &CliSelection) -> Selection {
    Selection {
        services: s.services.clone(),
        hosts: s.hosts.clone(),
    }
}

/// The context of an operation started from the command line: the operator, the terminal as
/// its sink, the process's environment for webhook tokens, and Ctrl-C as its cancellation —
/// listened for (and what it does said) when `interrupts`.
pub fn context(
    config: &Config,
    rt: &tokio::runtime::Runtime,
    manifest: &Path,
    interrupts: bool,
) -> Ctx {
    let cancel = crate::interrupt::token();
    if interrupts {
        crate::interrupt::install_on(rt);
        crate::render::progress::say_when_cancelled(rt, cancel.clone());
    }
    let sink = crate::render::progress::CliSink::new(
        config.quiet,
        config.verbose,
        config.format == Format::Json,
        config.err,
    );
    Ctx::new(
        Actor::operator(
            manifest,
            std::env::var("FLEETPIN_USER")
                .ok()
                .filter(|s| !s.is_empty()),
        ),
        cancel,
        Arc::new(sink),
        config.connect_timeout,
    )
    .with_vars(Arc::new(|name: &str| std::env::var(name).ok()))
    .with_keys(crate::secrets::process_keys())
}

/// `FLEETPIN_LOCK_TTL`: seconds a lock holds without a heartbeat (at least 3), for operators on
/// slow links and for tests.
pub fn lock_ttl() -> Option<std::time::Duration> {
    std::env::var("FLEETPIN_LOCK_TTL")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s >= 3)
        .map(std::time::Duration::from_secs)
}

/// How the terminal shows things.
pub fn look(config: &Config) -> Look {
    Look {
        format: config.format,
        out: config.out,
        err: config.err,
        quiet: config.quiet,
        verbose: config.verbose,
    }
}

/// The exit code after a run: interrupted, failed or not.
pub fn run_exit(failed: bool, interrupted: bool) -> Exit {
    if interrupted {
        Exit::Interrupted
    } else if failed {
        Exit::Failure
    } else {
        Exit::Success
    }
}

/// An operation's error: its message, and 130 when a cancellation stopped it.
impl From<crate::ops::error::OpError> for Error {
    fn from(e: crate::ops::error::OpError) -> Error {
        use crate::ops::error::OpError;
        match e {
            OpError::Manifest(m) => Error::Manifest(m),
            e => Error::Failed {
                exit: if e.interrupted() {
                    Exit::Interrupted
                } else {
                    Exit::Failure
                },
                message: e.to_string(),
            },
        }
    }
}

impl From<crate::render::term::NotConfirmed> for Error {
    fn from(e: crate::render::term::NotConfirmed) -> Error {
        Error::Message(e.to_string())
    }
}
