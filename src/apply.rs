//! Converging one host: the step sequence that never loses the running service.
//!
//! Images are pulled before anything is stopped, so a failed pull leaves the host untouched.
//! A replacement is created under a `.new-` name while the old container still runs, and only
//! then is the old one stopped, stepped aside as `.prev-`, the new one given the stable name and
//! started. If it does not become healthy, it is stopped and kept as `.failed-` for its logs, the
//! old one takes its name back and starts again, and the host is left alone. Every intermediate
//! state is recognisable from container names alone, which is what lets the next run repair it.

use crate::engine::{CreateSpec, Engine, Health, HealthSpec, MountSpec, PortBinding, RunState};
use crate::manifest::resolve::{MountSource, ResolvedService};
use crate::plan::labels::{self, DeployStamp};
use crate::plan::{Change, ChangeKind, HostView};
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// How long a container without any healthcheck must keep running to count as started.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Options {
    pub retain: u32,
    pub prune: bool,
    pub stamp: DeployStamp,
    pub health_timeout: Duration,
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    Done,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub service: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub status: ActionStatus,
    /// Wall time of the step, health wait included.
    pub seconds: f64,
    /// Of which waiting for the health gate.
    pub health_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a new container was not accepted, with what helps to find out.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub service: String,
    pub reason: String,
    pub health_log: Vec<String>,
    pub logs: String,
    /// Whether the previous container answers again.
    pub restored: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    Converged,
    Unchanged,
    Failed,
    Unreachable,
    Locked,
    Refused,
    Skipped,
    /// Stopped by Ctrl-C before this host was changed, or after its step in flight finished.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub endpoint: String,
    pub status: HostStatus,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// What was repaired, left by an interrupted run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
}

impl HostReport {
    pub fn new(host: &str, endpoint: &str, status: HostStatus) -> HostReport {
        HostReport {
            host: host.to_string(),
            endpoint: endpoint.to_string(),
            status,
            actions: vec![],
            error: None,
            failure: None,
            repaired: vec![],
        }
    }
}

/// Progress lines for one host (`pulling billing 2.4.1`, …).
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

