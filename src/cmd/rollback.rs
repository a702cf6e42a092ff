//! `fleetpin rollback ENV`: start the previous kept container of each selected service again, on
//! every selected host, through the one host runner and the one swap; then pin what now runs and
//! commit (the manifest file alone).
//!
//! Everything that can refuse does so before any host is touched: a service the environment does
//! not pin, a service with nothing to go back to, hosts that would go back to different versions
//! (`--to` settles it), a manifest that could not be committed afterwards. A push (`--push`,
//! `git: {push: true}`) comes last: one that fails leaves the hosts and the local commit as they
//! are and exits 1. With `--host` on a
//! subset of the environment's hosts, only those hosts go back, nothing is committed (the pin is
//! the environment's), and the report names the hosts that now differ from the pin.
//!
//! The manifest's hooks and webhooks bracket the work: `pre_rollback` once confirmed,
//! `post_rollback` (after the pin commit) or `on_failure` and the notifications after.

use crate::cli::{Format, RollbackArgs};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::git;
use crate::host::rollback::Rollback;
use crate::ops::deploy;
use crate::ops::event::{Event, Outcome as RunOutcome};
use crate::ops::pins;
use crate::ops::rollback::{Outcome, outcome};
use crate::plan::rollback::agree;
use crate::plan::view::HostView;
use serde_json::json;

