//! `fleetpin rollback ENV`: say what goes back, ask, roll back (`ops::rollback`: the hosts, then
//! the pins committed and pushed), show what each host did and what was written.

use crate::cli::RollbackArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::rollback::{self, RollbackInput};
use crate::ops::run::RunOptions;
use crate::render::{show, term};

pub fn run(config: &Config, args: &RollbackArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, true);
    let input = RollbackInput {
        env: args.env.clone(),
        select: super::selection(&args.select),
        to: args.to.clone(),
        no_commit: args.no_commit,
        push: args.push,
        no_push: args.no_push,
        run: RunOptions {
            max_parallel: None,
            health_timeout: args.health_timeout.map(std::time::Duration::from_secs),
            lock_wait: args.lock_wait,
            lock_ttl: super::lock_ttl(),
        },
        override_window: args.override_window.clone(),
    };
    let plan = rt.block_on(rollback::prepare(&ctx, &loaded, input))?;
    if !config.quiet {
        for line in plan.intents() {
            term::err(&line);
        }
    }
    term::confirm(args.yes, "Roll back?", "roll back")?;
    let outcome = rt.block_on(rollback::run(&ctx, &loaded, plan))?;
    show::rollback(super::look(config), &outcome);
    Ok(super::run_exit(outcome.failed(), outcome.interrupted()))
}