pub fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The container spec for `r` under `name`.
pub fn create_spec(r: &ResolvedService, name: &str, stamp: &DeployStamp) -> CreateSpec {
    let mut env: Vec<String> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(
        r.secret_env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose())),
    );
    CreateSpec {
        name: name.to_string(),
        image: r.image_ref.clone(),
        env,
        labels: labels::for_service(r, stamp),
        ports: r
            .ports
            .iter()
            .map(|p| PortBinding {
                ip: p.ip.map(|i| i.to_string()),
                host: p.host,
                container: p.container,
                protocol: match p.protocol {
                    crate::manifest::values::Protocol::Tcp => "tcp".into(),
                    crate::manifest::values::Protocol::Udp => "udp".into(),
                },
            })
            .collect(),
        mounts: r
            .mounts
            .iter()
            .map(|m| match &m.source {
                MountSource::Volume { name } => MountSpec::Volume {
                    name: name.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
                MountSource::Bind { path } => MountSpec::Bind {
                    path: path.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
            })
            .collect(),
        command: r.command.clone(),
        entrypoint: r.entrypoint.clone(),
        user: r.user.clone(),
        memory: r.memory.map(|m| m as i64),
        nano_cpus: r.cpus.map(|c| (c * 1e9).round() as i64),
        log_driver: r
            .logging
            .as_ref()
            .map(|l| (l.driver.clone(), l.options.clone())),
        healthcheck: r.healthcheck.as_ref().map(|h| HealthSpec {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }),
        restart_policy: r.restart.as_str().to_string(),
        stop_timeout: r.stop_timeout,
        networks: r.networks.clone(),
        aliases: vec![r.service.clone()],
    }
}

/// Waits until the container is healthy — or, without a healthcheck, still running after the
/// grace period. `unhealthy` or an exit fails at once.
pub async fn wait_healthy<E: Engine>(
    engine: &E,
    id: &str,
    timeout: Duration,
    grace: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let d = engine
            .inspect_container(id)
            .await
            .map_err(|e| e.to_string())?;
        if d.state != RunState::Running && d.state != RunState::Restarting {
            return Err(format!(
                "the container stopped (state {:?}, exit code {})",
                d.state,
                d.exit_code.unwrap_or(-1)
            )
            .to_lowercase());
        }
        if d.state == RunState::Restarting {
            return Err("the container is restarting (its process exits)".into());
        }
        match d.health {
            Health::Healthy => return Ok(()),
            Health::Unhealthy => return Err("the health check reports unhealthy".into()),
            Health::None if started.elapsed() >= grace => return Ok(()),
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(format!(
                "not healthy after {}s (--health-timeout)",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn failure_details<E: Engine>(
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
    }
}

/// Converges one host, which the caller has locked and observed (`view`), by carrying out
/// `changes` (as planned from `desired` and `view`).
pub async fn execute<E: Engine>(
    engine: &E,
    host: &str,
    desired: &[ResolvedService],
    changes: &[Change],
    view: &HostView,
    opts: &Options,
    progress: Progress<'_>,
) -> HostReport {
    let mut report = HostReport::new(host, engine.endpoint(), HostStatus::Unchanged);
    let find = |s: &str| desired.iter().find(|r| r.service == s);

    // Containers a killed run created but never started: remove them, they hold nothing.
    for p in &view.pending {
        progress(&format!("removing {} left by an interrupted run", p.name));
        if let Err(e) = engine.remove(&p.id).await {
            report.status = HostStatus::Failed;
            report.error = Some(format!("removing {}: {e}", p.name));
            return report;
        }
    }

    // 1. Pull everything first: a failed pull must leave the host as it was.
    let replacing: Vec<&Change> = changes.iter().filter(|c| c.kind.replaces()).collect();
    for c in &replacing {
        let Some(r) = find(&c.service) else { continue };
        match engine.inspect_image(&r.image_ref).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                progress(&format!("pulling {}", r.image_ref));
                if let Err(e) = engine
                    .pull(
                        &r.image_ref,
                        crate::engine::credentials::for_image(&r.repository),
                    )
                    .await
                {
                    report.status = HostStatus::Failed;
                    report.error = Some(format!(
                        "pull of {} failed: {e}; nothing was changed on this host",
                        r.image_ref
                    ));
                    return report;
                }
            }
            Err(e) => {
                report.status = HostStatus::Failed;
                report.error = Some(format!("{e}; nothing was changed on this host"));
                return report;
            }
        }
        // A digest pin must run exactly that image: check what the host holds under it.
        if let Some(digest) = &r.pin.digest {
            let wanted = format!("{}@{digest}", r.repository);
            match engine.inspect_image(&r.image_ref).await {
                Ok(Some(img)) if img.repo_digests.contains(&wanted) => {}
                Ok(found) => {
                    report.status = HostStatus::Failed;
                    report.error = Some(format!(
                        "digest mismatch for {}: pinned {wanted}, the host has {}; nothing was changed on this host",
                        r.service,
                        found
                            .map(|i| i.repo_digests.join(", "))
                            .unwrap_or_else(|| "no such image".into())
                    ));
                    return report;
                }
                Err(e) => {
                    report.status = HostStatus::Failed;
                    report.error = Some(format!("{e}; nothing was changed on this host"));
                    return report;
                }
            }
        }
    }
    // Volumes and networks: creating them changes nothing that runs.
    for c in &replacing {
        let Some(r) = find(&c.service) else { continue };
        let res = labels::for_resource(&r.platform, &r.environment);
        for m in &r.mounts {
            if let MountSource::Volume { name } = &m.source
                && let Err(e) = engine.ensure_volume(name, &res).await
            {
                report.status = HostStatus::Failed;
                report.error = Some(format!("{e}; nothing was changed on this host"));
                return report;
            }
        }
        for n in &r.networks {
            if let Err(e) = engine.ensure_network(n, &res).await {
                report.status = HostStatus::Failed;
                report.error = Some(format!("{e}; nothing was changed on this host"));
                return report;
            }
        }
    }

    // 2. One service at a time, in start order.
    for c in changes {
        if crate::interrupt::interrupted() && c.kind != ChangeKind::Unchanged {
            report.status = HostStatus::Interrupted;
            report.error = Some("interrupted: the remaining changes were not started".into());
            return report;
        }
        let started = Instant::now();
        let mut action = Action {
            service: c.service.clone(),
            kind: c.kind,
            from: c.from.clone(),
            to: c.to.clone(),
            status: ActionStatus::Done,
            seconds: 0.0,
            health_seconds: 0.0,
            detail: None,
        };
        let outcome = match c.kind {
            ChangeKind::Unchanged => continue,
            ChangeKind::Conflict => {
                action.status = ActionStatus::Skipped;
                action.detail = c.reason.clone();
                report.actions.push(action);
                continue;
            }
            ChangeKind::RemoveOrphan if !opts.prune => {
                action.status = ActionStatus::Skipped;
                action.detail = Some("orphan kept: run with --prune to remove it".into());
                report.actions.push(action);
                continue;
            }
            ChangeKind::RemoveOrphan => remove_orphan(engine, &c.service, view, progress).await,
            ChangeKind::Restart => {
                let Some(id) = &c.container else { continue };
                restart(engine, id, &c.service, opts, progress, &mut action).await
            }
            _ => {
                let Some(r) = find(&c.service) else { continue };
                replace(engine, r, c, view, opts, progress, &mut action).await
            }
        };
        action.seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                report.status = HostStatus::Converged;
                report.actions.push(action);
            }
            Err(f) => {
                action.status = ActionStatus::Failed;
                action.detail = Some(f.reason.clone());
                report.actions.push(action);
                report.status = HostStatus::Failed;
                report.error = Some(format!(
                    "{}: {}{}",
                    f.service,
                    f.reason,
                    if f.restored {
                        "; the previous version runs again"
                    } else {
                        ""
                    }
                ));
                report.failure = Some(f);
                // Stop changing this host: what follows may depend on what failed.
                return report;
            }
        }
    }
    report
}

