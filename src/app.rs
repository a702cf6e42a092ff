//! From arguments to an exit code: parse (clap), resolve the global flags once into the `Config`
//! every command reads, dispatch, and show what stopped a command — the edge, where errors become
//! text (miette for manifest problems) and exit codes (0 success, 1 error — usage errors included
//! —, 2 changes or drift where asked, 130 interrupted).

use crate::cli::{Cli, Command, Format};
use crate::config::Config;
use crate::error::{Error, Exit};
use crate::render;
use clap::{CommandFactory, Parser};
use serde_json::json;
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs fleetpin with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Success
                }
                // The contract: usage errors are errors, exit 1 (clap's own default is 2, which we
                // keep for "changes pending").
                _ => Exit::Failure,
            }
            .into();
        }
    };
    let config = Config::from_global(&cli.global);
    init_tracing(&config);
    match dispatch(cli.command, &config) {
        Ok(code) => code.into(),
        Err(e) => {
            report(&e, &config);
            e.exit().into()
        }
    }
}

/// Logs go to stderr. Only fleetpin's own events may be verbose: the HTTP and engine client
/// crates log request bodies and headers at debug and trace — container environments, which hold
/// env_file secrets, and registry credentials — so they are capped at `info` whatever
/// `FLEETPIN_LOG` asks.
fn init_tracing(config: &Config) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match (config.quiet, config.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETPIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("fleetpin={level}")));
    let never_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("fleetpin") || *meta.level() <= tracing::Level::INFO
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(config.err.color)
        .without_time()
        .with_target(false)
        .with_filter(filter)
        .with_filter(never_secrets);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Shows what stopped a command.
fn report(e: &Error, config: &Config) {
    match e {
        Error::Reported(_) => {}
        Error::Manifest(m) => {
            if config.format == Format::Json {
                let doc = json!({"valid": false, "file": m.file, "problems": m.to_json()});
                render::term::json(&doc);
            } else {
                eprint!("{}", render::manifest_error(m, config.err));
            }
        }
        Error::Message(message) | Error::Failed { message, .. } => {
            eprintln!("{} {message}", config.err.red("error:"))
        }
    }
}

/// The one place that knows every command.
fn dispatch(command: Command, config: &Config) -> crate::error::Result<Exit> {
    use crate::cmd;
    match command {
        Command::Validate => cmd::validate::run(config),
        Command::Schema => cmd::misc::schema(),
        Command::Completions { shell } => cmd::misc::completions(shell),
        Command::Man => cmd::misc::man(),
        Command::Plan(args) => cmd::plan::run(config, &args),
        Command::Apply(args) => cmd::apply::run(config, &args),
        Command::Rollback(args) => cmd::rollback::run(config, &args),
        Command::Promote(args) => cmd::promote::run(config, &args),
        Command::Audit(args) => cmd::audit::run(config, &args),
        Command::History(args) => cmd::history::run(config, &args),
        Command::Logs(args) => cmd::logs::run(config, &args),
        Command::Unlock(args) => cmd::unlock::run(config, &args),
        Command::Publish(args) => cmd::publish::run(config, &args),
        Command::Import(args) => cmd::import::run(config, &args),
        Command::Agent(args) => cmd::agent::run(config, &args),
        Command::Serve(args) => cmd::serve::run(config, &args),
    }
}

/// The clap definition, for completions and man page generation in build tooling.
pub fn command() -> clap::Command {
    Cli::command()
}
