//! What is the same for every host of one run, in a module of its own: the runner hands it to
//! repair and to the work (`OnHost::settings`), and each reads it, so none has to import
//! another for it. One type for the whole run: retain, the gate's bound and the deploy stamp are
//! read from here by repair, converge, rollback, the agent and a rollout's put-back alike.

use crate::host::gate::Gate;
use crate::host::lock::LockConfig;
use crate::manifest::resolve::ResolvedService;
use crate::plan::labels::DeployStamp;
use std::time::Duration;

/// What is the same for every host of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub platform: String,
    pub environment: String,
    /// Hosts worked on at once.
    pub parallel: usize,
    pub lock: LockConfig,
    /// The gate's bound (`--health-timeout`), for the swaps and for what repair judges.
    pub health_timeout: Duration,
    /// Kept previous containers per service: what a swap prunes to and repair confirms.
    pub retain: u32,
    /// Canary hosts, and what a failed host does to the rest (`host::rollout`).
    pub rollout: crate::manifest::Rollout,
    /// The labels of every container the run creates: commit, time, operator.
    pub stamp: DeployStamp,
    /// The operation's cancellation: the swaps in flight finish, no new host or service starts.
    pub cancel: crate::cancel::Cancel,
}

impl Settings {
    /// The gate a container of service `r` is judged by in this run.
    pub fn gate(&self, r: &ResolvedService) -> Gate {
        Gate::new(self.health_timeout, r.monitor)
    }
}

/// One host as its run sees it: the containers as listed under the lock (after repair), where
/// the images of the containers the run removes are noted (`cleanup`), and the run's settings.
/// Here, beside the settings, so that the swap, the works and the runner all read it without
/// importing each other.
#[derive(Clone, Copy)]
pub struct OnHost<'a> {
    pub view: &'a crate::plan::view::HostView,
    pub released: &'a crate::host::cleanup::Released,
    pub settings: &'a Settings,
}