async fn restart<E: Engine>(
    engine: &E,
    id: &str,
    service: &str,
    opts: &Options,
    progress: Progress<'_>,
    action: &mut Action,
) -> Result<(), Failure> {
    progress(&format!("restarting {service}"));
    let fail = |reason: String| Failure {
        service: service.to_string(),
        reason,
        health_log: vec![],
        logs: String::new(),
        restored: false,
    };
    engine
        .stop(id, None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    engine.start(id).await.map_err(|e| fail(e.to_string()))?;
    progress(&format!("waiting for {service} to be healthy"));
    let h = Instant::now();
    let r = wait_healthy(engine, id, opts.health_timeout, opts.grace).await;
    action.health_seconds = h.elapsed().as_secs_f64();
    match r {
        Ok(()) => Ok(()),
        Err(reason) => Err(failure_details(engine, id, service, reason).await),
    }
}

async fn remove_orphan<E: Engine>(
    engine: &E,
    service: &str,
    view: &HostView,
    progress: Progress<'_>,
) -> Result<(), Failure> {
    progress(&format!("removing orphan {service}"));
    let all = view
        .current
        .get(service)
        .into_iter()
        .chain(view.retained.get(service).into_iter().flatten())
        .chain(view.failed.get(service).into_iter().flatten());
    for c in all {
        engine.remove(&c.id).await.map_err(|e| Failure {
            service: service.to_string(),
            reason: e.to_string(),
            health_log: vec![],
            logs: String::new(),
            restored: false,
        })?;
    }
    Ok(())
}

/// Create, upgrade, downgrade, change or reconfigure: the swap described in the module comment.
async fn replace<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    c: &Change,
    view: &HostView,
    opts: &Options,
    progress: Progress<'_>,
    action: &mut Action,
) -> Result<(), Failure> {
    let stable = r.container_name.as_str();
    let fail = |reason: String| Failure {
        service: r.service.clone(),
        reason,
        health_log: vec![],
        logs: String::new(),
        restored: false,
    };
    let old = view.current.get(&r.service);
    let tmp = format!(
        "{stable}{}{}",
        labels::NEW,
        labels::suffix(now_millis(), "0")
    );
    progress(&format!("creating {} {}", r.service, r.pin));
    let new_id = engine
        .create_container(&create_spec(
            r,
            if old.is_some() { &tmp } else { stable },
            &opts.stamp,
        ))
        .await
        .map_err(|e| fail(e.to_string()))?;
    crate::interrupt::fault_point("created").await;

    let mut stepped_aside: Option<String> = None;
    if let Some(old) = old {
        progress(&format!(
            "stopping {} {}",
            r.service,
            c.from.as_deref().unwrap_or("")
        ));
        if let Err(e) = engine.stop(&old.id, None).await {
            let _ = engine.remove(&new_id).await;
            return Err(fail(format!("stopping the running container: {e}")));
        }
        crate::interrupt::fault_point("stopped").await;
        // `.old-` until the new one passes its health gate, then `.prev-`: a killed run leaves
        // the unconfirmed state visible in one list call.
        let suffix = labels::suffix(now_millis(), &old.id);
        let aside = format!("{stable}{}{suffix}", labels::OLD);
        let swap = async {
            engine.rename(&old.id, &aside).await?;
            crate::interrupt::fault_point("renamed-old").await;
            engine.rename(&new_id, stable).await?;
            crate::interrupt::fault_point("renamed-new").await;
            Ok::<(), crate::engine::EngineError>(())
        };
        if let Err(e) = swap.await {
            // Put the old one back under its name and running before reporting.
            let _ = engine.rename(&old.id, stable).await;
            let _ = engine.start(&old.id).await;
            let _ = engine.remove(&new_id).await;
            return Err(Failure {
                restored: true,
                ..fail(format!("renaming: {e}"))
            });
        }
        stepped_aside = Some(aside);
    }

    progress(&format!("starting {} {}", r.service, r.pin));
    let started = engine.start(&new_id).await.map_err(|e| e.to_string());
    let h = Instant::now();
    let healthy = match started {
        Ok(()) => {
            crate::interrupt::fault_point("started").await;
            progress(&format!("waiting for {} to be healthy", r.service));
            wait_healthy(engine, &new_id, opts.health_timeout, opts.grace).await
        }
        Err(e) => Err(format!("could not start: {e}")),
    };
    action.health_seconds = h.elapsed().as_secs_f64();

    match healthy {
        Ok(()) => {
            if let (Some(old), Some(aside)) = (old, &stepped_aside) {
                // Retained containers must not come back by themselves after a daemon restart.
                if let Err(e) = confirm(engine, &old.id, aside).await {
                    tracing::warn!(
                        "{}: could not confirm the previous container as retained: {e}",
                        r.service
                    );
                }
            }
            prune_retained(
                engine,
                &r.service,
                view,
                stepped_aside.is_some(),
                opts.retain,
            )
            .await;
            if let (Some(old), 0) = (old, opts.retain) {
                let _ = engine.remove(&old.id).await;
            }
            Ok(())
        }
        Err(reason) => {
            progress(&format!(
                "{} is not healthy: {reason}; restoring the previous version",
                r.service
            ));
            let mut f = failure_details(engine, &new_id, &r.service, reason).await;
            let _ = engine.stop(&new_id, Some(Duration::from_secs(5))).await;
            let failed_name = format!(
                "{stable}{}{}",
                labels::FAILED,
                labels::suffix(now_millis(), &new_id)
            );
            let _ = engine.rename(&new_id, &failed_name).await;
            let _ = engine.set_restart_policy(&new_id, "no").await;
            if let Some(old) = old {
                let back = async {
                    engine.rename(&old.id, stable).await?;
                    engine.start(&old.id).await
                };
                match back.await {
                    Ok(()) => {
                        f.restored = wait_healthy(engine, &old.id, opts.health_timeout, opts.grace)
                            .await
                            .is_ok();
                    }
                    Err(e) => f
                        .reason
                        .push_str(&format!("; restoring the previous container failed: {e}")),
                }
            }
            // One failed container per service is kept for its logs; older ones go.
            for older in view.failed.get(&r.service).into_iter().flatten() {
                let _ = engine.remove(&older.id).await;
            }
            Err(f)
        }
    }
}

/// Confirms a swap: the stepped-aside container (`….old-X`) gets restart policy `no` and
/// becomes a retained one (`….prev-X`).
pub async fn confirm<E: Engine>(
    engine: &E,
    id: &str,
    aside: &str,
) -> Result<(), crate::engine::EngineError> {
    engine.set_restart_policy(id, "no").await?;
    engine
        .rename(id, &aside.replacen(labels::OLD, labels::PREV, 1))
        .await
}

/// Keeps the `retain` newest previous containers of a service (the one just stepped aside
/// counts), removes older ones; volumes are never touched.
async fn prune_retained<E: Engine>(
    engine: &E,
    service: &str,
    view: &HostView,
    one_more: bool,
    retain: u32,
) {
    let existing = view
        .retained
        .get(service)
        .map(|v| v.as_slice())
        .unwrap_or(&[]);
    let keep_existing = (retain as usize).saturating_sub(usize::from(one_more));
    for c in existing.iter().skip(keep_existing) {
        if let Err(e) = engine.remove(&c.id).await {
            tracing::warn!(
                "{service}: could not remove the old container {}: {e}",
                c.name
            );
        }
    }
}
