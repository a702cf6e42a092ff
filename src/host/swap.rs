//! The one swap: how one service on one host goes from the container that serves now to another —
//! a new one (apply) or a kept one started again (rollback, relaunch) — without losing the
//! service. Apply, rollback and repair all go through here.
//!
//! ```text
//!  S0 current runs as NAME               ─ create ─▶ S1 + NAME.new-T (created, never started)
//!  S1 ─ stop current ─▶ S2 current stopped, still NAME
//!  S2 ─ rename ─▶ S3 current is NAME.old-T, NAME free (the marker also says whether it goes to
//!                  .prev- or .rolled-back- and whether the incoming container is a kept one:
//!                  .old-, .old-k-, .old-rb-, .old-rbn-; see `labels::aside_name`)
//!  S3 ─ rename ─▶ S4 incoming is NAME (created, or a kept container, never started by this swap)
//!  S4 ─ start  ─▶ S5 incoming runs, its gate pending
//!  S5 ─ gate passes ─▶ S6 current gets restart policy `no`, becomes NAME.prev-T
//!                         (.rolled-back-T when a rollback stepped away from it)   [confirmed]
//!  S5 ─ gate fails  ─▶ incoming stopped (gracefully), becomes NAME.failed-T (the only one of the
//!                      service), current back to NAME and started               [restored]
//! ```
//!
//! A relaunched container skips S1 (it exists) and takes its restart policy back at S4. Every
//! state is visible in names alone, so `repair` recognises where a killed run stopped. A failure
//! before the gate (a stop, rename or start refused) moves the incoming container out of the name
//! and starts the current one again; only a release that failed its gate is kept as `.failed-`. Stops are graceful and
//! wait the container's own stop timeout in full. Fault points let tests kill fleetpin at each
//! step (`interrupt::fault_point`).
//!
//! A kept container the engine refuses to start (its containerd task outlived a daemon crash:
//! Docker then answers `task …: already exists` to every start) must not block the service
//! forever: it goes back to its kept name, a fresh container of the same spec is created in its
//! place (pulled if its image left) and the swap goes on with that one. Once the fresh one passed
//! its gate the refused one is removed, or renamed `.broken-` if the engine refuses that too:
//! never kept, relaunched or rolled back to again. The aside name of the stepped-aside container
//! is changed to the one for a new incoming container first, so repair removes a fresh container
//! a killed run left rather than keeping it.

use crate::engine::{ContainerSummary, CreateSpec, Engine, EngineError};
use crate::host::cleanup::{self, Released};
use crate::host::gate::{self, Gate};
use crate::host::report::{Action, Failure, Progress, Unstartable, now_millis};
use crate::host::settings::OnHost;
use crate::host::spec::create_spec;
use crate::interrupt::fault_point;
use crate::manifest::Order;
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::{ResolvedService, spec_hash};
use crate::plan::labels::{self, Aside};
use crate::plan::view::HostView;
use std::time::{Duration, Instant};

/// What takes the stable name.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A new container created from this spec.
    Create(Box<CreateSpec>),
    /// A kept (`.prev-`/`.rolled-back-`) container started again: no pull, no create.
    Relaunch(ContainerSummary),
}

/// One swap, as its caller decided it.
pub struct Swap<'a> {
    pub service: &'a str,
    /// `{platform}-{environment}-{service}`
    pub stable: &'a str,
    /// What serves now, if anything does.
    pub current: Option<&'a ContainerSummary>,
    pub incoming: Incoming,
    /// The restart policy the service runs with (a relaunched container takes it back).
    pub policy: &'a str,
    /// The role the current container takes once the swap is confirmed.
    pub aside: Aside,
    pub gate: Gate,
    /// Kept previous containers per service (`retain`); older ones are removed.
    pub retain: u32,
    /// The host as listed before the swap: its kept and failed containers are pruned.
    pub view: &'a HostView,
    /// start-first or stop-first (below).
    pub order: Order,
    /// start-first: how long the old container serves on once the new one answers.
    pub drain: Duration,
    /// The service's networks: the incoming container answers on the service's name there.
    pub networks: &'a [String],
    /// Where the images of the containers removed are noted (`host::cleanup`).
    pub released: &'a Released,
    /// For a relaunch: what is created instead if the engine refuses to start the kept container.
    pub fresh: Option<Fresh>,
}

