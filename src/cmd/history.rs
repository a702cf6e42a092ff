//! `fleetpin history [ENV]`: who changed which pin when, from the manifest's git history.

use crate::cli::{Format, HistoryArgs};
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::history::rows;

pub fn run(config: &Config, args: &HistoryArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let rows = rows(
        &config.file,
        args.env.as_deref(),
        args.service.as_deref(),
        args.limit,
    )?;
    if config.format == Format::Json {
        super::print_json(&rows);
    } else if rows.is_empty() {
        println!("No pin change in the history of {}.", config.file.display());
    } else {
        print!("{}", crate::render::history::table(&rows));
    }
    Ok(Exit::Success)
}
