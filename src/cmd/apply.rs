//! `fleetpin apply ENV`: converge the selected hosts to the manifest (or to exactly a saved plan),
//! through the one host runner: each host locked, repaired, re-observed, then converged. The
//! manifest's hooks and webhooks bracket the work: `pre_apply` once confirmed (a failure stops
//! apply before any host is touched), `post_apply` or `on_failure` and the notifications after.

use crate::cli::{ApplyArgs, Format};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::host::converge::Apply;
use crate::host::report::{HostReport, HostStatus};
use crate::ops::deploy::{self, PLAN_FORMAT, PlanDoc};
use crate::ops::event::{Event, Outcome};
use crate::plan::ChangeKind;

fn read_plan(path: &std::path::Path) -> Result<PlanDoc> {
    let doc = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<PlanDoc>(&t).map_err(|e| e.to_string()))
        .map_err(|e| Error::msg(format!("cannot read the plan {}: {e}", path.display())))?;
    if doc.format != PLAN_FORMAT {
        return Err(Error::msg(format!(
            "{}: unknown plan format `{}`",
            path.display(),
            doc.format
        )));
    }
    Ok(doc)
}

pub fn run(config: &Config, args: &ApplyArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, args.rev.as_deref())?;
    if super::environment(&loaded, &args.env)?.pull {
        return Err(Error::msg(format!(
            "environment `{}` is followed by pull agents (`pull: true`): a push apply would race them; commit the pins and `git push` — each host's `fleetpin agent` converges it (see docs/agent.md)",
            args.env
        )));
    }
    if super::environment(&loaded, &args.env)?.is_swarm() {
        return swarm(config, args, &loaded);
    }
    let saved = args.plan.as_deref().map(read_plan).transpose()?;
    if let Some(doc) = &saved
        && (doc.environment != args.env || doc.platform != loaded.manifest.platform)
    {
        return Err(Error::msg(format!(
            "the plan is for {} {}, not {} {}",
            doc.platform, doc.environment, loaded.manifest.platform, args.env
        )));
    }
    let select = super::selection(&args.select);
    let rt = super::runtime();
    let prepared = rt.block_on(deploy::prepare(
        &loaded,
        &args.env,
        &select,
        config.connect_timeout,
    ))?;
    let commit = deploy::source_commit(&loaded);
    let doc = deploy::plan_doc(
        &loaded,
        &args.env,
        commit.as_deref().unwrap_or("uncommitted"),
        &prepared,
    );
    let orphans_kept = doc
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .filter(|c| c.kind == ChangeKind::RemoveOrphan && !args.prune)
        .count();
    let pending = match &saved {
        Some(s) => s.pending(),
        None => doc.pending() - orphans_kept,
    };
    let json = config.format == Format::Json;
    if !json && !config.quiet {
        print!(
            "{}",
            crate::render::plan::plan(
                saved.as_ref().unwrap_or(&doc),
                config.verbose > 0,
                config.out
            )
        );
    }
    if pending == 0 {
        let reports: Vec<HostReport> = prepared
            .iter()
            .map(|p| match &p.error {
                Some(e) => HostReport::with_error(
                    &p.host.name,
                    &p.host.endpoint(),
                    HostStatus::Unreachable,
                    e.clone(),
                ),
                None => HostReport::new(&p.host.name, &p.host.endpoint(), HostStatus::Unchanged),
            })
            .collect();
        if !json && !config.quiet {
            println!("Nothing to do: the selected hosts already run what the manifest pins.");
        }
        return Ok(finish(config, &args.env, &reports, doc.has_errors()));
    }
    super::confirm(
        args.yes,
        &format!("Apply {pending} change(s) to {}?", args.env),
        "apply",
    )?;
    let stamp = deploy::stamp(&loaded, config.quiet, commit);
    let event = Event::new(
        "apply",
        &loaded.manifest.platform,
        &args.env,
        &stamp.commit,
        &stamp.deployed_by,
    )
    .planned_apply(saved.as_ref().unwrap_or(&doc), args.prune);
    super::pre_hook(config, &loaded, &rt, &event)?;
    let flags = super::RunFlags {
        max_parallel: args.max_parallel,
        health_timeout: args.health_timeout,
        lock_wait: args.lock_wait,
    };
    let settings = flags.settings(&loaded, &args.env, prepared.len(), stamp);
    let work = Apply {
        saved,
        select,
        prune: args.prune,
    };
    let prune = args.prune;
    let reports = super::run_on_hosts(config, &rt, &prepared, &settings, &work, &|p| {
        p.has_changes(prune)
    });
    let exit = finish(config, &args.env, &reports, false);
    let failed = reports.iter().any(|r| !r.ok());
    super::after_work(
        config,
        &loaded,
        &rt,
        &event.ran(&reports, Outcome::of_run(failed)),
    );
    Ok(exit)
}

