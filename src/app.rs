//! From parsed arguments to an exit code: builds the `Config` every command reads, dispatches, and
//! maps outcomes to the contract's exit codes (0 success, 1 error — usage errors included —, 2
//! changes or drift where asked, 130 interrupted).

use crate::cli::{Cli, Command, Format, Global};
use crate::manifest::{self, Loaded};
use crate::render::{self, Style};
use clap::{CommandFactory, Parser};
use serde_json::json;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What every command needs to know about how it was called.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub format: Format,
    pub out: Style,
    pub err: Style,
    pub verbose: u8,
    pub quiet: bool,
    pub connect_timeout: Duration,
}

impl Config {
    fn from_global(g: &Global) -> Config {
        Config {
            file: g.file.clone(),
            format: g.format,
            out: Style::for_stdout(g.no_color),
            err: Style::for_stderr(g.no_color),
            verbose: g.verbose,
            quiet: g.quiet,
            connect_timeout: Duration::from_secs(g.connect_timeout),
        }
    }
}

/// Exit codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Pending = 2,
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

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
    dispatch(cli.command, &config).into()
}

fn init_tracing(config: &Config) {
    let level = match (config.quiet, config.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETPIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("fleetpin={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(config.err.color)
        .without_time()
        .with_target(false)
        .try_init();
}

fn dispatch(command: Command, config: &Config) -> Exit {
    match command {
        Command::Validate => validate(config),
        Command::Schema => {
            println!("{}", crate::manifest::schema::schema_json());
            Exit::Success
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "fleetpin",
                &mut std::io::stdout(),
            );
            Exit::Success
        }
        Command::Man => {
            let mut out = Vec::new();
            if clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .is_err()
            {
                return Exit::Failure;
            }
            let _ = std::io::stdout().write_all(&out);
            Exit::Success
        }
        Command::Plan(args) => crate::deploy::run_plan(config, &args),
        Command::Apply(args) => crate::deploy::run_apply(config, &args),
        Command::Rollback(args) => crate::rollback::run(config, &args),
        Command::Promote(args) => crate::promote::run(config, &args),
        Command::Audit(args) => crate::audit::run(config, &args),
        Command::History(args) => crate::history::run(config, &args),
        Command::Unlock(args) => crate::deploy::run_unlock(config, &args.env, &args.hosts),
    }
}

/// Loads the manifest named by `-f`, or prints every problem and returns the exit code.
pub fn load_or_report(config: &Config) -> Result<Loaded, Exit> {
    load_rev_or_report(config, None)
}

/// The same, at a git revision when `rev` is given.
pub fn load_rev_or_report(config: &Config, rev: Option<&str>) -> Result<Loaded, Exit> {
    let loaded = match rev {
        Some(r) => load_at_rev(&config.file, r),
        None => manifest::load(&config.file),
    };
    match loaded {
        Ok(l) => Ok(l),
        Err(e) => {
            if config.format == Format::Json {
                let doc = json!({"valid": false, "file": e.file, "problems": e.to_json()});
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                eprint!("{}", render::manifest_error(&e, config.err));
            }
            Err(Exit::Failure)
        }
    }
}

/// The manifest as it is at git revision `rev`, read without checking it out.
fn load_at_rev(
    path: &std::path::Path,
    rev: &str,
) -> Result<Loaded, crate::manifest::diagnostics::ManifestError> {
    use crate::manifest::diagnostics::{ManifestError, Problem};
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

fn validate(config: &Config) -> Exit {
    if matches!(config.format, Format::Markdown | Format::Html) {
        eprintln!("error: --format markdown and html are for `fleetpin audit`; use table or json");
        return Exit::Failure;
    }
    let loaded = match load_or_report(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let m = &loaded.manifest;
    // Secrets are usually not committed: a missing env_file is worth a warning, not a failure,
    // until a command needs its values.
    let dir = loaded.dir();
    let mut warnings = Vec::new();
    for (name, s) in &m.services {
        if let Some(f) = &s.env_file
            && !dir.join(&f.value).is_file()
        {
            warnings.push(format!(
                "{}:{}:{}: env_file `{}` of service `{name}` is not in the working tree; plan and apply will need it",
                loaded.path.display(),
                f.span.line,
                f.span.column,
                f.value
            ));
        }
    }
    if !config.quiet {
        for w in &warnings {
            eprintln!("{} {w}", config.err.yellow("warning:"));
        }
    }
    let file = loaded.path.display().to_string();
    if config.format == Format::Json {
        let envs: Vec<_> = m
            .environments
            .iter()
            .map(|(name, e)| {
                json!({
                    "name": name,
                    "hosts": e.hosts.keys().collect::<Vec<_>>(),
                    "pins": e.versions.iter().map(|(s, p)| (s.clone(), serde_json::Value::String(p.value.to_string()))).collect::<serde_json::Map<String, serde_json::Value>>(),
                })
            })
            .collect();
        let doc = json!({
            "valid": true,
            "file": file,
            "platform": m.platform,
            "services": m.services.keys().collect::<Vec<_>>(),
            "environments": envs,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if !config.quiet {
        let path: Vec<String> = m
            .environments
            .iter()
            .map(|(name, e)| {
                format!(
                    "{name} ({} host{}, {} pin{})",
                    e.hosts.len(),
                    if e.hosts.len() == 1 { "" } else { "s" },
                    e.versions.len(),
                    if e.versions.len() == 1 { "" } else { "s" }
                )
            })
            .collect();
        println!(
            "{} {file} is valid: platform {}, {} service{}",
            config.out.green("✓"),
            config.out.bold(&m.platform),
            m.services.len(),
            if m.services.len() == 1 { "" } else { "s" }
        );
        println!("  path: {}", path.join(" -> "));
    }
    Exit::Success
}

/// The clap definition, for completions and man page generation in build tooling.
pub fn command() -> clap::Command {
    Cli::command()
}