/// A fresh container of a kept one's spec, for when the engine refuses to start the kept one.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub spec: Box<CreateSpec>,
    /// Whether it is the kept container's very spec (its spec hash matches).
    pub same_spec: bool,
    /// The role the current container takes when the fresh one replaces it: apply's going back
    /// to an older kept container is a step back, but to a fresh one a step forward
    /// (`.prev-`); a rollback's is `.rolled-back-` either way.
    pub aside: Aside,
}

impl Fresh {
    /// The spec of the kept container `k` of service `r`: the manifest's service at `k`'s version
    /// (the same spec as `k` whenever only the version moved since, as for a relaunch by apply).
    /// None when `k`'s version label cannot be read back as a pin.
    pub fn of(
        r: &ResolvedService,
        k: &ContainerSummary,
        stamp: &labels::DeployStamp,
        aside: Aside,
    ) -> Option<Fresh> {
        let pin = VersionPin::parse(k.labels.get(labels::VERSION)?).ok()?;
        let kept_hash = k.labels.get(labels::SPEC_HASH);
        if pin == r.pin {
            return Some(Fresh {
                spec: Box::new(create_spec(r, &r.container_name, stamp)),
                same_spec: kept_hash.is_some_and(|h| r.hash_matches(h)),
                aside,
            });
        }
        let mut at = r.clone();
        at.image_ref = pin.image_ref(&r.repository);
        at.pin = pin;
        at.spec_hash = spec_hash(&at);
        Some(Fresh {
            spec: Box::new(create_spec(&at, &r.container_name, stamp)),
            same_spec: kept_hash.is_some_and(|h| *h == at.spec_hash),
            aside,
        })
    }
}

/// A swap that passed its gate.
#[derive(Debug, Clone)]
pub struct Done {
    /// The container now serving under the stable name.
    pub id: String,
    pub health_seconds: f64,
    /// The kept container the engine refused to start, replaced by a fresh one.
    pub unstartable: Option<Unstartable>,
}

impl Done {
    /// Writes what the swap did into the action that asked for it.
    pub fn record(self, action: &mut Action) {
        action.health_seconds = self.health_seconds;
        if let Some(u) = self.unstartable {
            // Not started again after all: a fresh container serves.
            action.relaunched = false;
            action.detail = Some(u.describe());
            action.unstartable = Some(u);
        }
    }
}

/// The one swap for service `r` on a host as `on.view` shows it: from what serves now to
/// `incoming`, the stepped-aside container taking the role `aside`; the gate and `retain` are the
/// run's (`on.settings`). What rollback and a rollout's put-back call.
pub async fn for_service<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    on: OnHost<'_>,
    incoming: Incoming,
    aside: Aside,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    for_service_as(engine, r, on, incoming, aside, aside, progress).await
}

/// `for_service`, where the stepped-aside container takes the role `afresh` instead when a
/// kept container the engine refuses to start is replaced by a fresh one (apply's).
pub async fn for_service_as<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    on: OnHost<'_>,
    incoming: Incoming,
    aside: Aside,
    afresh: Aside,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    let OnHost {
        view,
        released,
        settings,
    } = on;
    let fresh = match &incoming {
        Incoming::Relaunch(k) => Fresh::of(r, k, &settings.stamp, afresh),
        Incoming::Create(_) => None,
    };
    run(
        engine,
        Swap {
            service: &r.service,
            stable: &r.container_name,
            current: view.current.get(&r.service),
            incoming,
            policy: r.restart.as_str(),
            aside,
            gate: settings.gate(r),
            retain: settings.retain,
            view,
            order: r.order,
            drain: r.drain,
            networks: &r.networks,
            released,
            fresh,
        },
        progress,
    )
    .await
}

/// Runs the swap; on failure the current container serves again (`Failure::restored`).
pub async fn run<E: Engine>(
    engine: &E,
    swap: Swap<'_>,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    match (swap.order, swap.current) {
        (Order::StartFirst, Some(cur)) => start_first(engine, swap, cur, progress).await,
        _ => stop_first(engine, swap, progress).await,
    }
}

