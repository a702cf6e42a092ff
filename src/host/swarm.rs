//! The Swarm run, beside the host machinery: the environment's lock (one config object on the
//! cluster, judged by `host::lock`'s rules), then each pending change of a `plan::swarm` plan
//! applied as a create or update of one Swarm service and waited for until Swarm reports it
//! converged (or rolled back). Swarm itself rolls the tasks (update_config: order, monitor,
//! parallelism from `max_parallel`, failure_action rollback); this is the one place that
//! changes a Swarm cluster, as the rest of `host` is for plain hosts.

use crate::engine::EngineError;
use crate::engine::swarm::{LockObject, ServiceWant, SwarmEngine};
use crate::host::lock::{self, LockConfig, Stale, judge};
use crate::manifest::resolve;
use crate::manifest::{Loaded, Publish, RestartPolicy};
use crate::plan::ChangeKind;
use crate::plan::labels::{self, DeployStamp};
use crate::plan::swarm::{HISTORY, SwarmChange, SwarmPlan, kept_stamp, next_history, serving};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Swarm updates this many tasks at once when the environment has no `max_parallel`.
pub const DEFAULT_PARALLELISM: u64 = 1;

/// What the service becomes for `change`; `image` is the reference with its digest.
fn want(
    loaded: &Loaded,
    env: &str,
    c: &SwarmChange,
    image: &str,
    stamp: &DeployStamp,
) -> ServiceWant {
    let m = &loaded.manifest;
    let e = &m.environments[env];
    let r = &c.resolved;
    let container_labels = labels::for_service(r, stamp);
    let mut service_labels = container_labels.clone();
    let history = next_history(c, m.retain);
    service_labels.insert(
        HISTORY.into(),
        serde_json::to_string(&history).unwrap_or_else(|_| "[]".into()),
    );
    let mut env_list: Vec<String> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env_list.extend(
        r.secret_env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose())),
    );
    let hc = r.healthcheck.as_ref().map(|h| {
        (
            h.test.clone(),
            h.interval.unwrap_or(Duration::from_secs(30)),
            h.timeout.unwrap_or(Duration::from_secs(30)),
            h.retries.unwrap_or(3),
            h.start_period.unwrap_or_default(),
        )
    });
    ServiceWant {
        name: r.container_name.clone(),
        image: image.to_string(),
        labels: service_labels,
        container_labels,
        env: env_list,
        command: r.command.clone(),
        entrypoint: r.entrypoint.clone(),
        user: r.user.clone(),
        ports: r
            .ports
            .iter()
            .map(|p| {
                (
                    p.host,
                    p.container,
                    p.protocol == crate::manifest::values::Protocol::Udp,
                )
            })
            .collect(),
        publish_host: e.swarm.as_ref().map(|s| s.publish) == Some(Publish::Host),
        replicas: c.replicas,
        start_first: r.order == crate::manifest::Order::StartFirst,
        parallelism: e
            .max_parallel
            .map(|p| p as u64)
            .unwrap_or(DEFAULT_PARALLELISM),
        monitor: r.monitor,
        stop_grace: r.stop_timeout,
        restart: match r.restart {
            RestartPolicy::No => "none",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always | RestartPolicy::UnlessStopped => "any",
        },
        memory: r.memory,
        cpus: r.cpus,
        healthcheck: hc,
        credentials: None,
        networks: r
            .networks
            .iter()
            .map(|n| (n.clone(), r.service.clone()))
            .collect(),
        mounts: r
            .mounts
            .iter()
            .map(|m| match &m.source {
                resolve::MountSource::Volume { name } => {
                    (name.clone(), m.target.clone(), false, m.read_only)
                }
                resolve::MountSource::Bind { path } => {
                    (path.clone(), m.target.clone(), true, m.read_only)
                }
            })
            .collect(),
    }
}

/// How one service's change ended.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmResult {
    pub service: String,
    pub kind: ChangeKind,
    pub ok: bool,
    pub message: String,
}

