//! `fleetpin promote FROM TO`: pin TO to the digests FROM runs, behind the gates, and commit
//! (`ops::promote`); show the gates, the pins and what was written. Nothing is deployed.

use crate::cli::PromoteArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::promote::{self, PromoteInput};
use crate::render::show;

pub fn run(config: &Config, args: &PromoteArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, true);
    let input = PromoteInput {
        from: args.from.clone(),
        to: args.to.clone(),
        services: args.services.clone(),
        force: args.force,
        allow_downgrade: args.allow_downgrade,
        dry_run: args.dry_run,
        no_commit: args.no_commit,
        push: args.push,
        no_push: args.no_push,
        override_window: args.override_window.clone(),
    };
    let outcome = rt.block_on(promote::promote(&ctx, &loaded, input))?;
    show::promote(super::look(config), &outcome);
    Ok(super::run_exit(outcome.failed(), false))
}