/// The stop-first swap (the module comment's states).
async fn stop_first<E: Engine>(
    engine: &E,
    swap: Swap<'_>,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    let Swap {
        service,
        stable,
        current,
        incoming,
        policy,
        mut aside,
        gate,
        retain,
        view,
        networks,
        released,
        mut fresh,
        ..
    } = swap;
    let fail = |reason: String| Failure::new(service, reason);
    let stamp = now_millis();

    // S1: the incoming container, stopped.
    let (mut in_id, mut kept_name) = match &incoming {
        Incoming::Create(spec) => {
            let mut spec = spec.clone();
            if current.is_some() {
                spec.name = new_name(stable, stamp);
            }
            let id = create_new(engine, service, &spec, "", progress).await?;
            fault_point("created").await;
            (id, None)
        }
        Incoming::Relaunch(c) => (c.id.clone(), Some(c.name.clone())),
    };
    let relaunch = kept_name.is_some();

    // S2, S3: the current container stopped and stepped aside.
    let mut aside_name = None;
    if let Some(cur) = current {
        progress(&format!(
            "stopping {service} {}",
            cur.labels
                .get(labels::VERSION)
                .map(String::as_str)
                .unwrap_or("")
        ));
        if let Err(e) = engine.stop(&cur.id, None).await {
            // It may be half-way down: make sure it serves, and drop what was prepared.
            let restored = engine.start(&cur.id).await.is_ok();
            discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
            return Err(fail(format!("stopping the running container: {e}")).restored(restored));
        }
        fault_point("stopped").await;
        let name = labels::aside_name(stable, aside, relaunch, stamp, &cur.id);
        if let Err(e) = engine.rename(&cur.id, &name).await {
            let restored = engine.start(&cur.id).await.is_ok();
            discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
            return Err(fail(format!("renaming the running container: {e}")).restored(restored));
        }
        fault_point("renamed-old").await;
        aside_name = Some(name);
    }

    // S4: the incoming container takes the stable name (and, relaunched, its policy back).
    let named = async {
        if current.is_some() || relaunch {
            engine.rename(&in_id, stable).await?;
        }
        fault_point("renamed-new").await;
        if relaunch {
            engine.set_restart_policy(&in_id, policy).await?;
            // A kept container may have been left without the alias (a start-first swap that
            // did not finish): it answers for the service from its start.
            attach(engine, &in_id, networks, service, true).await?;
        }
        Ok::<(), EngineError>(())
    }
    .await;
    if let Err(e) = named {
        // The incoming container leaves the name first, then the serving one takes it back.
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        let restored = match (current, &aside_name) {
            (Some(cur), Some(_)) => put_back(engine, &cur.id, stable).await,
            _ => false,
        };
        return Err(fail(format!("giving {service} its name: {e}")).restored(restored));
    }

    // S5: start and judge.
    progress(&format!("starting {service}"));
    let h = Instant::now();
    let mut refused: Option<Unstartable> = None;
    while let Err(e) = engine.start(&in_id).await {
        if let Some((kept, f)) = refusal_way_out(&e, &mut kept_name, &mut fresh) {
            // The engine refuses to start the kept container: a fresh one of its spec instead.
            progress(&format!(
                "the engine refused to start the retained {service} ({e}); creating it afresh"
            ));
            let u =
                step_out_refused(engine, released, service, stable, &in_id, &kept, &f, &e).await;
            aside = f.aside;
            if let (Some(cur), Some(name)) = (current, aside_name.as_mut()) {
                // Repair must treat what takes the name now as new (removed if a run is killed).
                let renamed = labels::aside_name(stable, aside, false, stamp, &cur.id);
                match engine.rename(&cur.id, &renamed).await {
                    Ok(()) => *name = renamed,
                    Err(e) => tracing::warn!("{service}: could not rename {name}: {e}"),
                }
            }
            let mut spec = (*f.spec).clone();
            spec.name = stable.to_string();
            match create_new(engine, service, &spec, " afresh", progress).await {
                Ok(id) => {
                    in_id = id;
                    refused = Some(u);
                    continue;
                }
                Err(c) => {
                    let restored = match (current, &aside_name) {
                        (Some(cur), Some(_)) => put_back(engine, &cur.id, stable).await,
                        _ => false,
                    };
                    return Err(fail(format!(
                        "{}; creating it afresh failed: {}",
                        u.describe(),
                        c.reason
                    ))
                    .restored(restored));
                }
            }
        }
        // The engine refused to start it (a port taken, a bad mount): it never ran, so it did
        // not fail a gate. It leaves the name; the current container comes back.
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        let restored = match (current, &aside_name) {
            (Some(cur), Some(_)) => put_back(engine, &cur.id, stable).await,
            _ => false,
        };
        return Err(fail(noted(
            &refused,
            format!("the engine could not start it: {e}"),
        ))
        .restored(restored));
    }
    fault_point("started").await;
    progress(&format!("waiting for {service} to pass its gate"));
    let judged = gate::watch(engine, &in_id, &gate).await;
    let health_seconds = h.elapsed().as_secs_f64();

    let judged = match judged {
        Err(gate::Judged::Unjudged(e)) => {
            // The engine went away mid-gate: nothing is decided, and nothing more can be done on
            // it now. The names say where the swap stands; the next run's repair judges it.
            return Err(fail(noted(
                &refused,
                format!(
                    "the gate of {service} could not be judged ({e}); the next run repairs this host"
                ),
            )));
        }
        Err(gate::Judged::Failed(reason)) => Err(reason),
        Ok(()) => Ok(()),
    };
    match judged {
        Ok(()) => {
            // S6: the gate passed.
            if let (Some(cur), Some(name)) = (current, &aside_name)
                && let Err(e) = confirm(engine, &cur.id, name).await
            {
                tracing::warn!(
                    "{service}: could not confirm the previous container as retained: {e}"
                );
            }
            if let Some(u) = refused.as_mut() {
                drop_refused(engine, released, service, stable, u).await;
            }
            let refused_id = refused.as_ref().map(|u| u.id.as_str()).unwrap_or("");
            prune(
                engine,
                released,
                service,
                view,
                &[&in_id, refused_id],
                current.is_some(),
                retain,
            )
            .await;
            if let (Some(cur), 0) = (current, retain) {
                // `retain: 0`: nothing is kept, not even what was just stepped aside.
                let _ = cleanup::remove_container(engine, released, cur).await;
            }
            Ok(Done {
                id: in_id,
                health_seconds,
                unstartable: refused,
            })
        }
        Err(reason) => {
            progress(&format!(
                "{service} did not pass its gate: {reason}; restoring the previous version"
            ));
            let mut f = failure_details(engine, &in_id, service, reason).await;
            f.reason = noted(&refused, f.reason);
            mark_failed(engine, released, &in_id, stable, service, view).await;
            if let (Some(cur), Some(_)) = (current, &aside_name) {
                f.restored = put_back(engine, &cur.id, stable).await
                    && gate::watch(engine, &cur.id, &gate).await.is_ok();
            }
            Err(f)
        }
    }
}