fn finish(config: &Config, env: &str, reports: &[HostReport], had_errors: bool) -> Exit {
    let failed = had_errors || reports.iter().any(|r| !r.ok());
    if config.format == Format::Json {
        super::print_json(
            &serde_json::json!({"environment": env, "ok": !failed, "hosts": reports,
                "interrupted": crate::interrupt::interrupted()}),
        );
    } else if !config.quiet || failed || crate::interrupt::interrupted() {
        print!("{}", crate::render::plan::apply_report(reports, config.out));
        super::say_interrupted("apply", env);
    }
    super::run_exit(failed)
}

/// A Swarm environment: create or update each changed service and wait until Swarm completed
/// the update (a failed one Swarm rolls back, and apply exits 1).
fn swarm(config: &Config, args: &ApplyArgs, loaded: &crate::manifest::Loaded) -> Result<Exit> {
    use crate::ops::swarm;
    if args.plan.is_some() || args.prune {
        return Err(Error::msg(format!(
            "--plan and --prune are for plain-host environments; `{}` is a Swarm cluster",
            args.env
        )));
    }
    let select = super::selection(&args.select);
    let rt = super::runtime();
    let engine = rt.block_on(swarm::connect(loaded, &args.env, config.connect_timeout))?;
    let plan = rt.block_on(swarm::plan(loaded, &args.env, &select, &engine))?;
    let json = config.format == Format::Json;
    if !json && !config.quiet {
        print!("{}", crate::render::plan::swarm_plan(&plan, config.out));
    }
    for c in &plan.changes {
        if !c.resolved.depends_on.is_empty() && !config.quiet {
            eprintln!(
                "warning: `depends_on` of {} is ignored in Swarm environment {}: Swarm starts services in no particular order",
                c.service, args.env
            );
        }
    }
    let pending = plan.pending();
    if pending == 0 {
        if json {
            super::print_json(
                &serde_json::json!({"environment": args.env, "ok": true, "services": []}),
            );
        } else if !config.quiet {
            println!("Nothing to do: the services already run what the manifest pins.");
        }
        return Ok(Exit::Success);
    }
    super::confirm(
        args.yes,
        &format!("Apply {pending} change(s) to {}?", args.env),
        "apply",
    )?;
    let commit = deploy::source_commit(loaded);
    let stamp = deploy::stamp(loaded, config.quiet, commit);
    let flags = super::RunFlags {
        max_parallel: args.max_parallel,
        health_timeout: args.health_timeout,
        lock_wait: args.lock_wait,
    };
    let progress = super::swarm_progress(config.quiet || json);
    let results = rt.block_on(swarm::run(
        loaded,
        &plan,
        &engine,
        &stamp,
        args.lock_wait,
        flags.health_timeout(),
        &progress,
    ))?;
    let failed = results.iter().any(|r| !r.ok);
    if json {
        super::print_json(
            &serde_json::json!({"environment": args.env, "ok": !failed, "services": results}),
        );
    } else if !config.quiet || failed {
        for r in &results {
            println!(
                "{} {} {}: {}",
                if r.ok { "ok    " } else { "FAILED" },
                r.kind.as_str(),
                r.service,
                r.message
            );
        }
    }
    Ok(super::run_exit(failed))
}