/// Why one service's change did not converge; its text is the result's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The manager refused or did not answer while `service` was changed.
    #[error("{error}")]
    Engine { service: String, error: EngineError },
    #[error("service {name} disappeared")]
    Disappeared { name: String },
    #[error("the update of {name} failed and Swarm rolled it back ({state}): {message}")]
    RolledBack {
        name: String,
        state: String,
        message: String,
    },
    #[error(
        "{name}: its tasks did not all run within {seconds}s (update state: {})",
        if state.is_empty() { "none" } else { state.as_str() }
    )]
    NotConverged {
        name: String,
        seconds: u64,
        state: String,
    },
}

/// Applies the pending changes of `plan`, one service after another, each waited for until Swarm
/// reports its update completed (or rolled back) and its tasks run.
pub async fn apply<S: SwarmEngine>(
    loaded: &Loaded,
    plan: &SwarmPlan,
    engine: &S,
    stamp: &DeployStamp,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Vec<SwarmResult> {
    let mut out = Vec::new();
    for c in plan.changes.iter().filter(|c| c.kind.is_pending()) {
        let r = apply_one(loaded, plan, c, engine, stamp, timeout, progress).await;
        let ok = r.is_ok();
        out.push(SwarmResult {
            service: c.service.clone(),
            kind: c.kind,
            ok,
            message: r.unwrap_or_else(|e| e.to_string()),
        });
        if !ok {
            break;
        }
    }
    out
}

async fn apply_one<S: SwarmEngine>(
    loaded: &Loaded,
    plan: &SwarmPlan,
    c: &SwarmChange,
    engine: &S,
    stamp: &DeployStamp,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<String, ChangeError> {
    let r = &c.resolved;
    let failed = |error: EngineError| ChangeError::Engine {
        service: c.service.clone(),
        error,
    };
    // As the docker CLI finds them (a failing helper leaves it anonymous, as for a pull).
    let credentials = crate::engine::credentials::for_image(&r.repository)
        .await
        .ok()
        .flatten();
    let (stamp, image) = match (&c.current, c.kind) {
        (Some(cur), ChangeKind::Scale) => (kept_stamp(cur), cur.image.clone()),
        _ => match &c.image {
            Some(image) => (stamp.clone(), image.clone()),
            None => (
                stamp.clone(),
                engine
                    .image_with_digest(&r.image_ref, credentials.clone())
                    .await,
            ),
        },
    };
    let mut w = want(loaded, &plan.environment, c, &image, &stamp);
    w.credentials = credentials;
    progress(&format!(
        "{} {} {} ({} replica{})",
        c.kind.as_str(),
        c.service,
        c.to,
        c.replicas,
        if c.replicas == 1 { "" } else { "s" }
    ));
    for n in &w.networks {
        engine
            .ensure_overlay(
                &n.0,
                &labels::for_resource(&plan.platform, &plan.environment),
            )
            .await
            .map_err(failed)?;
    }
    let id = match &c.current {
        None => engine.create(&w).await.map_err(failed)?,
        Some(cur) => {
            // The version of the spec now, not the one planned: a task's state changes it.
            let now = engine
                .service(&cur.id)
                .await
                .map_err(failed)?
                .ok_or_else(|| ChangeError::Disappeared {
                    name: cur.name.clone(),
                })?;
            engine
                .update(&now.id, now.version, &w)
                .await
                .map_err(failed)?;
            now.id
        }
    };
    let want_hash = w
        .container_labels
        .get(labels::SPEC_HASH)
        .cloned()
        .unwrap_or_default();
    let deadline = Instant::now() + timeout;
    loop {
        let s =
            engine
                .service(&id)
                .await
                .map_err(failed)?
                .ok_or_else(|| ChangeError::Disappeared {
                    name: w.name.clone(),
                })?;
        let state = s.update_state.clone().unwrap_or_default();
        if state.starts_with("rollback") || state == "paused" {
            if state == "rollback_completed" || state == "rollback_paused" || state == "paused" {
                // Swarm put the previous spec back (labels included): report once its tasks
                // serve again, so the caller's next step sees the old version serving.
                let back = s.labels.get(labels::SPEC_HASH).cloned().unwrap_or_default();
                while Instant::now() < deadline {
                    let tasks = engine.tasks(&id).await.map_err(failed)?;
                    if serving(&tasks, &back) as u64 >= c.replicas_from.unwrap_or(c.replicas) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                return Err(ChangeError::RolledBack {
                    name: w.name.clone(),
                    state,
                    message: s.update_message.unwrap_or_default(),
                });
            }
        } else if state.is_empty() || state == "completed" {
            let tasks = engine.tasks(&id).await.map_err(failed)?;
            if serving(&tasks, &want_hash) as u64 == c.replicas {
                return Ok(format!("{} task(s) running", c.replicas));
            }
        }
        if Instant::now() >= deadline {
            return Err(ChangeError::NotConverged {
                name: w.name.clone(),
                seconds: timeout.as_secs(),
                state,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Why the environment's lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmLockError {
    #[error(
        "{environment} is locked by {owner} on {machine} (pid {pid}){operation} since {since}; it expires within {ttl}s unless renewed; if that run was killed: fleetpin unlock {environment}"
    )]
    Held {
        environment: String,
        owner: String,
        /// ` for apply (apply-…)`, or nothing for a lock that does not say.
        operation: String,
        machine: String,
        pid: String,
        since: String,
        ttl: String,
    },
    #[error("the lock {name} vanished once taken")]
    Vanished { name: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The environment's lock on a Swarm cluster: a config object `fleetpin-lock-{platform}-{env}`
/// (atomic by name), with the owner, machine, process and TTL in its labels as on a plain host
/// (`host::lock`), renewed by rewriting its labels — the manager stamps `UpdatedAt` — and judged
/// by the manager's clock with the same rules (`host::lock::judge`).
pub struct SwarmLock {
    pub lock: LockObject,
    labels: BTreeMap<String, String>,
    pub ttl: Duration,
    beats: u64,
}

/// The config object as `host::lock::judge` reads a lock: its labels, its creation, and its
/// last label rewrite as the newest heartbeat.
fn observed(l: &LockObject) -> lock::Observed {
    lock::Observed {
        lock: crate::observed::ContainerSummary {
            id: l.id.clone(),
            name: l.name.clone(),
            image: String::new(),
            image_id: String::new(),
            state: crate::observed::RunState::Created,
            health: crate::observed::Health::None,
            labels: l.labels.clone(),
            created: l.created,
        },
        last_beat: l.updated.max(l.created),
        strays: vec![],
    }
}

/// Takes the lock of `env`, waiting up to `wait` for a held one.
pub async fn acquire<S: SwarmEngine>(
    engine: &S,
    platform: &str,
    env: &str,
    config: &LockConfig,
) -> Result<SwarmLock, SwarmLockError> {
    let name = lock::name(platform, env);
    let labels = lock::owner_labels(config, platform, env);
    let deadline = config.wait.map(|w| Instant::now() + w);
    loop {
        match engine.lock_create(&name, &labels).await {
            Ok(_) => {
                let lock = engine
                    .lock_get(&name)
                    .await?
                    .ok_or_else(|| SwarmLockError::Vanished { name: name.clone() })?;
                return Ok(SwarmLock {
                    lock,
                    labels,
                    ttl: config.ttl,
                    beats: 0,
                });
            }
            Err(EngineError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(held) = engine.lock_get(&name).await? else {
            continue;
        };
        let now = engine.clock().await?;
        let o = observed(&held);
        match judge(&o, now, config.machine.as_deref()) {
            Stale::Expired | Stale::HolderGone => {
                // By id and version: a lock someone else just took fresh is never removed.
                engine.lock_remove(&held.id).await?;
                continue;
            }
            Stale::Fresh => {}
        }
        if deadline.is_some_and(|d| Instant::now() < d) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let get = |k: &str| held.labels.get(k).cloned().unwrap_or_else(|| "?".into());
        return Err(SwarmLockError::Held {
            environment: env.to_string(),
            owner: get(labels::LOCK_OWNER),
            operation: lock::operation_of(&held.labels),
            machine: get(labels::LOCK_HOSTNAME),
            pid: get(labels::LOCK_PID),
            since: crate::clock::rfc3339(crate::clock::from_unix(held.created)),
            ttl: get(labels::LOCK_TTL),
        });
    }
}

/// Renews the lock every third of its TTL for as long as it is polled (run it beside the work).
pub async fn keep<S: SwarmEngine>(engine: &S, held: &mut SwarmLock) {
    loop {
        tokio::time::sleep(held.ttl / 3).await;
        held.beats += 1;
        let mut l = held.labels.clone();
        l.insert("io.fleetpin.lock.beat".into(), held.beats.to_string());
        if engine.lock_touch(&held.lock, &l).await.is_ok()
            && let Ok(Some(now)) = engine.lock_get(&held.lock.name).await
        {
            held.lock = now;
        }
    }
}

pub async fn release<S: SwarmEngine>(engine: &S, held: &SwarmLock) {
    let _ = engine.lock_remove(&held.lock.id).await;
}

/// Applies `plan` under the environment's lock: what apply and rollback both run on a Swarm
/// environment (rollback's plan holds the versions it goes back to).
pub async fn run<S: SwarmEngine>(
    loaded: &Loaded,
    plan: &SwarmPlan,
    engine: &S,
    stamp: &DeployStamp,
    lock: &LockConfig,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<Vec<SwarmResult>, SwarmLockError> {
    locked(
        engine,
        &plan.platform,
        &plan.environment,
        lock,
        apply(loaded, plan, engine, stamp, timeout, progress),
    )
    .await
}

/// Runs `work` holding the environment's lock, renewed while it runs, released after.
pub async fn locked<S: SwarmEngine, T>(
    engine: &S,
    platform: &str,
    env: &str,
    lock: &LockConfig,
    work: impl std::future::Future<Output = T>,
) -> Result<T, SwarmLockError> {
    let mut held = acquire(engine, platform, env, lock).await?;
    let out = {
        let renew = keep(engine, &mut held);
        tokio::pin!(renew);
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            _ = &mut renew => unreachable!("the renewal never ends"),
        }
    };
    release(engine, &held).await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let e = ChangeError::NotConverged {
            name: "acme-prod-api".into(),
            seconds: 60,
            state: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "acme-prod-api: its tasks did not all run within 60s (update state: none)"
        );
        let e = ChangeError::RolledBack {
            name: "acme-prod-api".into(),
            state: "rollback_completed".into(),
            message: "task failed".into(),
        };
        assert_eq!(
            e.to_string(),
            "the update of acme-prod-api failed and Swarm rolled it back (rollback_completed): task failed"
        );
        let e = SwarmLockError::Held {
            environment: "prod".into(),
            owner: "ann".into(),
            operation: String::new(),
            machine: "laptop".into(),
            pid: "42".into(),
            since: "2026-01-01T00:00:00Z".into(),
            ttl: "120".into(),
        };
        assert_eq!(
            e.to_string(),
            "prod is locked by ann on laptop (pid 42) since 2026-01-01T00:00:00Z; it expires within 120s unless renewed; if that run was killed: fleetpin unlock prod"
        );
    }

    #[test]
    fn the_lock_object_is_judged_by_its_last_rewrite() {
        let l = LockObject {
            id: "cfg".into(),
            name: "fleetpin-lock-acme-prod".into(),
            labels: BTreeMap::from([(labels::LOCK_TTL.into(), "10".into())]),
            created: 1_000,
            updated: 1_050,
            ..Default::default()
        };
        let o = observed(&l);
        assert_eq!(o.last_beat, 1_050);
        let at = |s| crate::clock::from_unix(s);
        assert_eq!(judge(&o, at(1_055), None), Stale::Fresh);
        assert_eq!(judge(&o, at(1_061), None), Stale::Expired);
    }
}