/// The start-first swap: the incoming container starts beside the serving one and gets no
/// traffic through the service's alias until it passed its gate; then it takes the alias, the old
/// one serves on for `drain` (so proxies that re-resolve the alias learn the new address), and
/// is stopped gracefully. A release that fails its gate never interrupted the old one.
///
/// ```text
///  S0  current runs as NAME, on the alias
///  S1' + NAME.new-T, created on the service's networks without the alias   (a kept container
///        relaunched is renamed NAME.new-k-T and re-attached without the alias)
///  S2' NAME.new-T runs beside; its gate pending; no traffic reaches it by the alias
///  S3' gate passed: NAME.new-T re-attached with the alias; both answer       (drain)
///  S4' current stopped gracefully (Docker's DNS drops it); NAME.new-T alone answers
///  S5' current becomes NAME.old-T, NAME.new-T becomes NAME, confirmed: NAME.prev-T
///  S2' gate fails → NAME.new-T stopped gracefully, NAME.failed-T; current never interrupted
/// ```
///
/// Docker's DNS answers on an alias with every running container that has it, judged or not, so
/// the alias cannot be given at create: it is given by re-attaching the container once judged
/// (API 1.41 cannot add an alias to an attachment). Connections the container opened during its
/// gate on those networks are reset once, before it takes any traffic.
async fn start_first<E: Engine>(
    engine: &E,
    swap: Swap<'_>,
    cur: &ContainerSummary,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    let Swap {
        service,
        stable,
        incoming,
        policy,
        mut aside,
        gate,
        retain,
        view,
        drain,
        networks,
        released,
        mut fresh,
        ..
    } = swap;
    let fail = |reason: String| Failure::new(service, reason);
    let stamp = now_millis();

    // S1': the incoming container beside the serving one, reachable by name only.
    let (mut in_id, mut kept_name) = match &incoming {
        Incoming::Create(spec) => {
            let mut spec = (**spec).clone();
            spec.name = new_name(stable, stamp);
            spec.aliases.clear();
            let beside = " beside the running one";
            (
                create_new(engine, service, &spec, beside, progress).await?,
                None,
            )
        }
        Incoming::Relaunch(k) => {
            let pending = labels::pending_kept_name(stable, &k.name, stamp, &k.id);
            let prepared = async {
                engine.rename(&k.id, &pending).await?;
                engine.set_restart_policy(&k.id, policy).await?;
                attach(engine, &k.id, networks, service, false).await
            }
            .await;
            if let Err(e) = prepared {
                discard(engine, released, &k.id, Some(&k.name), stable).await;
                return Err(fail(format!("preparing the kept container: {e}")).restored(true));
            }
            (k.id.clone(), Some(k.name.clone()))
        }
    };
    fault_point("created").await;

    // S2': started beside, judged.
    progress(&format!("starting {service} beside the running one"));
    let h = Instant::now();
    let mut refused: Option<Unstartable> = None;
    while let Err(e) = engine.start(&in_id).await {
        if let Some((kept, f)) = refusal_way_out(&e, &mut kept_name, &mut fresh) {
            // The engine refuses to start the kept container: a fresh one of its spec instead,
            // beside the serving one like any new container.
            progress(&format!(
                "the engine refused to start the retained {service} ({e}); creating it afresh"
            ));
            let u =
                step_out_refused(engine, released, service, stable, &in_id, &kept, &f, &e).await;
            aside = f.aside;
            let mut spec = (*f.spec).clone();
            spec.name = new_name(stable, stamp);
            spec.aliases.clear();
            let how = " afresh beside the running one";
            match create_new(engine, service, &spec, how, progress).await {
                Ok(id) => {
                    in_id = id;
                    refused = Some(u);
                    continue;
                }
                Err(c) => {
                    return Err(fail(format!(
                        "{}; creating it afresh failed: {}",
                        u.describe(),
                        c.reason
                    ))
                    .restored(true));
                }
            }
        }
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        return Err(fail(noted(
            &refused,
            format!("the engine could not start it: {e}"),
        ))
        .restored(true));
    }
    fault_point("started").await;
    progress(&format!("waiting for {service} to pass its gate"));
    match gate::watch(engine, &in_id, &gate).await {
        Ok(()) => {}
        Err(gate::Judged::Unjudged(e)) => {
            return Err(fail(noted(
                &refused,
                format!(
                    "the gate of {service} could not be judged ({e}); the next run repairs this host"
                ),
            )));
        }
        Err(gate::Judged::Failed(reason)) => {
            progress(&format!(
                "{service} did not pass its gate: {reason}; the running version was never interrupted"
            ));
            let mut f = failure_details(engine, &in_id, service, reason).await;
            f.reason = noted(&refused, f.reason);
            mark_failed(engine, released, &in_id, stable, service, view).await;
            return Err(f.restored(true));
        }
    }
    let health_seconds = h.elapsed().as_secs_f64();

    // S3': it answers for the service, beside the old one, for `drain`.
    progress(&format!(
        "{service} passed its gate; giving it the service's name"
    ));
    if let Err(e) = attach(engine, &in_id, networks, service, true).await {
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        return Err(fail(format!("giving it the alias {service}: {e}")).restored(true));
    }
    fault_point("aliased").await;
    if !drain.is_zero() {
        progress(&format!(
            "draining the previous {service} for {}s",
            drain.as_secs_f64()
        ));
        tokio::time::sleep(drain).await;
    }

    // S4': the old one stops gracefully; Docker's DNS stops answering with it.
    progress(&format!(
        "stopping the previous {service} {}",
        cur.labels
            .get(labels::VERSION)
            .map(String::as_str)
            .unwrap_or("")
    ));
    if let Err(e) = engine.stop(&cur.id, None).await {
        // Both still answer: go back to the old one alone.
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        let restored = engine.start(&cur.id).await.is_ok();
        return Err(fail(format!("stopping the previous container: {e}")).restored(restored));
    }
    fault_point("stopped").await;

    // S5': the names follow; traffic does not depend on them.
    let name = labels::aside_name(stable, aside, kept_name.is_some(), stamp, &cur.id);
    let named = async {
        engine.rename(&cur.id, &name).await?;
        fault_point("renamed-old").await;
        engine.rename(&in_id, stable).await?;
        fault_point("renamed-new").await;
        Ok::<(), EngineError>(())
    }
    .await;
    if let Err(e) = named {
        // The new version serves; only its name is left, which the next run's repair gives it.
        return Err(fail(format!(
            "{service} serves the new version, but renaming failed ({e}); the next run finishes it"
        )));
    }
    if let Err(e) = confirm(engine, &cur.id, &name).await {
        tracing::warn!("{service}: could not confirm the previous container as retained: {e}");
    }
    if let Some(u) = refused.as_mut() {
        drop_refused(engine, released, service, stable, u).await;
    }
    let refused_id = refused.as_ref().map(|u| u.id.as_str()).unwrap_or("");
    prune(
        engine,
        released,
        service,
        view,
        &[&in_id, refused_id],
        true,
        retain,
    )
    .await;
    if retain == 0 {
        let _ = cleanup::remove_container(engine, released, cur).await;
    }
    Ok(Done {
        id: in_id,
        health_seconds,
        unstartable: refused,
    })
}

