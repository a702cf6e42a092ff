//! `fleetpin plan ENV`: what would change on every selected host (`ops::plan`), changing nothing.

use crate::cli::PlanArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::plan::{self, PlanInput};
use crate::render::show;

pub fn run(config: &Config, args: &PlanArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, args.rev.as_deref())?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, false);
    let input = PlanInput {
        env: args.env.clone(),
        select: super::selection(&args.select),
        out: args.out.clone(),
        secrets_unchecked: None,
    };
    let outcome = rt.block_on(plan::plan(&ctx, &loaded, input))?;
    show::plan(super::look(config), &outcome);
    Ok(if outcome.has_errors() {
        Exit::Failure
    } else if args.detailed_exitcode && outcome.pending() > 0 {
        Exit::Pending
    } else {
        Exit::Success
    })
}
