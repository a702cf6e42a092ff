//! `fleetpin publish`: the reference at a commit, pushed to the manifest's registry
//! (`ops::publish`).

use crate::cli::PublishArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::publish::{self, PublishInput};
use crate::render::show;

pub fn run(config: &Config, args: &PublishArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let input = PublishInput {
        rev: args.rev.clone(),
        tags: args.tags.clone(),
        history: args.history,
    };
    let rt = super::runtime();
    let published = rt.block_on(publish::run(&config.file, &input))?;
    show::published(super::look(config), &published);
    Ok(Exit::Success)
}