pub fn run(config: &Config, args: &RollbackArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let m = &loaded.manifest;
    let env = m.environments.get(&args.env).ok_or_else(|| {
        Error::msg(format!(
            "there is no environment `{}` (environments: {})",
            args.env,
            m.environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if env.is_swarm() {
        return swarm(config, args, &loaded);
    }
    for s in &args.select.services {
        if !env.versions.contains_key(s) {
            return Err(Error::msg(format!(
                "`{s}` is not pinned in {}, so it has nothing to roll back (pinned: {})",
                args.env,
                env.versions.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    // A subset of the hosts goes back without touching the environment's pin.
    let subset =
        !args.select.hosts.is_empty() && env.hosts.keys().any(|h| !args.select.hosts.contains(h));
    let commit = !args.no_commit && !subset;
    super::require_push_for_pull(
        &loaded,
        &args.env,
        commit,
        super::wants_push(m, args.push, args.no_push),
        "rollback",
    )?;
    if commit {
        git::ensure_committable(&loaded.path)?;
    }
    let select = super::selection(&args.select);
    let rt = super::runtime();
    let prepared = rt.block_on(deploy::prepare(
        &loaded,
        &args.env,
        &select,
        config.connect_timeout,
    ))?;
    let services: Vec<String> = env
        .versions
        .keys()
        .filter(|s| select.services.is_empty() || select.services.contains(s))
        .cloned()
        .collect();
    let reachable: Vec<(String, &HostView, Vec<String>)> = prepared
        .iter()
        .filter(|p| p.engine.is_some())
        .map(|p| {
            (
                p.host.name.clone(),
                &p.view,
                p.desired.iter().map(|r| r.service.clone()).collect(),
            )
        })
        .collect();
    let targets = agree(&reachable, &services, args.to.as_deref()).map_err(|problems| {
        Error::msg(format!(
            "nothing was rolled back:\n  {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    })?;
    if targets.is_empty() {
        return Err(Error::msg(format!(
            "nothing to roll back: no selected host of {} runs the selected services",
            args.env
        )));
    }
    if !config.quiet {
        let hosts: Vec<&str> = prepared.iter().map(|p| p.host.name.as_str()).collect();
        for (s, v) in &targets {
            eprintln!("Rolling back {s} to {v} on {}.", hosts.join(", "));
        }
    }
    super::confirm(args.yes, "Roll back?", "roll back")?;

    let stamp = deploy::stamp(&loaded, true, deploy::source_commit(&loaded));
    let event = Event::new(
        "rollback",
        &m.platform,
        &args.env,
        &stamp.commit,
        &stamp.deployed_by,
    )
    .planned_rollback(&prepared, &targets);
    super::pre_hook(config, &loaded, &rt, &event)?;
    let flags = super::RunFlags {
        max_parallel: None,
        health_timeout: args.health_timeout,
        lock_wait: args.lock_wait,
    };
    let mut settings = flags.settings(&loaded, &args.env, prepared.len(), stamp);
    // A rollback honours max_parallel and canaries, but always stops at the first failure.
    settings.rollout.on_failure = crate::manifest::OnFailure::Stop;
    let work = Rollback {
        targets: targets.clone(),
        to: args.to.clone(),
    };
    // Canaries are the first hosts that have something to roll back.
    let reports = super::run_on_hosts(config, &rt, &prepared, &settings, &work, &|p| {
        p.engine.is_none() || p.desired.iter().any(|r| targets.contains_key(&r.service))
    });
    let failed = reports.iter().any(|r| !r.ok());

    let hosts: Vec<(String, Vec<String>)> = prepared
        .iter()
        .map(|p| {
            (
                p.host.name.clone(),
                p.desired.iter().map(|d| d.service.clone()).collect(),
            )
        })
        .collect();
    let Outcome { moves, mut notes } = outcome(&args.env, env, &targets, &reports, &hosts, subset);
    let mut committed = None;
    if subset {
        // Nothing to write: the pin is the environment's (`outcome` named the hosts that differ).
    } else {
        committed = write_pins(&loaded, &args.env, &moves, commit, &mut notes);
    }
    let pin_commit_failed = notes.iter().any(|n| n.starts_with("the pins could not"));
    let push = super::wants_push(m, args.push, args.no_push);
    if push && committed.is_none() && args.push {
        notes.push("--push: nothing was committed, so nothing was pushed".into());
    }
    if config.format != Format::Json {
        print!(
            "{}",
            crate::render::plan::apply_report(&reports, config.out)
        );
        super::say_interrupted("rollback", &args.env);
        if let Some((id, message)) = &committed {
            println!("\ncommitted {}: {message}", &id[..12.min(id.len())]);
        }
    }
    let (pushed, push_failed) = match &committed {
        Some((id, _)) if push => {
            let (doc, failed) = super::push_commit(config, &loaded.path, id);
            (doc, failed)
        }
        _ => (serde_json::Value::Null, false),
    };
    if config.format == Format::Json {
        super::print_json(&json!({
            "environment": args.env,
            "ok": !failed && !pin_commit_failed && !push_failed,
            "hosts": reports,
            "pins": moves.iter().map(|(s, f, t)| json!({"service": s, "from": f, "to": t})).collect::<Vec<_>>(),
            "pinned": !subset && commit && committed.is_some(),
            "commit": committed.as_ref().map(|(id, _)| id),
            "push": pushed,
            "notes": notes,
            "interrupted": crate::interrupt::interrupted(),
        }));
    } else {
        for n in &notes {
            println!("note: {n}");
        }
    }
    let mut event = event.ran(&reports, RunOutcome::of_run(failed || pin_commit_failed));
    event.pin_commit = committed.map(|(id, _)| id);
    event.notes = notes;
    super::after_work(config, &loaded, &rt, &event);
    Ok(super::run_exit(failed || pin_commit_failed || push_failed))
}

/// A Swarm environment: each selected service goes back through fleetpin's own history (its
/// service label), Swarm rolls the tasks, and the pins are written back and committed.
fn swarm(config: &Config, args: &RollbackArgs, loaded: &crate::manifest::Loaded) -> Result<Exit> {
    use crate::ops::swarm;
    let m = &loaded.manifest;
    let env = &m.environments[&args.env];
    for s in &args.select.services {
        if !env.versions.contains_key(s) {
            return Err(Error::msg(format!(
                "`{s}` is not pinned in {}, so it has nothing to roll back",
                args.env
            )));
        }
    }
    let commit = !args.no_commit;
    if commit {
        git::ensure_committable(&loaded.path)?;
    }
    let select = super::selection(&args.select);
    let rt = super::runtime();
    let engine = rt.block_on(swarm::connect(loaded, &args.env, config.connect_timeout))?;
    let plan = rt.block_on(swarm::plan(loaded, &args.env, &select, &engine))?;
    let changes = swarm::rollback_plan(&plan, args.to.as_deref()).map_err(|problems| {
        Error::msg(format!(
            "nothing was rolled back:\n  {}",
            problems.join("\n  ")
        ))
    })?;
    if !config.quiet {
        for c in &changes {
            eprintln!(
                "Rolling back {} from {} to {} on swarm {}.",
                c.service,
                c.from.as_deref().unwrap_or("?"),
                c.to,
                plan.endpoint
            );
        }
    }
    super::confirm(args.yes, "Roll back?", "roll back")?;
    let stamp = deploy::stamp(loaded, true, deploy::source_commit(loaded));
    let back = swarm::SwarmPlan {
        changes,
        ..plan.clone()
    };
    let flags = super::RunFlags {
        max_parallel: None,
        health_timeout: args.health_timeout,
        lock_wait: args.lock_wait,
    };
    let progress = super::swarm_progress(config.quiet || config.format == Format::Json);
    let results = rt.block_on(swarm::run(
        loaded,
        &back,
        &engine,
        &stamp,
        args.lock_wait,
        flags.health_timeout(),
        &progress,
    ))?;
    let failed = results.iter().any(|r| !r.ok) || results.len() < back.changes.len();
    let moves: Vec<(String, String, String)> = back
        .changes
        .iter()
        .filter(|c| results.iter().any(|r| r.ok && r.service == c.service))
        .filter_map(|c| {
            let from = env.versions.get(&c.service)?.value.to_string();
            (from != c.to).then(|| (c.service.clone(), from, c.to.clone()))
        })
        .collect();
    let mut notes = Vec::new();
    let committed = write_pins(loaded, &args.env, &moves, commit, &mut notes);
    let pin_failed = !notes.is_empty() && commit;
    if config.format == Format::Json {
        super::print_json(&json!({
            "environment": args.env,
            "ok": !failed && !pin_failed,
            "services": results,
            "pins": moves.iter().map(|(s, f, t)| json!({"service": s, "from": f, "to": t})).collect::<Vec<_>>(),
            "commit": committed.as_ref().map(|(id, _)| id),
            "notes": notes,
        }));
    } else {
        for r in &results {
            println!(
                "{} rollback {}: {}",
                if r.ok { "ok    " } else { "FAILED" },
                r.service,
                r.message
            );
        }
        if let Some((id, message)) = &committed {
            println!("\ncommitted {}: {message}", &id[..12.min(id.len())]);
        }
        for n in &notes {
            println!("note: {n}");
        }
    }
    Ok(super::run_exit(failed || pin_failed))
}

/// The pins a rollback moved, written back and committed (the manifest file alone), or with
/// `--no-commit` a note that the manifest still pins what was rolled back from; plain hosts and
/// Swarm alike. Returns the commit and its message.
fn write_pins(
    loaded: &crate::manifest::Loaded,
    env: &str,
    moves: &[(String, String, String)],
    commit: bool,
    notes: &mut Vec<String>,
) -> Option<(String, String)> {
    if moves.is_empty() {
        return None;
    }
    if !commit {
        notes.push("--no-commit: the manifest still pins the versions rolled back from; plan and audit show the drift".into());
        return None;
    }
    let edits: Vec<(String, String)> = moves
        .iter()
        .map(|(s, _, to)| (s.clone(), to.clone()))
        .collect();
    let message = pins::message("rollback", env, moves);
    match pins::write_and_commit(&loaded.path, &loaded.text, env, &edits, Some(&message)) {
        Ok(id) => id.map(|id| (id, message)),
        Err((_, e)) => {
            notes.push(format!("the pins could not be rewritten: {e}"));
            None
        }
    }
}
