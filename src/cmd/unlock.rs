//! `fleetpin unlock ENV`: remove a lock a killed run left on the hosts (`ops::unlock`).

use crate::cli::UnlockArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::unlock::{self, UnlockInput};
use crate::render::show;

pub fn run(config: &Config, args: &UnlockArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, false);
    let input = UnlockInput {
        env: args.env.clone(),
        hosts: args.hosts.clone(),
    };
    let outcome = rt.block_on(unlock::unlock(&ctx, &loaded, input))?;
    show::unlock(super::look(config), &outcome);
    Ok(super::run_exit(outcome.failed(), false))
}
