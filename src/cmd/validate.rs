//! `fleetpin validate`: parse and check the manifest; every problem located, all at once (the
//! edge prints them), then what the files it names say (`ops::validate`).

use crate::config::Config;
use crate::error::{Exit, Result};

pub fn run(config: &Config) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, false);
    let warnings = crate::ops::validate::validate(&ctx, &loaded)?;
    crate::render::show::valid(super::look(config), &loaded, &warnings);
    Ok(Exit::Success)
}
