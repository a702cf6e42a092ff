//! Swarm environments (docs/swarm.md): the entry points the commands call — connect, plan,
//! run, rollback's plan, audit — for one cluster reached through the `SwarmEngine` seam. One
//! target per environment; each pinned service is one Swarm service `{platform}-{env}-{service}`
//! with fleetpin's labels. The decisions are pure, in `plan::swarm` (changes, history, rollback);
//! the run that changes the cluster is `host::swarm` (lock, create/update, wait until converged).
//! This module fetches what they need and turns their errors into the commands' `Error`.

use crate::engine::EngineError;
use crate::engine::docker::{Target, TlsFiles};
use crate::engine::swarm::{DockerSwarm, ServiceState, SwarmEngine};
use crate::error::{Error, Result};
use crate::host::swarm::SwarmLockError;
use crate::manifest::Loaded;
use crate::manifest::resolve::{self, ResolvedService};
use crate::ops::secrets::SecretFiles;
use crate::plan::ChangeKind;
use crate::plan::doc::Selection;
use crate::plan::swarm;
use crate::secrets::Keys;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

// The plan and the run moved to `plan::swarm` and `host::swarm`; their names stay reachable
// here, where the commands have always found them.
pub use crate::host::swarm::{DEFAULT_PARALLELISM, SwarmResult, run};
pub use crate::plan::swarm::{HISTORY, Past, SwarmChange, SwarmPlan, history_of};

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
fn resolved(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    keys: &Keys,
) -> Result<Vec<Arc<ResolvedService>>> {
    crate::ops::deploy::check_services(loaded, select)?;
    let files = SecretFiles::new(loaded, keys, crate::ops::secrets::policy(loaded, env));
    let all = resolve::resolve_swarm(&loaded.manifest, env, &files)
        .map_err(|e| Error::msg(e.to_string()))?;
    Ok(all
        .into_iter()
        .filter(|r| select.services.is_empty() || select.services.contains(&r.service))
        .collect())
}

/// Plans `env` against the services the manager reports (`plan::swarm` judges the changes).
pub async fn plan<S: SwarmEngine>(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    engine: &S,
    keys: &Keys,
) -> Result<SwarmPlan> {
    check_selection(env, select)?;
    let desired = resolved(loaded, env, select, keys)?;
    let prefix = crate::plan::view::prefix(&loaded.manifest.platform, env);
    let running: BTreeMap<String, ServiceState> = engine
        .services(&prefix)
        .await
        .map_err(engine_err)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let replicas = |service: &str| loaded.manifest.replicas_in(env, service) as u64;
    Ok(SwarmPlan {
        platform: loaded.manifest.platform.clone(),
        environment: env.to_string(),
        endpoint: engine.endpoint().to_string(),
        changes: swarm::changes(desired, &running, &replicas),
        retire: vec![],
    })
}

/// A Swarm lock not taken stops the command with the lock's own words.
impl From<SwarmLockError> for Error {
    fn from(e: SwarmLockError) -> Error {
        Error::msg(e.to_string())
    }
}

pub use crate::plan::swarm::rollback_plan;

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
    keys: &Keys,
) -> Result<Vec<SwarmAuditRow>> {
    let p = plan(loaded, env, select, engine, keys).await?;
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
