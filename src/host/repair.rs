//! Recognising and repairing what an interrupted apply or rollback left on a host, before any
//! planning, under the lock. The swap's states (see `swap`) are visible in names alone, so one
//! list call says where a killed run stopped:
//!
//! ```text
//!  found                                   state    repair
//!  NAME.new-T, never started               S1–S3    remove it: it never ran, it holds nothing
//!  NAME.new-T, started (start-first)       —        stop it gracefully, remove it; never `.failed-`
//!  NAME.old-T, no NAME                     S3       put it back under NAME and start it
//!  NAME.old-T, NAME not running            S4       undo it: NAME leaves the name (removed when
//!   (never started, or stopped since: a             it was new, back to `.prev-` when it was a
//!   daemon restarted under it)                      kept one), the old one back and started;
//!                                                    the plan then swaps afresh
//!  NAME.old-T, NAME running                S5       judge NAME as the killed run would have:
//!                                                    passes → confirm the old one (.prev- /
//!                                                    .rolled-back-); fails its gate → NAME.failed-,
//!                                                    the old one back
//!  NAME stopped, no .old-                  S2       nothing: the plan restarts or replaces it
//! ```
//!
//! Interrupted is not failed: only a running container that fails its gate here, as it would have
//! in the killed run, is kept as `.failed-` — never one that was merely interrupted. A container
//! that stopped under a daemon crash is never started again in place: Docker 20.10 can leave its
//! old network sandbox behind, and the same container started again answers on no port; a fresh
//! one does. Older `.old-`
//! leftovers are confirmed into their role; extra `.failed-` containers (one per service is the
//! rule) are removed.

use crate::engine::{ContainerSummary, Engine, EngineError, RunState};
use crate::host::cleanup::{self, Released};
use crate::host::gate::{self, Gate};
use crate::host::report::Progress;
use crate::host::settings::Settings;
use crate::host::swap;
use crate::manifest::resolve::ResolvedService;
use crate::plan::labels;
use crate::plan::view::{HostView, prefix};
use std::sync::Arc;

/// Why repair stopped on a host: the host is left for the next run, which repairs it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepairError {
    /// The engine refused a step (or stopped answering).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine stopped answering while a container left running was judged: nothing is
    /// decided; the next run judges it again.
    #[error("{why}")]
    Unjudged { container: String, why: String },
    /// The container that served before could not take its name back: put it back by hand
    /// (`docker rename`, `docker start`) or run again.
    #[error("{service}: could not put {container} back under {stable}")]
    NotPutBack {
        service: String,
        container: String,
        stable: String,
    },
}

/// A container failed its gate: an answer repair acts on, not an error that stops it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
struct GateFailed(String);

/// A watch's verdict for repair: failed is an answer (`Err(GateFailed)`), not judged stops repair.
fn judge(
    container: &str,
    judged: Result<(), gate::Judged>,
) -> Result<Result<(), GateFailed>, RepairError> {
    match judged {
        Ok(()) => Ok(Ok(())),
        Err(gate::Judged::Failed(reason)) => Ok(Err(GateFailed(reason))),
        Err(gate::Judged::Unjudged(why)) => Err(RepairError::Unjudged {
            container: container.to_string(),
            why,
        }),
    }
}

/// What repair did on one host, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repaired {
    pub notes: Vec<String>,
}

impl Repaired {
    pub fn acted(&self) -> bool {
        !self.notes.is_empty()
    }
}

/// The gate of a service (defaults for one no longer in the manifest).
fn gate_of(desired: &[Arc<ResolvedService>], service: &str, timeout: std::time::Duration) -> Gate {
    desired
        .iter()
        .find(|r| r.service == service)
        .map(|r| Gate::new(timeout, r.monitor))
        .unwrap_or_else(|| Gate::new(timeout, crate::manifest::DEFAULT_MONITOR))
}

fn version(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::VERSION)
        .map(String::as_str)
        .unwrap_or("?")
}

