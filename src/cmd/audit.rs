//! `fleetpin audit [ENV]`: what runs where across the fleet against the pins (`ops::audit`), as a
//! table, JSON, Markdown or a self-contained HTML page, on stdout or in a file.

use crate::cli::{AuditArgs, Format};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::render::{show, term};

pub fn run(config: &Config, args: &AuditArgs) -> Result<Exit> {
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, false);
    // Markdown and HTML always have the report's header and matrix, even for Swarm alone.
    let page = matches!(config.format, Format::Markdown | Format::Html);
    let audit = rt.block_on(crate::ops::audit::audit(
        &ctx,
        &loaded,
        args.env.as_deref(),
        page,
    ))?;
    let look = super::look(config);
    let text = show::audit_text(look, &audit, args.out.is_some());
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
            show::audit_written(look, path);
        }
        None => term::out(&text),
    }
    Ok(if audit.unreachable() {
        Exit::Failure
    } else if args.exit_code && audit.drift() {
        Exit::Pending
    } else {
        Exit::Success
    })
}
