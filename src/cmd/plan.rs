//! `fleetpin plan ENV`: what would change on every selected host, changing nothing.

use crate::cli::{Format, PlanArgs};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::ops::deploy;

pub fn run(config: &Config, args: &PlanArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, args.rev.as_deref())?;
    if super::environment(&loaded, &args.env)?.is_swarm() {
        return swarm(config, args, &loaded);
    }
    let commit = deploy::source_commit(&loaded).unwrap_or_else(|| "uncommitted".into());
    let prepared = super::runtime().block_on(deploy::prepare(
        &loaded,
        &args.env,
        &super::selection(&args.select),
        config.connect_timeout,
    ))?;
    let doc = deploy::plan_doc(&loaded, &args.env, &commit, &prepared);
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&doc).expect("a plan serialises");
        std::fs::write(out, json + "\n")
            .map_err(|e| Error::msg(format!("cannot write {}: {e}", out.display())))?;
        if !config.quiet {
            eprintln!(
                "plan saved to {}; apply it with: fleetpin apply {} --plan {}",
                out.display(),
                args.env,
                out.display()
            );
        }
    }
    match config.format {
        Format::Json => super::print_json(&doc),
        _ => print!(
            "{}",
            crate::render::plan::plan(&doc, config.verbose > 0, config.out)
        ),
    }
    Ok(if doc.has_errors() {
        Exit::Failure
    } else if args.detailed_exitcode && doc.pending() > 0 {
        Exit::Pending
    } else {
        Exit::Success
    })
}

/// A Swarm environment: one target, the services' specs against the manifest.
fn swarm(config: &Config, args: &PlanArgs, loaded: &crate::manifest::Loaded) -> Result<Exit> {
    use crate::ops::swarm;
    if args.out.is_some() {
        return Err(Error::msg(format!(
            "--out is for plain-host environments; `{}` is a Swarm cluster, where apply plans again",
            args.env
        )));
    }
    let select = super::selection(&args.select);
    let plan = super::runtime().block_on(async {
        let engine = swarm::connect(loaded, &args.env, config.connect_timeout).await?;
        swarm::plan(loaded, &args.env, &select, &engine).await
    })?;
    match config.format {
        Format::Json => super::print_json(&plan),
        _ => print!("{}", crate::render::plan::swarm_plan(&plan, config.out)),
    }
    Ok(if args.detailed_exitcode && plan.pending() > 0 {
        Exit::Pending
    } else {
        Exit::Success
    })
}