/// Whether a start refused with `e` is one a fresh container gets round: the incoming container
/// was a kept one, a fresh spec is at hand (taken, so it is tried once) and the engine answered
/// (an engine that went away refuses nothing). Returns the kept name and the fresh spec.
fn refusal_way_out(
    e: &EngineError,
    kept_name: &mut Option<String>,
    fresh: &mut Option<Fresh>,
) -> Option<(String, Fresh)> {
    if e.is_unreachable() || kept_name.is_none() || fresh.is_none() {
        return None;
    }
    Some((kept_name.take()?, fresh.take()?))
}

/// The kept container `id` the engine refused to start (`e`) leaves the name the swap gave it
/// and takes its kept name back (restart policy `no`), until the fresh one passed its gate.
#[allow(clippy::too_many_arguments)]
async fn step_out_refused<E: Engine>(
    engine: &E,
    released: &Released,
    service: &str,
    stable: &str,
    id: &str,
    kept: &str,
    fresh: &Fresh,
    e: &EngineError,
) -> Unstartable {
    tracing::warn!("{service}: the engine refused to start the kept container {kept}: {e}");
    discard(engine, released, id, Some(kept), stable).await;
    Unstartable {
        container: kept.to_string(),
        id: id.to_string(),
        reason: e.to_string(),
        same_spec: fresh.same_spec,
        removed: false,
        left_as: None,
        removal_error: None,
    }
}

