//! Swarm environments (docs/swarm.md): plan, apply and audit against one cluster's services
//! through the `SwarmEngine` seam. One target per environment; each pinned service is one Swarm
//! service `{platform}-{env}-{service}` with fleetpin's labels, and Swarm itself rolls its tasks
//! (update_config: order, monitor, parallelism from `max_parallel`, failure_action rollback).
//! fleetpin's own version history is kept in a service label (`io.fleetpin.history`), because
//! Swarm remembers one previous spec only.

use crate::engine::EngineError;
use crate::engine::docker::{Target, TlsFiles};
use crate::engine::swarm::{DockerSwarm, ServiceState, ServiceWant, SwarmEngine, TaskInfo};
use crate::error::{Error, Result};
use crate::manifest::resolve::{self, ResolvedService};
use crate::manifest::{Loaded, Publish, RestartPolicy};
use crate::plan::ChangeKind;
use crate::plan::doc::Selection;
use crate::plan::labels::{self, DeployStamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The service label holding fleetpin's version history: a JSON list, newest first.
pub const HISTORY: &str = "io.fleetpin.history";
/// Swarm updates this many tasks at once when the environment has no `max_parallel`.
pub const DEFAULT_PARALLELISM: u64 = 1;

/// One earlier version of a service, as recorded in its history label.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Past {
    pub version: String,
    pub spec_hash: String,
    pub image: String,
}

/// One line of a Swarm plan: a service, what changes, and its tasks.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmChange {
    pub service: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_from: Option<u64>,
    pub replicas: u64,
    #[serde(skip)]
    pub resolved: Arc<ResolvedService>,
    #[serde(skip)]
    pub current: Option<ServiceState>,
    /// Rollback: the exact image to run again (with its digest), and the history that remains
    /// (what it stepped away from is not in it: rollback walks back, never forward).
    #[serde(skip)]
    pub image: Option<String>,
    #[serde(skip)]
    pub history: Option<Vec<Past>>,
}

/// A plan for one Swarm environment: one target, per-service changes.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmPlan {
    pub platform: String,
    pub environment: String,
    pub endpoint: String,
    pub changes: Vec<SwarmChange>,
}

impl SwarmPlan {
    pub fn pending(&self) -> usize {
        self.changes.iter().filter(|c| c.kind.is_pending()).count()
    }
}

/// How to reach the environment's manager (tls files resolved against the manifest's directory).
pub fn target(loaded: &Loaded, env: &str) -> Result<Target> {
    let e = crate::host::fleet::environment(loaded, env)?;
    let sw = e
        .swarm
        .as_ref()
        .ok_or_else(|| Error::msg(format!("environment `{env}` is not a Swarm environment")))?;
    let dir = loaded.dir();
    let at = |p: &str| {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        }
    };
    Ok(Target {
        endpoint: sw.endpoint.value.clone(),
        tls: sw.tls.as_ref().map(|t| TlsFiles {
            ca: at(&t.ca.value),
            cert: at(&t.cert.value),
            key: at(&t.key.value),
        }),
        insecure: sw.insecure,
    })
}

/// `--host` has no meaning in a Swarm environment: Swarm places the tasks.
pub fn check_selection(env: &str, select: &Selection) -> Result<()> {
    if !select.hosts.is_empty() {
        return Err(Error::msg(format!(
            "--host does not apply to environment `{env}`: it is a Docker Swarm cluster, where Swarm places the tasks; select services with --service instead"
        )));
    }
    Ok(())
}

fn engine_err(e: EngineError) -> Error {
    Error::msg(e.to_string())
}

pub async fn connect(loaded: &Loaded, env: &str, timeout: Duration) -> Result<DockerSwarm> {
    DockerSwarm::connect(&target(loaded, env)?, timeout)
        .await
        .map_err(engine_err)
}

