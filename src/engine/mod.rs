//! The one seam between fleetpin and a container engine.
//!
//! Everything above this trait — manifest resolution, planning, rollback choice, promotion gates —
//! is pure code over fleetpin's own types and is tested without a daemon. Only `docker` (bollard)
//! implements it for real; `memory` implements it in memory for orchestration tests (runner,
//! swap, repair, rollback) — never the proof that they work on Docker. No bollard type crosses
//! this line, so a bollard upgrade or another engine API touches one file.

pub mod credentials;
pub mod docker;
pub mod memory;
pub mod reference;
pub mod ssh;
pub mod swarm;
pub mod transport;

use crate::secrets::Secret;
use futures::Stream;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// What a host's engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// Docker Engine version, e.g. `20.10.24`.
    pub server_version: String,
    /// The API version the engine speaks (and answers fleetpin in), e.g. `1.41`.
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no answer from {endpoint} within {seconds}s")]
    Timeout { endpoint: String, seconds: u64 },
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("TLS for {endpoint}: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: already exists")]
    Conflict { what: String },
    #[error("{what}: {reason}")]
    Api { what: String, reason: String },
}

impl EngineError {
    /// Whether the host itself could not be reached (as opposed to refusing one request).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            EngineError::Timeout { .. } | EngineError::Connect { .. } | EngineError::Tls { .. }
        )
    }
}

/// The observed-state types live below every layer (plan and render read them without the
/// engine); re-exported here so the seam still names them.
pub use crate::observed::{ContainerSummary, Health, LogLine, LogStream, NetworkInfo, RunState};

/// What inspecting one container adds: the health log, start time, restart policy, exit code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub state: RunState,
    pub health: Health,
    pub health_log: Vec<String>,
    /// Docker's State.StartedAt (RFC 3339); moves when the process is started again.
    pub started_at: Option<String>,
    /// How often the engine restarted the process since it was last started by a client.
    pub restart_count: i64,
    pub exit_code: Option<i64>,
    pub restart_policy: String,
    /// The reference it was created from (Docker's `Config.Image`).
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// The networks it is attached to, with the aliases it answers on there.
    pub networks: BTreeMap<String, Vec<String>>,
    /// Per network, the address (else the endpoint id) the container's own record holds there;
    /// empty when it holds none. A clean stop clears it: a stopped container that still holds
    /// one stopped under an engine crash (`host::crashed`).
    pub endpoints: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub id: String,
    /// `repo:tag` references that name it on the host.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` as the registry knows it.
    pub repo_digests: Vec<String>,
    pub has_healthcheck: bool,
}

/// What removing an image reference did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRemoved {
    /// Whether the image itself went (false: only the reference was removed, other tags still
    /// name the image).
    pub deleted: bool,
}

/// Which part of a container's output `logs` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only lines the engine received at or after this time (unix seconds, the engine's clock).
    pub since: Option<i64>,
    /// Only the last N lines (of what `since` leaves); `None`: all of them.
    pub tail: Option<usize>,
    /// Keep the stream open for new lines until the container stops.
    pub follow: bool,
}

/// Registry credentials from the operator's docker config, never from the manifest.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
    pub server: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.server)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortBinding {
    pub ip: Option<String>,
    pub host: u16,
    pub container: u16,
    /// `tcp` or `udp`
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum MountSpec {
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Bind {
        path: String,
        target: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSpec {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

/// Everything needed to create one container, in fleetpin's words.
#[derive(Clone, PartialEq, Serialize)]
pub struct CreateSpec {
    pub name: String,
    pub image: String,
    /// `KEY=VALUE`; may hold secrets: never serialised, and shown by Debug as names only.
    #[serde(skip)]
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<MountSpec>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub log_driver: Option<(String, BTreeMap<String, String>)>,
    pub healthcheck: Option<HealthSpec>,
    pub restart_policy: String,
    pub stop_timeout: Option<Duration>,
    /// Networks to join, each with these aliases; the first is given at create (API 1.41 takes one).
    /// No aliases: the container is reachable by name only, never through the service's alias (a
    /// start-first container before its gate).
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
}

impl std::fmt::Debug for CreateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .env
            .iter()
            .map(|kv| kv.split_once('=').map(|(k, _)| k).unwrap_or(kv))
            .collect();
        f.debug_struct("CreateSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("env_names", &names)
            .field("labels", &self.labels)
            .field("networks", &self.networks)
            .finish_non_exhaustive()
    }
}

/// `KEY=VALUE` lines as a map of secrets (a line without `=` is a name with an empty value, as
/// Docker reads it).
pub fn env_map(lines: Vec<String>) -> BTreeMap<String, Secret> {
    lines
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Secret::new(v.to_string())),
            None => (l, Secret::new(String::new())),
        })
        .collect()
}

