//! Moving an environment between plain hosts and Swarm on the same machines. To Swarm: the hosts
//! to retire are the environment's `hosts:` in the last commit that had them (fleetpin reads its
//! own git history, as rollback does); each is observed, and `plan::moving` says what it gives
//! up, or what stops the move. Back to plain hosts: refused while the cluster still runs the
//! environment's services (docs/swarm.md says how to go back).

use crate::engine::docker::DockerEngine;
use crate::engine::swarm::SwarmEngine;
use crate::engine::{Engine, NetworkInfo};
use crate::host::fleet::{self, HostRef};
use crate::manifest::Loaded;
use crate::ops::context::Ctx;
use crate::ops::error::{OpError, OpResult};
use crate::plan::ChangeKind;
use crate::plan::moving::{self, Retirement};
use crate::plan::swarm::SwarmPlan;
use crate::plan::view;
use std::sync::Arc;

/// The manifest as it was at the newest commit in which `env` ran on plain hosts (`swarm`:
/// on a Swarm), if any. A manifest outside git has no history: nothing to move from.
fn last_with(loaded: &Loaded, env: &str, swarm: bool) -> OpResult<Option<Loaded>> {
    let mut found = None;
    let walked = crate::git::walk_file_changes(&loaded.path, |change| {
        let Some(text) = change.after else {
            return true;
        };
        // Most commits never had a Swarm environment: not worth parsing when looking for one.
        if swarm && !text.contains("swarm") {
            return true;
        }
        let display = format!(
            "{}@{}",
            loaded.path.display(),
            crate::git::short_id(&change.id)
        );
        let Ok(old) = crate::manifest::from_text(&display, &loaded.path, text, Some(change.id))
        else {
            return true; // a commit whose manifest did not load is no evidence either way
        };
        match old.manifest.environments.get(env) {
            Some(e) if e.is_swarm() == swarm && (swarm || !e.hosts.is_empty()) => {
                found = Some(old);
                false
            }
            _ => true,
        }
    });
    if let Err(e) = walked {
        tracing::debug!("no history to move {env} from: {e}");
    }
    Ok(found)
}

/// What each host `env` ran on before gives up, with its engine, when `plan` creates services
/// (the move happens when the environment's services are created on the cluster; once they
/// exist, the old hosts are history). An old host that cannot be reached, or that holds
/// something of those names fleetpin did not create, stops the move before any change.
pub async fn retirements(
    ctx: &Ctx,
    loaded: &Loaded,
    env: &str,
    plan: &SwarmPlan,
) -> OpResult<Vec<(Retirement, Arc<DockerEngine>)>> {
    if !plan.changes.iter().any(|c| c.kind == ChangeKind::Create) {
        return Ok(vec![]);
    }
    let Some(old) = last_with(loaded, env, false)? else {
        return Ok(vec![]);
    };
    let hosts: Vec<HostRef> = fleet::hosts(&old, env, &[])?;
    let platform = &loaded.manifest.platform;
    let prefix = view::prefix(platform, env);
    let mut overlays: Vec<String> = plan
        .changes
        .iter()
        .flat_map(|c| c.resolved.networks.iter().cloned())
        .collect();
    overlays.sort();
    overlays.dedup();
    let observed = fleet::observe_all(hosts, &prefix, ctx.connect_timeout).await;
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for o in observed {
        let (engine, list) = o.result.map_err(|e| {
            OpError::Refused(format!(
                "{} ({}), a host {env} ran on before it moved to Swarm, cannot be reached: {e}; the move retires fleetpin's containers there, so nothing was changed",
                o.host.name,
                o.host.endpoint()
            ))
        })?;
        let mut networks: Vec<(String, Option<NetworkInfo>)> = Vec::new();
        for n in &overlays {
            networks.push((n.clone(), engine.network(n).await?));
        }
        let v = view::classify_owned(platform, env, list);
        match moving::retirement(
            platform,
            env,
            &o.host.name,
            &o.host.endpoint(),
            &v,
            &networks,
        ) {
            Ok(r) if r.is_empty() => {}
            Ok(r) => out.push((r, engine)),
            Err(e) => refusals.extend(e.into_iter().map(|r| r.to_string())),
        }
    }
    if !refusals.is_empty() {
        return Err(OpError::Refused(format!(
            "{env} cannot move to Swarm, nothing was changed:\n  {}",
            refusals.join("\n  ")
        )));
    }
    Ok(out)
}

/// Before a plain apply of `env` that creates containers (a move back creates them all; an
/// upgrade creates none, so the common path reads no history): refused while the Swarm cluster
/// `env` last ran on still runs its services (their published ports and names are the plain
/// containers'). A cluster that cannot be reached is not evidence: the apply goes on.
pub async fn check_back_from_swarm<E>(
    ctx: &Ctx,
    loaded: &Loaded,
    env: &str,
    prepared: &[crate::ops::prepared::Prepared<E>],
) -> OpResult<()> {
    let creates = prepared
        .iter()
        .flat_map(|p| &p.changes)
        .any(|c| c.kind == ChangeKind::Create);
    if !creates {
        return Ok(());
    }
    let Some(old) = last_with(loaded, env, true)? else {
        return Ok(());
    };
    let Ok(engine) = crate::ops::swarm::connect(&old, env, ctx.connect_timeout).await else {
        return Ok(());
    };
    let prefix = view::prefix(&loaded.manifest.platform, env);
    let Ok(services) = engine.services(&prefix).await else {
        return Ok(());
    };
    let ours: Vec<String> = services
        .into_iter()
        .filter(|s| {
            s.labels.get(crate::plan::labels::PLATFORM) == Some(&loaded.manifest.platform)
                && s.labels
                    .get(crate::plan::labels::ENVIRONMENT)
                    .map(String::as_str)
                    == Some(env)
        })
        .map(|s| s.name)
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    Err(OpError::Refused(format!(
        "{env} ran on the Swarm cluster at {} until it was switched back to `hosts:`, and the cluster still runs its services ({}): moving back to plain hosts is not automatic — remove them on the manager (`docker service rm {}`), then apply again (docs/swarm.md, \"Moving an environment from plain hosts to Swarm, and back\")",
        engine.endpoint(),
        ours.join(", "),
        ours.join(" ")
    )))
}

