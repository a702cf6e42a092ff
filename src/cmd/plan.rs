//! `fleetpin plan ENV`: what would change on every selected host, changing nothing.

use crate::cli::{Format, PlanArgs};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::ops::deploy;

pub fn run(config: &Config, args: &PlanArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, args.rev.as_deref())?;
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