pub trait Engine: Send + Sync {
    /// The address this engine was reached at, for messages.
    fn endpoint(&self) -> &str;

    fn info(&self) -> impl Future<Output = Result<EngineInfo, EngineError>> + Send;

    /// The engine's own clock (Docker: `/info` SystemTime): expiries are judged by it, never by
    /// the client's, which may be hours off on a laptop.
    fn clock(&self) -> impl Future<Output = Result<std::time::SystemTime, EngineError>> + Send;

    /// Every container (running or not) whose name starts with `prefix`, in one call.
    fn list_containers(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, EngineError>> + Send;

    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ContainerDetails, EngineError>> + Send;

    /// A container's environment (Docker's `Config.Env`), by name, in memory only: the values are
    /// compared with the secrets a service should have, never shown.
    fn container_env(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, Secret>, EngineError>> + Send;

    /// The image if it is present on the host.
    fn inspect_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;

    fn pull(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Creates the volume when missing; an existing one is left as it is.
    fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Creates the bridge network when missing.
    fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The network `name`, if the engine has one.
    fn network(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<NetworkInfo>, EngineError>> + Send;

    /// Removes the network `name` (no container may be attached).
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Creates the container (stopped); returns its id.
    fn create_container(
        &self,
        spec: &CreateSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    fn start(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Attaches the container to a network, answering there on `aliases` (and its own name).
    fn connect_network(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Detaches the container from a network (an absent attachment is not an error).
    fn disconnect_network(
        &self,
        id: &str,
        network: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Stops gracefully: SIGTERM, then SIGKILL after `timeout`, or after the container's own
    /// stop timeout (the service's `stop_timeout`) when `None`. The client waits as long as that
    /// takes: a slow graceful stop is never cut short by a request deadline.
    fn stop(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn rename(
        &self,
        id: &str,
        new_name: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Removes a container, never its volumes.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Removes an image reference, never forced: when other tags name the same image only this
    /// reference goes; the image itself goes with its last tag, and the engine refuses
    /// (`Conflict`) while any container, running or not, uses it. By id (`sha256:…`) the engine
    /// removes the image only when at most one tag names it.
    fn remove_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<ImageRemoved, EngineError>> + Send;

    /// Changes a container's restart policy. An engine that cannot (Podman 4.3 has no
    /// container-update endpoint) leaves the policy as it was, says so once, and succeeds: the
    /// policy only decides what a daemon restart or reboot starts, never what a deploy does.
    fn set_restart_policy(
        &self,
        id: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Whether `healthy`/`unhealthy` in a container's state can be waited for. Podman runs
    /// healthchecks from systemd timers only: without systemd a check never runs and the state
    /// stays `starting` forever, so the gate falls back to the `update.monitor` watch while it
    /// says `starting` (a `healthy` or `unhealthy` it does report still decides at once).
    fn runs_healthchecks(&self) -> impl Future<Output = bool> + Send {
        async { true }
    }

    /// The last `lines` lines of the container's output.
    fn logs_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// The container's output, line by line, stdout and stderr both, each line with the time the
    /// engine received it; with `follow`, new lines until the container stops. The stream owns
    /// what it needs (it outlives the call), so the streams of many hosts can be merged.
    fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> impl Stream<Item = Result<LogLine, EngineError>> + Send + use<Self>;

    /// Creates a never-started container of the lock image (an empty filesystem imported on
    /// first use) under `name`: Docker refuses a second container of one name, which makes it
    /// atomic. Fails with `Conflict` when the name is taken. Returns its id. The lock and its
    /// heartbeats are read back with `list_containers`.
    fn create_lock(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// Removes a lock or heartbeat container by id, so a stale lock removed twice never removes
    /// a fresh one.
    fn remove_lock(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;
}
