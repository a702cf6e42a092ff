//! `fleetpin history [ENV]`: who changed which pin when, from the manifest's git history.

use crate::cli::HistoryArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::render::show;

pub fn run(config: &Config, args: &HistoryArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let rows = crate::ops::history::rows(
        &config.file,
        args.env.as_deref(),
        args.service.as_deref(),
        args.limit,
    )?;
    show::history(super::look(config), &config.file, &rows);
    Ok(Exit::Success)
}