/// The fresh container passed its gate: the refused one is removed, or renamed `.broken-` when
/// the engine refuses that too (never kept, relaunched or rolled back to; a later swap of the
/// service removes it when the engine allows).
async fn drop_refused<E: Engine>(
    engine: &E,
    released: &Released,
    service: &str,
    stable: &str,
    u: &mut Unstartable,
) {
    match cleanup::remove_by_id(engine, released, &u.id).await {
        Ok(()) => u.removed = true,
        Err(e) => {
            let broken = format!(
                "{stable}{}{}",
                labels::BROKEN,
                labels::suffix(now_millis(), &u.id)
            );
            u.removal_error = Some(e.to_string());
            u.left_as = Some(match engine.rename(&u.id, &broken).await {
                Ok(()) => broken,
                Err(r) => {
                    tracing::warn!("{service}: could not rename {} either: {r}", u.container);
                    u.container.clone()
                }
            });
        }
    }
}

/// A failure's reason, after the kept container was replaced by a fresh one: says so first.
fn noted(refused: &Option<Unstartable>, reason: String) -> String {
    match refused {
        Some(u) => format!("{}; {reason}", u.describe()),
        None => reason,
    }
}

/// The name of an incoming container while the stable name is taken: `NAME.new-T`.
fn new_name(stable: &str, stamp: u128) -> String {
    format!("{stable}{}{}", labels::NEW, labels::suffix(stamp, "0"))
}

