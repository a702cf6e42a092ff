//! The host side of moving an environment to Swarm (`plan::moving` decides what): on each host
//! the environment ran on before, its serving containers step aside — stopped, restart policy
//! `no`, renamed out of the stable name, detached from fleetpin's networks — and those networks
//! are removed so the overlays can take their names; once every Swarm service converged they
//! are removed, and if one failed each goes back: its networks made again, attached with its
//! alias, renamed, started. Only what `plan::moving` found to be fleetpin's is ever touched.

use crate::engine::{Engine, EngineError};
use crate::host::report::{Progress, now_millis};
use crate::plan::labels;
use crate::plan::moving::Retirement;
use std::collections::BTreeMap;
use std::time::Duration;

/// One container stepped aside, with what it takes to put it back.
#[derive(Debug, Clone)]
pub struct SteppedAside {
    pub id: String,
    /// Its stable name, and the one it has now.
    pub stable: String,
    pub aside: String,
    /// Network → the aliases it answered on there.
    pub networks: BTreeMap<String, Vec<String>>,
    /// Its restart policy before (`unless-stopped`, …).
    pub policy: String,
}

/// What one host gave up so far: enough to put it back or to finish.
#[derive(Debug, Clone, Default)]
pub struct Retired {
    pub containers: Vec<SteppedAside>,
    pub networks: Vec<String>,
}

/// Steps the host's serving containers aside and removes fleetpin's networks of the overlays'
/// names. On an error, what was done so far comes back with it, for `put_back`.
pub async fn retire<E: Engine>(
    engine: &E,
    r: &Retirement,
    progress: Progress<'_>,
) -> Result<Retired, (Retired, EngineError)> {
    let mut done = Retired::default();
    for c in &r.containers {
        progress(&format!("{}: stepping {} aside", r.host, c.name));
        let info = match engine.inspect_container(&c.id).await {
            Ok(i) => i,
            Err(e) => return Err((done, e)),
        };
        let aside = format!(
            "{}{}{}",
            c.name,
            labels::PREV,
            labels::suffix(now_millis(), &c.id)
        );
        let step = async {
            engine.set_restart_policy(&c.id, "no").await?;
            engine.stop(&c.id, None).await?;
            engine.rename(&c.id, &aside).await
        };
        let stepped = step.await;
        // Recorded before any error: a stopped container goes back like one stepped aside.
        done.containers.push(SteppedAside {
            id: c.id.clone(),
            stable: c.name.clone(),
            aside: if stepped.is_ok() {
                aside
            } else {
                c.name.clone()
            },
            networks: info.networks.clone(),
            policy: info.restart_policy.clone(),
        });
        if let Err(e) = stepped {
            return Err((done, e));
        }
    }
    for n in &r.networks {
        progress(&format!("{}: removing network {n}", r.host));
        for c in &done.containers {
            if c.networks.contains_key(n)
                && let Err(e) = engine.disconnect_network(&c.id, n).await
            {
                return Err((done, e));
            }
        }
        if let Err(e) = engine.remove_network(n).await {
            return Err((done, e));
        }
        done.networks.push(n.clone());
    }
    Ok(done)
}

/// Puts back what `retire` did: the networks made again (as fleetpin's), each container attached
/// with its aliases, under its stable name, with its policy, started and judged by `gate`, so
/// it serves when this returns. A start is retried for a while: the Swarm tasks that held its
/// published port may still be stopping. Returns what could not be put back.
pub async fn put_back<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
    retired: &Retired,
    gate: &crate::host::gate::Gate,
    progress: Progress<'_>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let res = labels::for_resource(platform, environment);
    for n in &retired.networks {
        if let Err(e) = local_bridge(engine, n, &res).await {
            problems.push(format!("network {n}: {e}"));
        }
    }
    for c in &retired.containers {
        progress(&format!("putting {} back", c.stable));
        for (n, aliases) in &c.networks {
            if retired.networks.contains(n)
                && let Err(e) = engine.connect_network(&c.id, n, aliases).await
            {
                problems.push(format!("{}: attaching {n}: {e}", c.stable));
            }
        }
        if c.aside != c.stable
            && let Err(e) = engine.rename(&c.id, &c.stable).await
        {
            problems.push(format!("{}: {e}", c.stable));
            continue;
        }
        let _ = engine.set_restart_policy(&c.id, &c.policy).await;
        let mut started = engine.start(&c.id).await;
        for _ in 0..60 {
            if started.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            started = engine.start(&c.id).await;
        }
        if let Err(e) = started {
            problems.push(format!("{}: {e}", c.stable));
            continue;
        }
        if let Err(e) = crate::host::gate::watch(engine, &c.id, gate).await {
            problems.push(format!("{}: {e}", c.stable));
        }
    }
    problems
}

/// Makes `name` a local bridge network again. A Swarm manager still shows a removed overlay of
/// that name for a moment (and a container attached to it by name would fail to start): wait
/// until it is gone before creating the bridge.
async fn local_bridge<E: Engine>(
    engine: &E,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), EngineError> {
    for _ in 0..60 {
        match engine.network(name).await? {
            Some(n) if n.driver == "bridge" => return Ok(()),
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            None => return engine.ensure_network(name, labels).await,
        }
    }
    Err(EngineError::Conflict {
        what: format!("network {name} (another driver's, still there after 30s)"),
    })
}

/// The move succeeded: the containers stepped aside and the kept ones are removed.
pub async fn finish<E: Engine>(
    engine: &E,
    r: &Retirement,
    retired: &Retired,
    progress: Progress<'_>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let ids = retired.containers.iter().map(|c| &c.id).chain(&r.kept_ids);
    for id in ids {
        progress(&format!("{}: removing {id}", r.host));
        if let Err(e) = engine.remove(id).await {
            problems.push(format!("{}: {e}", r.host));
        }
    }
    problems
}
