//! `unlock`: remove a lock a killed run left, on each selected host of an environment (or the
//! one lock object of a Swarm environment). It only removes fleetpin's own lock.

use crate::engine::docker::DockerEngine;
use crate::engine::swarm::SwarmEngine;
use crate::host::{fleet, lock};
use crate::manifest::Loaded;
use crate::ops::context::Ctx;
use crate::ops::deploy;
use crate::ops::error::{OpError, OpResult};
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct UnlockInput {
    pub env: String,
    /// `--host`: only these hosts (plain hosts only).
    pub hosts: Vec<String>,
}

/// One host's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum HostUnlock {
    /// `owner`: who held the lock that was removed (none: it was not locked).
    Done {
        host: String,
        removed: bool,
        owner: Option<String>,
    },
    Failed {
        host: String,
        removed: bool,
        error: String,
    },
}

pub enum UnlockOutcome {
    Hosts {
        environment: String,
        hosts: Vec<HostUnlock>,
    },
    /// A Swarm environment's one lock: who held it, if anyone.
    Swarm {
        environment: String,
        owner: Option<String>,
    },
}

impl UnlockOutcome {
    pub fn failed(&self) -> bool {
        matches!(self, UnlockOutcome::Hosts { hosts, .. }
            if hosts.iter().any(|h| matches!(h, HostUnlock::Failed { .. })))
    }
}

pub async fn unlock(ctx: &Ctx, loaded: &Loaded, input: UnlockInput) -> OpResult<UnlockOutcome> {
    if deploy::environment(loaded, &input.env)?.is_swarm() {
        return swarm(ctx, loaded, input).await;
    }
    let hosts = fleet::hosts(loaded, &input.env, &input.hosts)?;
    let platform = loaded.manifest.platform.as_str();
    let env = input.env.as_str();
    let results = futures::future::join_all(hosts.into_iter().map(|h| async move {
        let r = async {
            let engine = DockerEngine::connect(&h.target, ctx.connect_timeout).await?;
            lock::force_release(&engine, platform, env).await
        }
        .await;
        match r {
            Ok(owner) => HostUnlock::Done {
                host: h.name,
                removed: owner.is_some(),
                owner,
            },
            Err(e) => HostUnlock::Failed {
                host: h.name,
                removed: false,
                error: e.to_string(),
            },
        }
    }))
    .await;
    Ok(UnlockOutcome::Hosts {
        environment: input.env,
        hosts: results,
    })
}

/// A Swarm environment's lock is one config object on the cluster.
async fn swarm(ctx: &Ctx, loaded: &Loaded, input: UnlockInput) -> OpResult<UnlockOutcome> {
    if !input.hosts.is_empty() {
        return Err(OpError::Invalid(format!(
            "--host does not apply to environment `{}`: its lock is one object on the Swarm cluster",
            input.env
        )));
    }
    let name = lock::name(&loaded.manifest.platform, &input.env);
    let engine = crate::ops::swarm::connect(loaded, &input.env, ctx.connect_timeout).await?;
    let held = engine.lock_get(&name).await?;
    if let Some(l) = &held {
        engine.lock_remove(&l.id).await?;
    }
    Ok(UnlockOutcome::Swarm {
        environment: input.env,
        owner: held.map(|l| {
            l.labels
                .get(crate::plan::labels::LOCK_OWNER)
                .cloned()
                .unwrap_or_default()
        }),
    })
}