/// S1 / S1': the incoming container created (`how`: where it runs, for the progress line).
async fn create_new<E: Engine>(
    engine: &E,
    service: &str,
    spec: &CreateSpec,
    how: &str,
    progress: Progress<'_>,
) -> Result<String, Failure> {
    progress(&format!("creating {service}{how}"));
    tracing::debug!("{service}: creating {spec:?}");
    create(engine, spec, progress)
        .await
        .map_err(|e| Failure::new(service, e.to_string()))
}

/// Creates the container. If its image is gone since it was pulled or found (another run on this
/// host removed it as unused in between: `host::cleanup`), it is pulled again, once.
async fn create<E: Engine>(
    engine: &E,
    spec: &CreateSpec,
    progress: Progress<'_>,
) -> Result<String, EngineError> {
    match engine.create_container(spec).await {
        Err(EngineError::NotFound { .. })
            if matches!(engine.inspect_image(&spec.image).await, Ok(None)) =>
        {
            progress(&format!("pulling {} again: it left the host", spec.image));
            let credentials = crate::engine::credentials::for_image(&spec.image)
                .await
                .unwrap_or_default();
            engine.pull(&spec.image, credentials).await?;
            engine.create_container(spec).await
        }
        other => other,
    }
}

/// (Re-)attaches a container to the service's networks, answering there on the service's alias
/// (`answer`) or by its own name only. An attachment cannot gain or lose an alias, so one that is
/// not as wanted is dropped and made again.
pub async fn attach<E: Engine>(
    engine: &E,
    id: &str,
    networks: &[String],
    service: &str,
    answer: bool,
) -> Result<(), EngineError> {
    let aliases: Vec<String> = if answer {
        vec![service.to_string()]
    } else {
        vec![]
    };
    let now = engine.inspect_container(id).await?;
    for n in networks {
        let has = now.networks.get(n);
        let as_wanted = has.is_some_and(|l| l.iter().any(|a| a == service) == answer);
        if as_wanted {
            continue;
        }
        if has.is_some() {
            engine.disconnect_network(id, n).await?;
        }
        engine.connect_network(id, n, &aliases).await?;
    }
    Ok(())
}

/// S6 for a container stepped aside: restart policy `no` (a daemon restart must not start it),
/// then the role its unconfirmed name says.
pub async fn confirm<E: Engine>(engine: &E, id: &str, aside: &str) -> Result<(), EngineError> {
    engine.set_restart_policy(id, "no").await?;
    engine.rename(id, &labels::confirmed(aside).1).await
}

/// Puts the container that was serving back under the stable name (free by now) and starts it.
pub async fn put_back<E: Engine>(engine: &E, id: &str, stable: &str) -> bool {
    engine.rename(id, stable).await.is_ok() && engine.start(id).await.is_ok()
}