/// The selected pinned services of `env`, resolved.
fn resolved(loaded: &Loaded, env: &str, select: &Selection) -> Result<Vec<Arc<ResolvedService>>> {
    crate::ops::deploy::check_services(loaded, select)?;
    let dir = loaded.dir();
    let reader = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    let all = resolve::resolve_swarm(&loaded.manifest, env, &reader)
        .map_err(|e| Error::msg(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter(|r| select.services.is_empty() || select.services.contains(&r.service))
        .collect())
}

/// Plans `env` against the services the manager reports.
pub async fn plan<S: SwarmEngine>(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    engine: &S,
) -> Result<SwarmPlan> {
    check_selection(env, select)?;
    let desired = resolved(loaded, env, select)?;
    let prefix = crate::plan::view::prefix(&loaded.manifest.platform, env);
    let running: BTreeMap<String, ServiceState> = engine
        .services(&prefix)
        .await
        .map_err(engine_err)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let changes = desired
        .into_iter()
        .map(|r| {
            let replicas = loaded.manifest.replicas_in(env, &r.service) as u64;
            let current = running.get(&r.container_name).cloned();
            let to = r.pin.to_string();
            let (kind, from, replicas_from) = match &current {
                None => (ChangeKind::Create, None, None),
                Some(s) => {
                    let from = s.labels.get(labels::VERSION).cloned();
                    let hash = s.labels.get(labels::SPEC_HASH);
                    let kind = match &from {
                        Some(f) if *f == to && hash == Some(&r.spec_hash) => {
                            if s.replicas == Some(replicas) {
                                ChangeKind::Unchanged
                            } else {
                                ChangeKind::Scale
                            }
                        }
                        Some(f) if *f == to => ChangeKind::Reconfigure,
                        Some(f) => crate::plan::compare(f, &r.pin),
                        None => ChangeKind::Change,
                    };
                    (kind, from, s.replicas)
                }
            };
            SwarmChange {
                service: r.service.clone(),
                kind,
                from,
                to,
                replicas_from,
                replicas,
                resolved: r,
                current,
                image: None,
                history: None,
            }
        })
        .collect();
    Ok(SwarmPlan {
        platform: loaded.manifest.platform.clone(),
        environment: env.to_string(),
        endpoint: engine.endpoint().to_string(),
        changes,
    })
}

/// The history recorded on a service, newest first.
pub fn history_of(s: &ServiceState) -> Vec<Past> {
    s.labels
        .get(HISTORY)
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default()
}

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
    // The version being replaced joins the history (newest first, `retain` long), unless it is
    // the one being deployed again.
    let mut history = c.current.as_ref().map(history_of).unwrap_or_default();
    if let Some(h) = &c.history {
        history = h.clone();
    } else if let Some(cur) = &c.current
        && let (Some(v), Some(h)) = (
            cur.labels.get(labels::VERSION),
            cur.labels.get(labels::SPEC_HASH),
        )
        && *h != r.spec_hash
    {
        history.insert(
            0,
            Past {
                version: v.clone(),
                spec_hash: h.clone(),
                image: cur.image.clone(),
            },
        );
    }
    history.retain(|p| p.spec_hash != r.spec_hash || p.version != r.pin.to_string());
    history.truncate(m.retain.max(1) as usize);
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

/// Tasks that serve: desired and actually running with the spec of `spec_hash`.
fn serving(tasks: &[TaskInfo], spec_hash: &str) -> usize {
    tasks
        .iter()
        .filter(|t| t.desired == "running" && t.state == "running")
        .filter(|t| t.labels.get(labels::SPEC_HASH).map(String::as_str) == Some(spec_hash))
        .count()
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
            message: r.unwrap_or_else(|e| e),
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
) -> std::result::Result<String, String> {
    let r = &c.resolved;
    // As the docker CLI finds them (a failing helper leaves it anonymous, as for a pull).
    let credentials = crate::engine::credentials::for_image(&r.repository)
        .await
        .ok()
        .flatten();
    // A change of replicas alone keeps the tasks' spec as it is: the same labels, so Swarm
    // starts or stops tasks and replaces none.
    let (stamp, image) = match (&c.current, c.kind) {
        (Some(cur), ChangeKind::Scale) => (
            DeployStamp {
                commit: cur.labels.get(labels::COMMIT).cloned().unwrap_or_default(),
                deployed_at: cur
                    .labels
                    .get(labels::DEPLOYED_AT)
                    .cloned()
                    .unwrap_or_default(),
                deployed_by: cur
                    .labels
                    .get(labels::DEPLOYED_BY)
                    .cloned()
                    .unwrap_or_default(),
            },
            cur.image.clone(),
        ),
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
            .map_err(|e| e.to_string())?;
    }
    let id = match &c.current {
        None => engine.create(&w).await.map_err(|e| e.to_string())?,
        Some(cur) => {
            // The version of the spec now, not the one planned: a task's state changes it.
            let now = engine
                .service(&cur.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("service {} disappeared", cur.name))?;
            engine
                .update(&now.id, now.version, &w)
                .await
                .map_err(|e| e.to_string())?;
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
        let s = engine
            .service(&id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("service {} disappeared", w.name))?;
        let state = s.update_state.clone().unwrap_or_default();
        if state.starts_with("rollback") || state == "paused" {
            if state == "rollback_completed" || state == "rollback_paused" || state == "paused" {
                // Swarm put the previous spec back (labels included): report once its tasks
                // serve again, so the caller's next step sees the old version serving.
                let back = s.labels.get(labels::SPEC_HASH).cloned().unwrap_or_default();
                while Instant::now() < deadline {
                    let tasks = engine.tasks(&id).await.map_err(|e| e.to_string())?;
                    if serving(&tasks, &back) as u64 >= c.replicas_from.unwrap_or(c.replicas) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                return Err(format!(
                    "the update of {} failed and Swarm rolled it back ({state}): {}",
                    w.name,
                    s.update_message.unwrap_or_default()
                ));
            }
        } else if state.is_empty() || state == "completed" {
            let tasks = engine.tasks(&id).await.map_err(|e| e.to_string())?;
            if serving(&tasks, &want_hash) as u64 == c.replicas {
                return Ok(format!("{} task(s) running", c.replicas));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}: its tasks did not all run within {}s (update state: {})",
                w.name,
                timeout.as_secs(),
                if state.is_empty() { "none" } else { &state }
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One service of a Swarm environment as audit sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmAuditRow {
    pub service: String,
    pub pinned: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub replicas: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_running: Option<u64>,
    /// Running tasks per node hostname.
    pub tasks: BTreeMap<String, u64>,
    /// `ok` or the kind of drift (`missing`, `upgrade`, `scale`, …).
    pub status: String,
    /// Every digest the running tasks run (one, unless an update is under way): promote
    /// requires exactly one.
    #[serde(skip)]
    pub task_digests: std::collections::BTreeSet<String>,
}

/// Each node's host name by its id: how tasks are shown (audit, logs).
pub async fn node_names<S: SwarmEngine>(engine: &S) -> Result<BTreeMap<String, String>> {
    Ok(engine
        .nodes()
        .await
        .map_err(engine_err)?
        .into_iter()
        .map(|n| (n.id, n.hostname))
        .collect())
}

/// Audits `env`: per service the pinned and running versions, the digest and the tasks per node.
pub async fn audit<S: SwarmEngine>(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    engine: &S,
) -> Result<Vec<SwarmAuditRow>> {
    let p = plan(loaded, env, select, engine).await?;
    let nodes = node_names(engine).await?;
    let mut rows = Vec::new();
    for c in &p.changes {
        let mut tasks = BTreeMap::new();
        let mut digest = None;
        let mut task_digests = std::collections::BTreeSet::new();
        if let Some(cur) = &c.current {
            for t in engine.tasks(&cur.id).await.map_err(engine_err)? {
                if t.desired == "running" && t.state == "running" {
                    let node = nodes.get(&t.node_id).cloned().unwrap_or(t.node_id.clone());
                    *tasks.entry(node).or_insert(0) += 1;
                    let d = t.image.split_once('@').map(|(_, d)| d.to_string());
                    if digest.is_none() {
                        digest = d.clone();
                    }
                    task_digests.extend(d);
                }
            }
        }
        let status = match c.kind {
            ChangeKind::Unchanged => "ok".to_string(),
            ChangeKind::Create => "missing".to_string(),
            k => k.as_str().to_string(),
        };
        rows.push(SwarmAuditRow {
            service: c.service.clone(),
            pinned: c.to.clone(),
            running: c.from.clone(),
            digest,
            replicas: c.replicas,
            replicas_running: c.current.as_ref().map(|_| tasks.values().sum()),
            tasks,
            status,
            task_digests,
        });
    }
    Ok(rows)
}

/// What `rollback` does to each selected service: go back to the newest version in its history
/// (or the one `to` names), dropping it and everything newer from the history, so a second
/// rollback goes further back and never forward. Every refusal comes before any change.
pub fn rollback_plan(
    plan: &SwarmPlan,
    to: Option<&str>,
) -> std::result::Result<Vec<SwarmChange>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for c in &plan.changes {
        let Some(cur) = &c.current else {
            problems.push(format!(
                "{}: no Swarm service {} runs, so there is nothing to go back from",
                c.service, c.resolved.container_name
            ));
            continue;
        };
        let history = history_of(cur);
        let at = match to {
            Some(v) => history.iter().position(|p| p.version == v),
            None => (!history.is_empty()).then_some(0),
        };
        let Some(at) = at else {
            problems.push(match to {
                Some(v) => format!(
                    "{}: {v} is not in its history (kept: {})",
                    c.service,
                    if history.is_empty() {
                        "none".to_string()
                    } else {
                        history
                            .iter()
                            .map(|p| p.version.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                None => format!(
                    "{}: nothing to go back to (no earlier version kept)",
                    c.service
                ),
            });
            continue;
        };
        let past = &history[at];
        let Ok(pin) = crate::manifest::pin::VersionPin::parse(&past.version) else {
            problems.push(format!(
                "{}: its history names `{}`, which is not a version",
                c.service, past.version
            ));
            continue;
        };
        let mut r = (*c.resolved).clone();
        r.image_ref = pin.image_ref(&r.repository);
        r.pin = pin;
        r.spec_hash = resolve::spec_hash(&r);
        out.push(SwarmChange {
            service: c.service.clone(),
            kind: ChangeKind::Downgrade,
            from: cur.labels.get(labels::VERSION).cloned(),
            to: past.version.clone(),
            replicas_from: cur.replicas,
            replicas: cur.replicas.unwrap_or(c.replicas),
            resolved: Arc::new(r),
            current: Some(cur.clone()),
            image: Some(past.image.clone()),
            history: Some(history[at + 1..].to_vec()),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The environment's lock on a Swarm cluster: a config object `fleetpin-lock-{platform}-{env}`
/// (atomic by name), with the owner, machine, process and TTL in its labels as on a plain host
/// (`host::lock`), renewed by rewriting its labels — the manager stamps `UpdatedAt` — and judged
/// by the manager's clock with the same rules (`host::lock::judge`).
pub struct SwarmLock {
    pub lock: crate::engine::swarm::LockObject,
    labels: BTreeMap<String, String>,
    pub ttl: Duration,
    beats: u64,
}

fn observed(l: &crate::engine::swarm::LockObject) -> crate::host::lock::Observed {
    crate::host::lock::Observed {
        lock: crate::engine::ContainerSummary {
            id: l.id.clone(),
            name: l.name.clone(),
            image: String::new(),
            image_id: String::new(),
            state: crate::engine::RunState::Created,
            health: crate::engine::Health::None,
            labels: l.labels.clone(),
            created: l.created,
        },
        last_beat: l.updated.max(l.created),
        strays: vec![],
    }
}

/// Takes the lock of `env`, waiting up to `wait` for a held one.
pub async fn lock<S: SwarmEngine>(
    engine: &S,
    platform: &str,
    env: &str,
    identity: &str,
    wait: Option<Duration>,
) -> Result<SwarmLock> {
    use crate::host::lock::{LockConfig, Stale, judge};
    let config = LockConfig::new(identity, wait);
    let name = crate::host::lock::name(platform, env);
    let labels = crate::host::lock::owner_labels(&config, platform, env);
    let deadline = config.wait.map(|w| Instant::now() + w);
    loop {
        match engine.lock_create(&name, &labels).await {
            Ok(_) => {
                let lock = engine
                    .lock_get(&name)
                    .await
                    .map_err(engine_err)?
                    .ok_or_else(|| Error::msg(format!("the lock {name} vanished once taken")))?;
                return Ok(SwarmLock {
                    lock,
                    labels,
                    ttl: config.ttl,
                    beats: 0,
                });
            }
            Err(EngineError::Conflict { .. }) => {}
            Err(e) => return Err(engine_err(e)),
        }
        let Some(held) = engine.lock_get(&name).await.map_err(engine_err)? else {
            continue;
        };
        let now = engine.clock().await.map_err(engine_err)?;
        let o = observed(&held);
        match judge(&o, now, config.machine.as_deref()) {
            Stale::Expired | Stale::HolderGone => {
                // By id and version: a lock someone else just took fresh is never removed.
                engine.lock_remove(&held.id).await.map_err(engine_err)?;
                continue;
            }
            Stale::Fresh => {}
        }
        if deadline.is_some_and(|d| Instant::now() < d) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let get = |k: &str| held.labels.get(k).cloned().unwrap_or_else(|| "?".into());
        return Err(Error::msg(format!(
            "{env} is locked by {} on {} (pid {}) since {}; it expires within {}s unless renewed; if that run was killed: fleetpin unlock {env}",
            get(labels::LOCK_OWNER),
            get(labels::LOCK_HOSTNAME),
            get(labels::LOCK_PID),
            crate::clock::rfc3339(crate::clock::from_unix(held.created)),
            o.lock
                .labels
                .get(labels::LOCK_TTL)
                .cloned()
                .unwrap_or_else(|| "?".into()),
        )));
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

pub async fn unlock<S: SwarmEngine>(engine: &S, held: &SwarmLock) {
    let _ = engine.lock_remove(&held.lock.id).await;
}

/// Runs `work` holding the environment's lock, renewed while it runs, released after.
/// Applies `plan` under the environment's lock: what apply and rollback both run on a Swarm
/// environment (rollback's plan holds the versions it goes back to).
pub async fn run<S: SwarmEngine>(
    loaded: &Loaded,
    plan: &SwarmPlan,
    engine: &S,
    stamp: &DeployStamp,
    lock_wait: Option<Duration>,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<Vec<SwarmResult>> {
    locked(
        engine,
        &plan.platform,
        &plan.environment,
        &stamp.deployed_by,
        lock_wait,
        apply(loaded, plan, engine, stamp, timeout, progress),
    )
    .await
}

pub async fn locked<S: SwarmEngine, T>(
    engine: &S,
    platform: &str,
    env: &str,
    identity: &str,
    wait: Option<Duration>,
    work: impl std::future::Future<Output = T>,
) -> Result<T> {
    let mut held = lock(engine, platform, env, identity, wait).await?;
    let out = {
        let renew = keep(engine, &mut held);
        tokio::pin!(renew);
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            _ = &mut renew => unreachable!("the renewal never ends"),
        }
    };
    unlock(engine, &held).await;
    Ok(out)
}
