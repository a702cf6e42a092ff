//! What is the same for every host of one run, in a module of its own: the runner hands it to
//! repair, and repair reads it, so neither has to import the other for it.

use crate::host::lock::LockConfig;
use std::time::Duration;

/// What is the same for every host of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub platform: String,
    pub environment: String,
    /// Hosts worked on at once.
    pub parallel: usize,
    pub lock: LockConfig,
    /// The gate's bound for what repair judges.
    pub health_timeout: Duration,
    /// Kept previous containers per service, for what repair confirms.
    pub retain: u32,
    /// Canary hosts, and what a failed host does to the rest (`host::rollout`).
    pub rollout: crate::manifest::Rollout,
}