/// Drops an incoming container that never passed a gate: a created one is removed (stopped
/// gracefully first if it ran), a kept one goes back to a retained name with policy `no`.
/// Whatever its name now — the stable one included — it leaves it.
pub async fn discard<E: Engine>(
    engine: &E,
    released: &Released,
    id: &str,
    kept_name: Option<&str>,
    stable: &str,
) {
    match kept_name {
        None => {
            let _ = engine.stop(id, None).await;
            let _ = cleanup::remove_by_id(engine, released, id).await;
        }
        Some(name) => {
            let _ = engine.stop(id, None).await;
            // A kept container keeps a retained name; if its old one is taken, a fresh one.
            if engine.rename(id, name).await.is_err() {
                let _ = engine
                    .rename(
                        id,
                        &format!(
                            "{stable}{}{}",
                            labels::PREV,
                            labels::suffix(now_millis(), id)
                        ),
                    )
                    .await;
            }
            let _ = engine.set_restart_policy(id, "no").await;
        }
    }
}

/// Keeps a container that failed its gate, stopped, for its logs: `NAME.failed-T`, restart
/// policy `no`, the only failed one of its service.
pub async fn mark_failed<E: Engine>(
    engine: &E,
    released: &Released,
    id: &str,
    stable: &str,
    service: &str,
    view: &HostView,
) {
    let _ = engine.stop(id, None).await;
    // The name must move: the stable name is what the restored container needs.
    for attempt in 0..3u128 {
        let failed = format!(
            "{stable}{}{}",
            labels::FAILED,
            labels::suffix(now_millis() + attempt, id)
        );
        match engine.rename(id, &failed).await {
            Err(EngineError::Conflict { .. }) => continue,
            _ => break,
        }
    }
    let _ = engine.set_restart_policy(id, "no").await;
    for older in view.failed.get(service).into_iter().flatten() {
        if older.id != id {
            let _ = cleanup::remove_container(engine, released, older).await;
        }
    }
}

/// The health log and log tail of a container that failed its gate.
pub async fn failure_details<E: Engine>(
    engine: &E,
    id: &str,
    service: &str,
    reason: String,
) -> Failure {
    let health_log = engine
        .inspect_container(id)
        .await
        .map(|d| d.health_log.into_iter().rev().take(5).rev().collect())
        .unwrap_or_default();
    let logs = engine.logs_tail(id, 20).await.unwrap_or_default();
    Failure {
        service: service.to_string(),
        reason,
        health_log,
        logs,
        restored: false,
        judged: true,
    }
}

/// Keeps at most `retain` previous containers of a service, counting the one just stepped aside
/// (`one_more`): those a rollback stepped away from go first, then the oldest created. The
/// container now serving (`serving`, when it was a kept one) is not a previous one any more.
pub async fn prune_kept<E: Engine>(
    engine: &E,
    released: &Released,
    service: &str,
    view: &HostView,
    serving: &str,
    one_more: bool,
    retain: u32,
) {
    prune(
        engine,
        released,
        service,
        view,
        &[serving],
        one_more,
        retain,
    )
    .await
}

/// `prune_kept`, not counting the containers `gone` (the one serving now, and a kept one the
/// engine refused to start, dealt with already). `.broken-` containers of the service are
/// removed too, if the engine allows it by now.
async fn prune<E: Engine>(
    engine: &E,
    released: &Released,
    service: &str,
    view: &HostView,
    gone: &[&str],
    one_more: bool,
    retain: u32,
) {
    for b in view.broken.get(service).into_iter().flatten() {
        if let Err(e) = cleanup::remove_container(engine, released, b).await {
            tracing::debug!("{service}: {} still cannot be removed: {e}", b.name);
        }
    }
    let mut kept: Vec<&ContainerSummary> = view
        .kept(service)
        .into_iter()
        .filter(|c| !gone.contains(&c.id.as_str()))
        .collect();
    let room = (retain as usize).saturating_sub(usize::from(one_more));
    if kept.len() <= room {
        return;
    }
    // Removal order: rolled-back ones, oldest created first, then retained ones the same way.
    kept.sort_by(|a, b| {
        let rb = |c: &ContainerSummary| c.name.contains(labels::ROLLED_BACK);
        rb(b).cmp(&rb(a)).then_with(|| a.created.cmp(&b.created))
    });
    let excess = kept.len() - room;
    for c in kept.into_iter().take(excess) {
        if let Err(e) = cleanup::remove_container(engine, released, c).await {
            tracing::warn!(
                "{service}: could not remove the old container {}: {e}",
                c.name
            );
        }
    }
}
