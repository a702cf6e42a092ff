//! `fleetpin logs ENV`: the output of the current container of each selected service on every
//! selected host, at once, each line prefixed by host and service (JSON Lines with
//! `--format json`). Reads only; takes no lock. In a Swarm environment the sources are the running
//! tasks of each service, read through the manager and labelled with their node's name.
//!
//! Exit codes: 0 when every selected host answered (also when following ends with Ctrl-C, the
//! way to stop following: nothing was interrupted, so not 130), 1 when a host was unreachable or
//! lost, or a container's logs could not be read — the lines of the others are still shown.

use crate::cli::LogsArgs;
use crate::config::Config;
use crate::error::{Exit, Result};
use crate::ops::logs::{self, LogsInput};
use crate::render::show;

pub fn run(config: &Config, args: &LogsArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let rt = super::runtime();
    let ctx = super::context(config, &rt, &loaded.path, false);
    if args.follow {
        // Ctrl-C is how following ends: listened for, without the "finishing" messages.
        crate::interrupt::install_on(&rt);
    }
    let input = LogsInput {
        env: args.env.clone(),
        select: super::selection(&args.select),
        since: args.since,
        tail: args.tail.map(|t| t.0),
        follow: args.follow,
    };
    let found = rt.block_on(logs::logs(&ctx, &loaded, input))?;
    let look = super::look(config);
    if found.labels.is_empty() {
        if !found.failed {
            show::nothing_to_read(look, &args.env);
        }
        return Ok(super::run_exit(found.failed, false));
    }
    let incomplete = rt.block_on(crate::render::logs::show_all(
        look,
        &found.labels,
        found.stream,
        args.follow,
        ctx.cancel.clone(),
    ));
    Ok(super::run_exit(found.failed || incomplete, false))
}