/// Applies a Swarm plan that moves `env` from its old hosts, under the environment's lock: every
/// old host's serving containers step aside, the Swarm services are created and waited for;
/// then the stepped-aside containers are removed — or, if a service failed, the services this
/// move created are removed and every container serves again on its host. Returns the services'
/// results and what the operator should know.
pub async fn run_move(
    op: &crate::ops::context::Op,
    loaded: &Loaded,
    plan: &SwarmPlan,
    engine: &crate::engine::swarm::DockerSwarm,
    old: &[Arc<DockerEngine>],
    options: &crate::ops::run::RunOptions,
) -> OpResult<(Vec<crate::host::swarm::SwarmResult>, Vec<String>)> {
    use crate::host::moving;
    let stamp =
        crate::ops::deploy::stamp(op, loaded, crate::ops::deploy::source_commit(loaded), true);
    let progress = |line: &str| {
        op.emit(crate::ops::context::Progress::Swarm {
            line: line.to_string(),
        })
    };
    let lock = options.lock(op);
    let platform = &plan.platform;
    let env = &plan.environment;
    let work = async {
        let mut notes = Vec::new();
        let mut retired = Vec::new();
        let mut failed_retire = None;
        for (r, e) in plan.retire.iter().zip(old) {
            match moving::retire(e.as_ref(), r, &progress).await {
                Ok(done) => retired.push(done),
                Err((done, err)) => {
                    retired.push(done);
                    failed_retire = Some(format!("{}: {err}", r.host));
                    break;
                }
            }
        }
        let results = match &failed_retire {
            Some(_) => vec![],
            None => {
                crate::host::swarm::apply(
                    loaded,
                    plan,
                    engine,
                    &stamp,
                    options.health_timeout(),
                    &progress,
                )
                .await
            }
        };
        let ok = failed_retire.is_none()
            && results.iter().all(|r| r.ok)
            && results.len() == plan.pending();
        if ok {
            for ((r, e), done) in plan.retire.iter().zip(old).zip(&retired) {
                notes.extend(moving::finish(e.as_ref(), r, done, &progress).await);
                notes.push(format!(
                    "{}: retired {} container(s) of {env}{}",
                    r.host,
                    r.containers.len() + r.kept.len(),
                    if r.networks.is_empty() {
                        String::new()
                    } else {
                        format!(" and network(s) {}", r.networks.join(", "))
                    }
                ));
            }
            return (results, notes, failed_retire);
        }
        // Give the hosts back: first the services this move created (their tasks hold the
        // published ports and the overlays the networks' names), then every container.
        for c in plan.changes.iter().filter(|c| c.kind == ChangeKind::Create) {
            let name = format!("{}{}", view::prefix(platform, env), c.service);
            if let Ok(Some(s)) = engine.service(&name).await {
                progress(&format!("removing service {name}: the move is undone"));
                if let Err(e) = engine.remove_service(&s.id).await {
                    notes.push(format!("service {name} could not be removed: {e}"));
                }
            }
        }
        let mut overlays: Vec<&String> = plan.retire.iter().flat_map(|r| &r.networks).collect();
        overlays.sort();
        overlays.dedup();
        for n in overlays {
            // Removed once the removed services' tasks let go of it (a manager would otherwise
            // hand the overlay to a container put back under the network's name); one still in
            // use by a service that was there before the move stays.
            for _ in 0..40 {
                if engine.remove_network(n).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        let monitor = plan
            .changes
            .iter()
            .map(|c| c.resolved.monitor)
            .max()
            .unwrap_or_default();
        let gate = crate::host::gate::Gate::new(options.health_timeout(), monitor);
        for ((r, e), done) in plan.retire.iter().zip(old).zip(&retired) {
            for p in moving::put_back(e.as_ref(), platform, env, done, &gate, &progress).await {
                notes.push(format!("{}: not put back: {p}", r.host));
            }
        }
        notes.push(format!(
            "the move of {env} to Swarm was undone: its containers serve again on {}",
            plan.retire
                .iter()
                .map(|r| r.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        (results, notes, failed_retire)
    };
    let (results, notes, failed_retire) =
        crate::host::swarm::locked(engine, platform, env, &lock, work).await?;
    if let Some(why) = failed_retire {
        return Err(OpError::Refused(format!(
            "the move of {env} to Swarm stopped while retiring the plain containers ({why}); what was retired serves again: {}",
            notes.join("; ")
        )));
    }
    Ok((results, notes))
}
