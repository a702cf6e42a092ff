//! A run over an environment's hosts, as apply and rollback start it: the runner's settings from
//! the operation's options and the manifest, then the rollout (canaries, batches, what a failure
//! does), each host's steps reported as the operation's events.

use crate::host::lock::LockConfig;
use crate::host::report::HostReport;
use crate::host::runner::{HostWork, Settings};
use crate::manifest::Loaded;
use crate::ops::context::{Op, Progress};
use crate::ops::deploy::Prepared;
use crate::plan::labels::DeployStamp;
use std::time::Duration;

/// How a run over hosts goes, from the flags of apply and rollback.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Hosts at once (`--max-parallel`), else the environment's `max_parallel`, else all.
    pub max_parallel: Option<u32>,
    /// The gate's bound (`--health-timeout`), else the default.
    pub health_timeout: Option<Duration>,
    /// How long to wait for a host's lock (`--lock-wait`).
    pub lock_wait: Option<Duration>,
    /// How long a lock holds without a heartbeat (the command line's `FLEETPIN_LOCK_TTL`), else
    /// the default.
    pub lock_ttl: Option<Duration>,
}

impl RunOptions {
    /// The runner's settings: the lock held by the operation's actor, who deploys (`stamp`).
    pub fn settings(
        &self,
        op: &Op,
        loaded: &Loaded,
        env: &str,
        hosts: usize,
        stamp: DeployStamp,
    ) -> Settings {
        let e = &loaded.manifest.environments[env];
        Settings {
            platform: loaded.manifest.platform.clone(),
            environment: env.to_string(),
            parallel: self
                .max_parallel
                .or(e.max_parallel)
                .map(|n| n as usize)
                .unwrap_or(hosts)
                .max(1),
            lock: self.lock(op),
            health_timeout: self.health_timeout(),
            retain: loaded.manifest.retain,
            rollout: e.rollout.clone(),
            stamp,
            cancel: op.cancel().clone(),
        }
    }

    /// The lock `op` takes: its actor, its command and id.
    pub fn lock(&self, op: &Op) -> LockConfig {
        LockConfig::new(
            &op.ctx.actor.id,
            &format!("{} {}", op.info.command, op.info.id),
            self.lock_wait,
            self.lock_ttl,
        )
    }

    pub fn health_timeout(&self) -> Duration {
        self.health_timeout
            .unwrap_or(crate::host::gate::DEFAULT_TIMEOUT)
    }
}

/// Runs `work` over the prepared hosts as the environment's rollout says; each host's steps are
/// events of `op`. A cancelled operation finishes the step in
/// flight and starts nothing new.
pub async fn on_hosts<E: crate::engine::Engine + 'static, W: HostWork<E>>(
    op: &Op,
    prepared: &[Prepared<E>],
    settings: &Settings,
    work: &W,
    changes: &dyn Fn(&Prepared<E>) -> bool,
) -> Vec<HostReport> {
    let targets = prepared.iter().map(|p| p.target(changes(p))).collect();
    let reports =
        crate::host::rollout::run(targets, settings, work, &|h: &str| op.host_steps(h)).await;
    op.emit(Progress::HostsDone);
    reports
}

/// Applies a Swarm environment's `plan` under its lock (apply's plan, or rollback's, which holds
/// the versions it goes back to); each progress line is an event of `op`.
pub async fn on_swarm(
    op: &Op,
    loaded: &Loaded,
    plan: &crate::plan::swarm::SwarmPlan,
    engine: &crate::engine::swarm::DockerSwarm,
    options: &RunOptions,
) -> crate::ops::error::OpResult<Vec<crate::host::swarm::SwarmResult>> {
    let stamp = crate::ops::deploy::stamp(
        op,
        loaded,
        crate::ops::deploy::source_commit(loaded),
        op.info.command == "apply",
    );
    let progress = |line: &str| {
        op.emit(Progress::Swarm {
            line: line.to_string(),
        })
    };
    Ok(crate::host::swarm::run(
        loaded,
        plan,
        engine,
        &stamp,
        &options.lock(op),
        options.health_timeout(),
        &progress,
    )
    .await?)
}
