//! `fleetpin audit [ENV]`: what runs where across the fleet against the pins, as a table, JSON,
//! Markdown or a self-contained HTML page.

use crate::cli::{AuditArgs, Format};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::ops::audit::collect;

pub fn run(config: &Config, args: &AuditArgs) -> Result<Exit> {
    let loaded = super::load(config, None)?;
    let envs: Vec<String> = match &args.env {
        Some(e) if !loaded.manifest.environments.contains_key(e) => {
            return Err(Error::msg(format!(
                "there is no environment `{e}` (environments: {})",
                loaded
                    .manifest
                    .environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Some(e) => vec![e.clone()],
        None => loaded.manifest.environments.keys().cloned().collect(),
    };
    let audit = super::runtime().block_on(collect(&loaded, &envs, config.connect_timeout))?;
    let style = if args.out.is_some() {
        crate::render::Style { color: false }
    } else {
        config.out
    };
    let text = match config.format {
        Format::Table => crate::render::audit::table(&audit, style),
        Format::Json => serde_json::to_string_pretty(&audit).expect("serialises") + "\n",
        Format::Markdown => crate::render::audit::markdown(&audit),
        Format::Html => crate::render::audit::html(&audit),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
            if !config.quiet {
                eprintln!("audit written to {}", path.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(if audit.unreachable() {
        Exit::Failure
    } else if args.exit_code && audit.drift() {
        Exit::Pending
    } else {
        Exit::Success
    })
}
