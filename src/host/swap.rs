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

use crate::engine::{ContainerSummary, CreateSpec, Engine, EngineError};
use crate::host::cleanup::{self, Released};
use crate::host::gate::{self, Gate};
use crate::host::report::{Failure, Progress, now_millis};
use crate::host::settings::OnHost;
use crate::interrupt::fault_point;
use crate::manifest::Order;
use crate::manifest::resolve::ResolvedService;
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
}

/// A swap that passed its gate.
#[derive(Debug, Clone)]
pub struct Done {
    /// The container now serving under the stable name.
    pub id: String,
    pub health_seconds: f64,
}

/// The one swap for service `r` on a host as `on.view` shows it: from what serves now to
/// `incoming`, the stepped-aside container taking the role `aside`; the gate and `retain` are the
/// run's (`on.settings`). What apply, rollback and a rollout's put-back call.
pub async fn for_service<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    on: OnHost<'_>,
    incoming: Incoming,
    aside: Aside,
    progress: Progress<'_>,
) -> Result<Done, Failure> {
    let OnHost {
        view,
        released,
        settings,
    } = on;
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
        aside,
        gate,
        retain,
        view,
        networks,
        released,
        ..
    } = swap;
    let fail = |reason: String| Failure::new(service, reason);
    let stamp = now_millis();

    // S1: the incoming container, stopped.
    let (in_id, kept_name) = match &incoming {
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
    if let Err(e) = engine.start(&in_id).await {
        // The engine refused to start it (a port taken, a bad mount): it never ran, so it did
        // not fail a gate. It leaves the name; the current container comes back.
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        let restored = match (current, &aside_name) {
            (Some(cur), Some(_)) => put_back(engine, &cur.id, stable).await,
            _ => false,
        };
        return Err(fail(format!("the engine could not start it: {e}")).restored(restored));
    }
    fault_point("started").await;
    progress(&format!("waiting for {service} to pass its gate"));
    let judged = gate::watch(engine, &in_id, &gate).await;
    let health_seconds = h.elapsed().as_secs_f64();

    let judged = match judged {
        Err(gate::Judged::Unjudged(e)) => {
            // The engine went away mid-gate: nothing is decided, and nothing more can be done on
            // it now. The names say where the swap stands; the next run's repair judges it.
            return Err(fail(format!(
                "the gate of {service} could not be judged ({e}); the next run repairs this host"
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
            prune_kept(
                engine,
                released,
                service,
                view,
                &in_id,
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
            })
        }
        Err(reason) => {
            progress(&format!(
                "{service} did not pass its gate: {reason}; restoring the previous version"
            ));
            let mut f = failure_details(engine, &in_id, service, reason).await;
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
        aside,
        gate,
        retain,
        view,
        drain,
        networks,
        released,
        ..
    } = swap;
    let fail = |reason: String| Failure::new(service, reason);
    let stamp = now_millis();

    // S1': the incoming container beside the serving one, reachable by name only.
    let (in_id, kept_name) = match &incoming {
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
    if let Err(e) = engine.start(&in_id).await {
        discard(engine, released, &in_id, kept_name.as_deref(), stable).await;
        return Err(fail(format!("the engine could not start it: {e}")).restored(true));
    }
    fault_point("started").await;
    progress(&format!("waiting for {service} to pass its gate"));
    match gate::watch(engine, &in_id, &gate).await {
        Ok(()) => {}
        Err(gate::Judged::Unjudged(e)) => {
            return Err(fail(format!(
                "the gate of {service} could not be judged ({e}); the next run repairs this host"
            )));
        }
        Err(gate::Judged::Failed(reason)) => {
            progress(&format!(
                "{service} did not pass its gate: {reason}; the running version was never interrupted"
            ));
            let f = failure_details(engine, &in_id, service, reason).await;
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
    prune_kept(engine, released, service, view, &in_id, true, retain).await;
    if retain == 0 {
        let _ = cleanup::remove_container(engine, released, cur).await;
    }
    Ok(Done {
        id: in_id,
        health_seconds,
    })
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
    let mut kept: Vec<&ContainerSummary> = view
        .kept(service)
        .into_iter()
        .filter(|c| c.id != serving)
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
