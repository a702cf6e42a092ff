//! What a container engine reports, in fleetpin's words: a container as a list call shows it
//! (its run state and health), a line of its output, and a Swarm service and its tasks as the
//! manager shows them. These are plain data at the bottom of the stack, apart from the `engine`
//! seam that produces them, so that the pure layers which decide over them (`plan`) and the
//! renderers which show them (`render`) need not import the engine at all. `engine` re-exports
//! them. This module imports nothing of fleetpin's.

use serde::Serialize;
use std::collections::BTreeMap;

/// A container's state, as the engine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
}

impl RunState {
    pub fn parse(s: &str) -> RunState {
        match s {
            "created" => RunState::Created,
            "running" => RunState::Running,
            "restarting" => RunState::Restarting,
            "paused" => RunState::Paused,
            "removing" => RunState::Removing,
            "dead" => RunState::Dead,
            _ => RunState::Exited,
        }
    }
}

/// A container's health, as its healthcheck last left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No healthcheck, in the image or the spec.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as one list call shows it: enough to plan without inspecting each one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSummary {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image reference it was created from.
    pub image: String,
    pub image_id: String,
    pub state: RunState,
    pub health: Health,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: i64,
}

/// Which of a container's output streams a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of a container's output, as the engine kept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub stream: LogStream,
    /// When the engine received the line (RFC 3339 with nanoseconds, as the engine wrote it).
    pub time: Option<String>,
    /// Without its line ending.
    pub line: String,
}

/// A Swarm service as the manager reports it.
#[derive(Debug, Clone, Default)]
pub struct ServiceState {
    pub id: String,
    pub name: String,
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub replicas: Option<u64>,
    /// `updating`, `completed`, `rollback_started`, `rollback_completed`, `paused`, …
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// The tasks' environment as the spec sets it, in memory only: compared with the secrets
    /// wanted, never shown (`Secret` redacts itself).
    pub env: BTreeMap<String, crate::secrets::Secret>,
}

/// One task of a service.
#[derive(Debug, Clone, Default)]
pub struct TaskInfo {
    pub id: String,
    pub service_id: String,
    pub node_id: String,
    pub slot: Option<u64>,
    pub desired: String,
    pub state: String,
    /// The image the task runs, with the digest Swarm resolved at create/update.
    pub image: String,
    /// The labels of the task's container (fleetpin's, with the spec hash).
    pub labels: BTreeMap<String, String>,
    pub error: Option<String>,
}

/// A network as an engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    /// `bridge`, `overlay`, …
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The containers attached to it, by id.
    pub containers: Vec<String>,
}