/// Repairs the states an interrupted run leaves (module comment); `view` is the host as listed,
/// `desired` gives each service's gate (defaults for services no longer in the manifest).
pub async fn repair<E: Engine>(
    engine: &E,
    view: &HostView,
    desired: &[Arc<ResolvedService>],
    settings: &Settings,
    released: &Released,
    progress: Progress<'_>,
) -> Result<Repaired, RepairError> {
    let (platform, environment) = (settings.platform.as_str(), settings.environment.as_str());
    let (timeout, retain) = (settings.health_timeout, settings.retain);
    let mut done = Repaired::default();
    let pre = prefix(platform, environment);
    // Services whose interrupted start-first swap was finished here: their `.old-` is done too.
    let mut finished = std::collections::BTreeSet::new();
    for p in &view.pending {
        let service = p.labels.get(labels::SERVICE).cloned().unwrap_or_default();
        let stable = format!("{pre}{service}");
        let kept = labels::kept_again(&stable, &p.name, crate::host::report::now_millis(), &p.id);
        let old_serves = view
            .current
            .get(&service)
            .is_some_and(|c| c.state == RunState::Running);
        if p.state == RunState::Created {
            progress(&format!("removing {}, left by an interrupted run", p.name));
            swap::discard(engine, released, &p.id, kept.as_deref(), &stable).await;
            done.notes.push(format!(
                "{} (made by an interrupted run, never started) {}",
                p.name,
                if kept.is_some() {
                    "kept again"
                } else {
                    "removed"
                }
            ));
        } else if p.state == RunState::Running && !old_serves {
            // A start-first swap killed after the old one stopped: the new one is what serves.
            let gate = gate_of(desired, &service, timeout);
            let info = engine.inspect_container(&p.id).await?;
            let answers = info
                .networks
                .values()
                .any(|aliases| aliases.contains(&service));
            let judged = if answers {
                Ok(())
            } else {
                judge(&p.name, gate::watch(engine, &p.id, &gate).await)?
            };
            match judged {
                Ok(()) => {
                    let networks = desired
                        .iter()
                        .find(|r| r.service == service)
                        .map(|r| r.networks.clone())
                        .unwrap_or_else(|| info.networks.keys().cloned().collect());
                    swap::attach(engine, &p.id, &networks, &service, true).await?;
                    if let Some(old) = view.current.get(&service) {
                        // Going back to a container created earlier is a rollback's direction.
                        let role = if kept.is_some() && p.created < old.created {
                            labels::Aside::RolledBack
                        } else {
                            labels::Aside::Previous
                        };
                        let aside = labels::aside_name(
                            &stable,
                            role,
                            kept.is_some(),
                            crate::host::report::now_millis(),
                            &old.id,
                        );
                        engine.rename(&old.id, &aside).await?;
                        swap::confirm(engine, &old.id, &aside).await?;
                    }
                    for o in view.unconfirmed.get(&service).into_iter().flatten() {
                        swap::confirm(engine, &o.id, &o.name).await?;
                    }
                    engine.rename(&p.id, &stable).await?;
                    swap::prune_kept(engine, released, &service, view, &p.id, true, retain).await;
                    finished.insert(service.clone());
                    done.notes.push(format!(
                        "{service}: finished the start-first swap to {} an interrupted run began",
                        version(p)
                    ));
                }
                Err(reason) => {
                    swap::mark_failed(engine, released, &p.id, &stable, &service, view).await;
                    let back = match view.current.get(&service) {
                        Some(old) => engine.start(&old.id).await.is_ok(),
                        None => false,
                    };
                    done.notes.push(format!(
                        "{service}: {} an interrupted run was starting failed its gate ({reason}){}",
                        version(p),
                        if back { "; the previous version runs again" } else { "" }
                    ));
                }
            }
        } else {
            // It ran beside the serving one (start-first) and may have answered requests: a
            // graceful stop, never a kill, and it did not fail anything.
            progress(&format!("stopping {}, left by an interrupted run", p.name));
            swap::discard(engine, released, &p.id, kept.as_deref(), &stable).await;
            if let Some(old) = view.current.get(&service)
                && old.state != RunState::Running
                && !view.unconfirmed.contains_key(&service)
            {
                let _ = engine.start(&old.id).await;
            }
            done.notes.push(format!(
                "{} (started by an interrupted run, never confirmed) stopped and {}",
                p.name,
                if kept.is_some() {
                    "kept again"
                } else {
                    "removed"
                }
            ));
        }
    }
    let mut failed_now = std::collections::BTreeSet::new();
    for (service, unconfirmed) in &view.unconfirmed {
        if finished.contains(service) {
            continue;
        }
        let Some((newest, older)) = unconfirmed.split_first() else {
            continue;
        };
        // Leftovers of earlier interruptions are previous versions like any other.
        for o in older {
            swap::confirm(engine, &o.id, &o.name).await?;
            done.notes.push(format!(
                "{service}: kept {} {} left by an earlier interrupted run",
                o.name,
                version(o)
            ));
        }
        let stable = format!("{pre}{service}");
        let gate = gate_of(desired, service, timeout);
        match view.current.get(service) {
            None => {
                // S3: nothing holds the name; the one that was serving goes back.
                progress(&format!(
                    "{service}: no container under its name; restarting the previous one"
                ));
                engine.rename(&newest.id, &stable).await?;
                engine.start(&newest.id).await?;
                let ok = gate::watch(engine, &newest.id, &gate).await;
                done.notes.push(format!(
                    "{service}: restored {} after an interrupted run{}",
                    version(newest),
                    match &ok {
                        Ok(()) => String::new(),
                        Err(r) => format!(" (but: {r})"),
                    }
                ));
            }
            Some(cur) if cur.state != RunState::Running => {
                // S4 (never started), or stopped since (the engine restarted under it): the swap
                // was never judged. Undo it: the incoming container leaves the name — a new one
                // is removed, a kept one goes back to being kept — and the one that served comes
                // back. The next plan does the swap again, afresh.
                progress(&format!(
                    "{service}: undoing the unfinished swap to {}; restarting {}",
                    version(cur),
                    version(newest)
                ));
                let kept = labels::incoming_was_kept(&newest.name).then(|| {
                    format!(
                        "{stable}{}{}",
                        labels::PREV,
                        labels::suffix(crate::host::report::now_millis(), &cur.id)
                    )
                });
                swap::discard(engine, released, &cur.id, kept.as_deref(), &stable).await;
                let back = swap::put_back(engine, &newest.id, &stable).await;
                if !back {
                    return Err(RepairError::NotPutBack {
                        service: service.clone(),
                        container: newest.name.clone(),
                        stable,
                    });
                }
                let ok = gate::watch(engine, &newest.id, &gate).await;
                done.notes.push(format!(
                    "{service}: undid the unfinished swap to {} an interrupted run began; {} serves{}",
                    version(cur),
                    version(newest),
                    match &ok {
                        Ok(()) => String::new(),
                        Err(r) => format!(" (but: {r})"),
                    }
                ));
            }
            Some(cur) => {
                // S5: the incoming container runs; judge it as the killed run would have.
                progress(&format!(
                    "{service}: finishing the swap to {} an interrupted run began",
                    version(cur)
                ));
                let judged = judge(&cur.name, gate::watch(engine, &cur.id, &gate).await)?;
                match judged {
                    Ok(()) => {
                        // A relaunched container may have been stopped before it got its policy.
                        let policy = cur
                            .labels
                            .get(labels::RESTART)
                            .cloned()
                            .unwrap_or_else(|| "unless-stopped".into());
                        engine.set_restart_policy(&cur.id, &policy).await?;
                        swap::confirm(engine, &newest.id, &newest.name).await?;
                        swap::prune_kept(engine, released, service, view, &cur.id, true, retain)
                            .await;
                        done.notes.push(format!(
                            "{service}: finished the swap to {} an interrupted run left unconfirmed",
                            version(cur)
                        ));
                    }
                    Err(reason) => {
                        progress(&format!(
                            "{service}: {} did not pass its gate ({reason}); putting {} back",
                            version(cur),
                            version(newest)
                        ));
                        swap::mark_failed(engine, released, &cur.id, &stable, service, view).await;
                        failed_now.insert(service.clone());
                        let back = swap::put_back(engine, &newest.id, &stable).await
                            && gate::watch(engine, &newest.id, &gate).await.is_ok();
                        done.notes.push(format!(
                            "{service}: {} an interrupted run was deploying failed its gate ({reason}); restored {}{}",
                            version(cur),
                            version(newest),
                            if back { "" } else { " (but it does not pass its gate either)" }
                        ));
                    }
                }
            }
        }
    }
    for (service, failed) in &view.failed {
        if failed_now.contains(service) {
            continue;
        }
        for extra in failed.iter().skip(1) {
            cleanup::remove_container(engine, released, extra).await?;
            done.notes.push(format!(
                "{service}: removed {} (one failed container per service is kept)",
                extra.name
            ));
        }
    }
    Ok(done)
}
