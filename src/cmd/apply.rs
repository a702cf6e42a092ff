//! `fleetpin apply ENV`: show the plan, ask, apply exactly that plan (`ops::apply`), show what
//! each host did.

use crate::cli::ApplyArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::apply::{self, ApplyInput};
use crate::ops::run::RunOptions;
use crate::render::{show, term};

pub fn run(config: &Config, args: &ApplyArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, args.rev.as_deref())?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, true);
    let input = ApplyInput {
        env: args.env.clone(),
        select: super::selection(&args.select),
        saved: args.plan.clone(),
        prune: args.prune,
        run: RunOptions {
            max_parallel: args.max_parallel,
            health_timeout: args.health_timeout.map(std::time::Duration::from_secs),
            lock_wait: args.lock_wait,
            lock_ttl: super::lock_ttl(),
        },
        override_window: args.override_window.clone(),
    };
    let plan = rt.block_on(apply::prepare(&ctx, &loaded, input))?;
    let look = super::look(config);
    show::apply_plan(look, &plan);
    if plan.pending() > 0 {
        term::confirm(
            args.yes,
            &format!(
                "Apply {} change(s) to {}?",
                plan.pending(),
                plan.environment()
            ),
            "apply",
        )?;
    }
    let outcome = rt.block_on(apply::run(&ctx, &loaded, plan))?;
    show::apply(look, &outcome);
    Ok(super::run_exit(outcome.failed(), outcome.interrupted()))
}
