//! The manifest v1: the typed model of `platform.yaml`, and how to load it.
//!
//! These types are the one description of the format: `decode` fills them from the YAML tree,
//! `checks` checks what spans several places, and `fleetpin schema` derives the JSON Schema from
//! them, so the schema cannot drift from what the parser accepts. Spans are kept beside the values
//! (skipped by the schema) because every later error and every pin edit points back into the file.

pub mod checks;
pub mod decode;
pub mod diagnostics;
pub mod edit;
pub mod pin;
pub mod resolve;
pub mod schema;
pub mod values;
pub mod yaml;

use crate::manifest::diagnostics::{ManifestError, Problem};
use crate::manifest::pin::VersionPin;
use crate::manifest::values::{Endpoint, PortMapping, VolumeMount};
use crate::manifest::yaml::Span;
use indexmap::IndexMap;
use schemars::JsonSchema;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_RETAIN: u32 = 3;
pub const DEFAULT_FILE: &str = "platform.yaml";
/// Files larger than this are refused before parsing: a manifest is a few hundred KiB at most.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A fleetpin manifest (v1): every service of the platform, and per environment the hosts and the
/// pinned image version of each service.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields, title = "fleetpin manifest v1")]
pub struct Manifest {
    /// Name of the platform; prefixes container and volume names on the hosts.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,30}$"))]
    pub platform: String,
    /// Stopped previous containers kept per service per host, for rollback.
    #[schemars(default = "default_retain", range(min = 0, max = 100))]
    pub retain: u32,
    /// The services, by functional name (`billing`, `proxy`, `db`).
    #[schemars(length(min = 1))]
    pub services: IndexMap<ServiceName, Service>,
    /// The environments in promotion order (for example recette, preprod, prod).
    #[schemars(length(min = 1))]
    pub environments: IndexMap<EnvironmentName, Environment>,
    /// What fleetpin does with the commits it makes (rollback, promote).
    pub git: Git,
    /// Where `fleetpin publish` puts the reference as an OCI artifact, for agents that follow it
    /// through the registry (`pull: oci`).
    pub reference: Option<PublishedReference>,
    /// Commands run on the operator's machine around apply, rollback and promote.
    pub hooks: Hooks,
    /// Webhooks that get one JSON POST per outcome of apply, rollback and promote.
    pub notify: Vec<Notifier>,
    #[schemars(skip)]
    pub spans: ManifestSpans,
    /// Every service name written in `services`, including ones with problems.
    #[schemars(skip)]
    pub written_services: std::collections::BTreeSet<String>,
}

fn default_retain() -> u32 {
    DEFAULT_RETAIN
}

/// A service name: `[a-z][a-z0-9-]{0,30}`.
pub type ServiceName = String;
/// An environment name: `[a-z][a-z0-9]{0,15}`.
pub type EnvironmentName = String;

#[derive(Debug, Clone, Default)]
pub struct ManifestSpans {
    pub platform: Span,
    pub retain: Span,
    pub services: Span,
    pub environments: Span,
}

/// Commands run locally with `sh -c`, in the manifest's directory, around apply, rollback and
/// promote, with the change in their environment (`FLEETPIN_CHANGES`, `FLEETPIN_CHANGES_FILE`,
/// …). A `pre_` hook that fails or times out stops the command before any host is touched (or,
/// for promote, before the pin is written); a failing `post_` or `on_failure` hook warns.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Hooks {
    /// Before apply changes any host (after the plan and the confirmation).
    #[schemars(with = "Option<HookSchema>")]
    pub pre_apply: Option<Located<String>>,
    /// After apply succeeded.
    #[schemars(with = "Option<HookSchema>")]
    pub post_apply: Option<Located<String>>,
    /// Before rollback changes any host.
    #[schemars(with = "Option<HookSchema>")]
    pub pre_rollback: Option<Located<String>>,
    /// After rollback succeeded (and committed the pins).
    #[schemars(with = "Option<HookSchema>")]
    pub post_rollback: Option<Located<String>>,
    /// Before promote writes the pins.
    #[schemars(with = "Option<HookSchema>")]
    pub pre_promote: Option<Located<String>>,
    /// After promote wrote (and committed) the pins.
    #[schemars(with = "Option<HookSchema>")]
    pub post_promote: Option<Located<String>>,
    /// After apply, rollback or promote failed or was interrupted, once its pre_ hook passed.
    #[schemars(with = "Option<HookSchema>")]
    pub on_failure: Option<Located<String>>,
    /// How long a hook may run before it is killed (default 5m, at most 1h); a `pre_` hook killed
    /// so has failed.
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Duration>,
    #[schemars(skip)]
    pub span: Span,
}

/// A hook's time limit when `hooks.timeout` is not written.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

impl Hooks {
    /// The hook of `name` (`pre_apply`, …, `on_failure`), if written.
    pub fn get(&self, name: &str) -> Option<&Located<String>> {
        match name {
            "pre_apply" => self.pre_apply.as_ref(),
            "post_apply" => self.post_apply.as_ref(),
            "pre_rollback" => self.pre_rollback.as_ref(),
            "post_rollback" => self.post_rollback.as_ref(),
            "pre_promote" => self.pre_promote.as_ref(),
            "post_promote" => self.post_promote.as_ref(),
            "on_failure" => self.on_failure.as_ref(),
            _ => None,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT)
    }
}

/// A webhook that gets one JSON POST per outcome of apply, rollback and promote: command,
/// environment, per host and service from, to and result, commit, who, and a Slack-compatible
/// `text` line. A failed or slow notification warns and never changes the exit code.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Notifier {
    /// `https://…` or `http://…`. Never printed beyond its scheme and host (a path often holds a
    /// secret, as Slack's do).
    #[schemars(with = "WebhookSchema")]
    pub webhook: Located<String>,
    /// An environment variable whose value is sent as `Authorization: Bearer …`, so the token
    /// stays out of git. Unset when fleetpin runs: the notification is not sent (a warning).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub webhook_env: Option<String>,
    /// How long the POST may take (default 10s, at most 5m).
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Duration>,
    #[schemars(skip)]
    pub span: Span,
}

/// A notification's time limit when `timeout` is not written.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct HookSchema(#[schemars(length(min = 1))] String);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct WebhookSchema(
    #[schemars(regex(pattern = r"^https?://[^/@\s]+(/\S*)?$"))]
    String,
);

/// One service: what runs, and how.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Service {
    /// Image repository without tag or digest, e.g. `registry.acme.internal:5000/acme/billing`.
    pub image: String,
    /// Published ports: `[IP:]HOST:CONTAINER[/tcp|/udp]`.
    #[schemars(with = "Vec<PortSchema>")]
    pub ports: Vec<Located<PortMapping>>,
    /// Mounts: `NAME:PATH[:ro]` (a named volume, never deleted by fleetpin) or `/HOST/PATH:PATH[:ro]`.
    #[schemars(with = "Vec<VolumeSchema>")]
    pub volumes: Vec<Located<VolumeMount>>,
    /// Environment variables: a value, or `{sops: FILE, key: PATH}` — one value of a SOPS-encrypted
    /// YAML/JSON file in git, decrypted at deploy time and never printed (docs/secrets.md).
    #[schemars(with = "BTreeMap<String, EnvValueSchema>")]
    pub env: BTreeMap<String, String>,
    /// The `{sops, key}` entries of `env`.
    #[schemars(skip)]
    pub secret_env: BTreeMap<String, Located<SopsRef>>,
    /// A file of variables, relative to the manifest: plain `KEY=VALUE` lines, or a SOPS-encrypted
    /// dotenv, YAML or JSON file; its values are never printed, logged or put in labels.
    #[schemars(with = "Option<String>")]
    pub env_file: Option<Located<String>>,
    /// Command (arguments to the entrypoint), as a list.
    pub command: Option<Vec<String>>,
    /// Entrypoint override, as a list.
    pub entrypoint: Option<Vec<String>>,
    /// User to run as (`uid`, `uid:gid` or a name).
    pub user: Option<String>,
    /// Extra labels for the container (keys starting with `io.fleetpin.` are reserved).
    pub labels: BTreeMap<String, String>,
    /// Memory limit, e.g. `512m`, `2g`.
    #[schemars(with = "Option<MemorySchema>")]
    pub memory: Option<u64>,
    /// CPU limit in cores, e.g. `1.5`.
    #[schemars(range(min = 0.01, max = 1024.0))]
    pub cpus: Option<f64>,
    /// Docker logging driver and its options.
    pub logging: Option<Logging>,
    /// Health check; without one the image's HEALTHCHECK is used, else "still running after grace".
    pub healthcheck: Option<Healthcheck>,
    /// Services started before this one on the same host; a cycle is an error.
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Located<String>>,
    /// Restart policy: `no`, `always`, `unless-stopped` (default), `on-failure`.
    pub restart: RestartPolicy,
    /// Time given to the process to stop on SIGTERM before SIGKILL, e.g. `10s`.
    #[schemars(with = "Option<DurationSchema>")]
    pub stop_timeout: Option<Duration>,
    /// User-defined bridge networks, created when missing; the service name is its alias there.
    #[schemars(with = "Vec<String>")]
    pub networks: Vec<Located<String>>,
    /// How a new release replaces the running one (not part of the container: changing it does
    /// not recreate anything). Not overridable per environment.
    pub update: Update,
    /// Tasks of this service in Swarm environments (default 1; overridable per environment).
    /// Plain-host environments run one container per host and ignore it.
    #[schemars(with = "Option<u32>", range(min = 0, max = 10000))]
    pub replicas: Option<Located<u32>>,
    #[schemars(skip)]
    pub span: Span,
}

/// One value of a SOPS file, as an `env` entry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopsRef {
    /// Relative to the manifest, read at the commit being deployed.
    pub file: String,
    pub key: crate::secrets::KeyPath,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged, rename = "EnvValue")]
enum EnvValueSchema {
    Value(String),
    Sops(SopsRefSchema),
}

/// One value of a SOPS-encrypted YAML or JSON file.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(deny_unknown_fields, rename = "SopsValue")]
struct SopsRefSchema {
    /// The SOPS file, relative to the manifest (read at the commit being deployed).
    #[schemars(length(min = 1))]
    sops: String,
    /// Map keys joined by dots (`billing.db_url`), or a list of map keys and list indexes
    /// (`[billing, "db.url"]`, `[replicas, 0, password]`).
    key: KeyPathSchema,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged, rename = "SopsKeyPath")]
enum KeyPathSchema {
    Dotted(#[schemars(length(min = 1))] String),
    Steps(#[schemars(length(min = 1))] Vec<KeyStepSchema>),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged, rename = "SopsKeyStep")]
enum KeyStepSchema {
    Key(String),
    Index(u32),
}

/// `pull`: `true`/`false`, or `oci` (agents follow the reference through the registry).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged, rename = "Pull")]
enum PullSchema {
    Git(bool),
    Oci(PullOci),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum PullOci {
    #[serde(rename = "oci")]
    Oci,
}

/// Tasks of a service in a Swarm environment when `replicas` is written nowhere.
pub const DEFAULT_REPLICAS: u32 = 1;

/// How fleetpin replaces a service's container.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Update {
    /// `start-first`: the new container starts beside the old one and takes the service's alias
    /// once it passed its gate; the old one is stopped after `drain`. `stop-first`: the old one
    /// is stopped first. Default: start-first for a service that publishes no host port and has
    /// no writable mount, else stop-first.
    #[schemars(with = "Option<Order>")]
    pub order: Option<Located<Order>>,
    /// start-first: how long the old container keeps serving after the new one passed its gate,
    /// before its graceful stop (default 2s): at least your proxy's re-resolve interval.
    #[schemars(with = "Option<DurationSchema>")]
    pub drain: Option<Duration>,
    /// Without a healthcheck, how long a new container must keep running — no exit, no restart —
    /// to pass its gate (default 10s). With one, the gate waits for `healthy` instead.
    #[schemars(with = "Option<DurationSchema>")]
    pub monitor: Option<Duration>,
    #[schemars(skip)]
    pub span: Span,
}

/// The order of a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    StartFirst,
    StopFirst,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Order::StartFirst => "start-first",
            Order::StopFirst => "stop-first",
        }
    }
}

/// How long the old container serves on after the new one passed its gate, by default.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2);

/// What fleetpin does with the pin commits it makes (`rollback`, `promote`).
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Git {
    /// Push each pin commit to the current branch's upstream, as `--push` does (`--no-push`
    /// skips it for one run). Default false: commits stay local.
    pub push: bool,
}

/// `reference: {repository: REGISTRY/PATH}`: the registry repository the reference is published
/// to (`fleetpin publish`), and followed from by agents of `pull: oci` environments.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PublishedReference {
    /// `REGISTRY/PATH`, e.g. `registry.acme.internal:5000/acme/platform` (no tag, no digest).
    #[schemars(with = "String")]
    pub repository: Located<String>,
    /// Every command that pushes its pin commit (rollback, promote) publishes it too.
    pub publish: bool,
    /// The registry speaks plain HTTP (a test or in-cluster registry): say so explicitly.
    pub insecure: bool,
}

/// What an environment's rollout does across its hosts.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Rollout {
    /// The first N hosts (manifest order) that have changes go first, alone; the others only if
    /// they all pass. An unreachable canary has failed. Default 0: no canary.
    #[schemars(range(min = 0))]
    pub canary: u32,
    /// `stop` (default): a failed host stops the rollout, no further host is touched.
    /// `rollback`: the hosts this run already changed are put back too, so the environment ends
    /// on one version.
    pub on_failure: OnFailure,
    #[schemars(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    #[default]
    Stop,
    Rollback,
}

/// The gate's watch without a healthcheck, when `update.monitor` is not written.
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(10);

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct PortSchema(
    #[schemars(regex(
        pattern = r"^((\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:]+\]:)?\d{1,5}:\d{1,5}(/tcp|/udp)?$"
    ))]
    String,
);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct VolumeSchema(
    #[schemars(regex(pattern = r"^([A-Za-z0-9][A-Za-z0-9_.-]*|/[^:]*):/[^:]*(:ro|:rw)?$"))] String,
);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct MemorySchema(
    #[schemars(regex(pattern = r"^\d+(\.\d+)?\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$"))] String,
);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct DurationSchema(
    #[schemars(regex(pattern = r"^(\d+(\.\d+)?\s*(ns|us|ms|s|m|h|sec|min|hour)s?\s*)+$"))] String,
);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct PinSchema(
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?$"))]
    String,
);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct EndpointSchema(
    #[schemars(regex(pattern = r"^(unix:///.+|tcp://.+:\d+|ssh://.+)$"))]
    String,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    #[default]
    UnlessStopped,
    OnFailure,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure => "on-failure",
        }
    }
    pub const ALL: [RestartPolicy; 4] = [
        RestartPolicy::No,
        RestartPolicy::Always,
        RestartPolicy::UnlessStopped,
        RestartPolicy::OnFailure,
    ];
}

#[derive(Debug, Clone, PartialEq, JsonSchema, serde::Serialize)]
#[schemars(deny_unknown_fields)]
pub struct Logging {
    /// Logging driver, e.g. `json-file`, `journald`.
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, JsonSchema, serde::Serialize)]
#[schemars(deny_unknown_fields)]
pub struct Healthcheck {
    /// `["CMD", "prog", "arg"…]`, `["CMD-SHELL", "command"]`, or `["NONE"]` to disable the image's.
    pub test: Vec<String>,
    #[schemars(with = "Option<DurationSchema>")]
    pub interval: Option<Duration>,
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Duration>,
    #[schemars(range(min = 1, max = 100))]
    pub retries: Option<u32>,
    #[schemars(with = "Option<DurationSchema>")]
    pub start_period: Option<Duration>,
}

/// One environment: its hosts, and the version pinned for each service that runs there.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Environment {
    /// Hosts changed at once by apply and rollback (default: all); the batch size of a rollout.
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// Canary hosts and what a failed host does to the rest of the rollout.
    pub rollout: Rollout,
    /// Followed by pull agents (`fleetpin agent`): a push `apply` refuses, and `rollback` and
    /// `promote` must push their commit (`--push` or `git: {push: true}`). `oci`: the agents
    /// follow the reference published to the registry (`reference`), and those commands publish.
    #[schemars(with = "PullSchema")]
    pub pull: bool,
    /// Written `pull: oci` (or `pull: true` in a manifest with a `reference`).
    #[schemars(skip)]
    pub pull_oci: bool,
    /// The Docker hosts of this environment, by name. Exactly one of `hosts` and `swarm`.
    #[schemars(length(min = 1))]
    pub hosts: IndexMap<String, Host>,
    /// A Docker Swarm cluster, reached through a manager, instead of `hosts` (docs/swarm.md).
    pub swarm: Option<Swarm>,
    /// The pins: service -> tag, or tag@sha256:<digest>. A service runs here if and only if it is
    /// pinned here.
    #[schemars(with = "IndexMap<String, PinSchema>")]
    pub versions: IndexMap<ServiceName, Located<VersionPin>>,
    /// Per-service changes for this environment.
    pub overrides: IndexMap<ServiceName, Override>,
    /// Who may change this environment: commits deployed here must carry a good signature.
    pub trust: Trust,
    /// The IANA time zone `windows` are read in, e.g. `Europe/Paris` (default UTC).
    #[schemars(with = "Option<TimeZoneSchema>")]
    pub timezone: Option<Located<jiff::tz::TimeZone>>,
    /// When this environment may change: `allow` and `deny` entries, a 5-field cron schedule
    /// in `timezone` and a duration (elapsed time, at most a week). Deny wins; where allow
    /// entries exist, changes happen only inside one. No entries: always.
    #[schemars(with = "Vec<WindowSchema>")]
    pub windows: Vec<Window>,
    #[schemars(skip)]
    pub span: Span,
    #[schemars(skip)]
    pub versions_span: Span,
    /// Where each pinned service's name is written under `versions`.
    #[schemars(skip)]
    pub version_keys: IndexMap<ServiceName, Span>,
}

#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Host {
    /// `unix:///var/run/docker.sock`, `tcp://HOST:PORT` (with `tls` or `insecure: true`), or
    /// `ssh://[USER@]HOST[:PORT]`.
    #[schemars(with = "EndpointSchema")]
    pub endpoint: Located<Endpoint>,
    /// Client certificates for a TLS-protected tcp endpoint, relative to the manifest.
    pub tls: Option<Tls>,
    /// Allow plain tcp: whoever reaches that port is root on the host. Say so explicitly.
    pub insecure: bool,
    /// Only these services run on this host (default: every service pinned in the environment).
    #[schemars(with = "Option<Vec<String>>")]
    pub services: Option<Vec<Located<String>>>,
    #[schemars(skip)]
    pub span: Span,
}

/// A Docker Swarm cluster: each pinned service is one Swarm service `{platform}-{env}-{service}`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Swarm {
    /// A manager's engine: `unix:///var/run/docker.sock`, `tcp://HOST:PORT` (with `tls` or
    /// `insecure: true`), or `ssh://[USER@]HOST[:PORT]`.
    #[schemars(with = "EndpointSchema")]
    pub endpoint: Located<Endpoint>,
    /// Client certificates for a TLS-protected tcp endpoint, relative to the manifest.
    pub tls: Option<Tls>,
    /// Allow plain tcp: whoever reaches that port is root on the cluster. Say so explicitly.
    pub insecure: bool,
    /// How published ports are exposed: `ingress` (default, the routing mesh: the port answers on
    /// every node) or `host` (on the nodes that run a task only; no two tasks of one service on
    /// one node).
    pub publish: Publish,
    #[schemars(skip)]
    pub span: Span,
}

/// The publish mode of a Swarm environment's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Publish {
    #[default]
    Ingress,
    Host,
}

impl Publish {
    pub fn as_str(self) -> &'static str {
        match self {
            Publish::Ingress => "ingress",
            Publish::Host => "host",
        }
    }
}

impl Environment {
    /// Whether this environment is a Swarm cluster rather than plain hosts.
    pub fn is_swarm(&self) -> bool {
        self.swarm.is_some()
    }

    /// The time zone its windows are read in: `timezone`, else UTC.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_ref()
            .map(|z| z.value.clone())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// An environment's `trust`: whether what is deployed there must be signed, and by whom.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Trust {
    /// The commit deployed here must carry a good signature (SSH or OpenPGP, as `git
    /// verify-commit` judges it) from an allowed signer of the operator's or the agent's
    /// configuration — never of the repository.
    pub signed: bool,
    /// Narrows the allowed signers for this environment (never widens them): SSH principals as
    /// the allowed signers file names them (e.g. `ops@acme.example`), or OpenPGP fingerprints
    /// of 40 hexadecimal digits. Only with `signed: true`.
    #[schemars(with = "Vec<SignerSchema>", length(min = 1))]
    pub signers: Vec<Located<Signer>>,
    #[schemars(skip)]
    pub span: Span,
}

/// One allowed signer of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signer {
    /// An SSH principal, as the allowed signers file names it (often an email address).
    Principal(String),
    /// An OpenPGP key's fingerprint: 40 hexadecimal digits, upper case.
    Fingerprint(String),
}

impl Signer {
    /// How it is written (a fingerprint in upper case).
    pub fn as_str(&self) -> &str {
        match self {
            Signer::Principal(p) | Signer::Fingerprint(p) => p,
        }
    }
}

/// One entry of an environment's `windows`.
#[derive(Debug, Clone)]
pub struct Window {
    pub kind: WindowKind,
    /// The cron schedule as written (trimmed), e.g. `0 16 * * FRI`.
    pub schedule: String,
    /// The schedule, parsed: start times, wall-clock times of the environment's zone.
    pub cron: croner::Cron,
    /// How long each window lasts from a start, in elapsed time: 0 < duration <= a week.
    pub duration: Duration,
    /// The duration as written, e.g. `64h`, for messages.
    pub duration_text: String,
    /// The entry in the manifest.
    pub span: Span,
}

impl Window {
    /// The entry as written: `deny 0 16 * * FRI for 64h`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} for {}",
            self.kind.as_str(),
            self.schedule,
            self.duration_text
        )
    }
}

/// Whether a window lets changes through or holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Allow,
    Deny,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Allow => "allow",
            WindowKind::Deny => "deny",
        }
    }
}

/// The longest duration of a window: a start is looked for at most this far back.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// An IANA time zone name: `Europe/Paris`, `America/New_York`, `UTC`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct TimeZoneSchema(#[schemars(length(min = 1))] String);

/// An SSH principal (no space, comma, quote, control character or pattern) or an OpenPGP
/// fingerprint (40 hexadecimal digits).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct SignerSchema(#[schemars(regex(pattern = r#"^[^\s,"'*?!][^\s,"'*?]*$"#))] String);

#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged, rename = "Window")]
enum WindowSchema {
    Deny(DenyWindowSchema),
    Allow(AllowWindowSchema),
}

/// No change from each start of `deny` for `duration`.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(deny_unknown_fields, rename = "DenyWindow")]
struct DenyWindowSchema {
    /// A 5-field cron schedule: minute hour day-of-month month day-of-week, e.g. `0 16 * * FRI`.
    deny: CronSchema,
    /// How long each window lasts (elapsed time), at most a week: `64h`, `2d 16h`.
    duration: WindowDurationSchema,
}

/// Changes from each start of `allow` for `duration` (and, where allow entries exist, only then).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(deny_unknown_fields, rename = "AllowWindow")]
struct AllowWindowSchema {
    /// A 5-field cron schedule: minute hour day-of-month month day-of-week, e.g. `0 7 * * MON-FRI`.
    allow: CronSchema,
    /// How long each window lasts (elapsed time), at most a week: `12h`.
    duration: WindowDurationSchema,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct CronSchema(#[schemars(regex(pattern = r"^\s*\S+(\s+\S+){4}\s*$"))] String);

#[derive(JsonSchema)]
#[allow(dead_code)]
struct WindowDurationSchema(
    #[schemars(regex(
        pattern = r"^(\d+(\.\d+)?\s*(ns|us|ms|s|m|h|d|w|sec|min|hour|day|week)s?\s*)+$"
    ))]
    String,
);

#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Tls {
    #[schemars(with = "String")]
    pub ca: Located<String>,
    #[schemars(with = "String")]
    pub cert: Located<String>,
    #[schemars(with = "String")]
    pub key: Located<String>,
}

/// Per-environment changes to a service; each given field replaces the service's.
#[derive(Debug, Clone, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Override {
    /// Merged over the service's env (keys given here win); values as in the service's `env`.
    #[schemars(with = "Option<BTreeMap<String, EnvValueSchema>>")]
    pub env: Option<BTreeMap<String, String>>,
    /// The `{sops, key}` entries of `env`.
    #[schemars(skip)]
    pub secret_env: BTreeMap<String, Located<SopsRef>>,
    #[schemars(with = "Option<Vec<PortSchema>>")]
    pub ports: Option<Vec<Located<PortMapping>>>,
    #[schemars(with = "Option<Vec<VolumeSchema>>")]
    pub volumes: Option<Vec<Located<VolumeMount>>>,
    pub command: Option<Vec<String>>,
    pub healthcheck: Option<Healthcheck>,
    #[schemars(with = "Option<MemorySchema>")]
    pub memory: Option<u64>,
    #[schemars(range(min = 0.01, max = 1024.0))]
    pub cpus: Option<f64>,
    /// Tasks of the service here (Swarm environments only).
    #[schemars(with = "Option<u32>", range(min = 0, max = 10000))]
    pub replicas: Option<Located<u32>>,
    #[schemars(skip)]
    pub span: Span,
}

/// A manifest read from disk, with what is needed to point at its lines.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    /// The file in the working tree (relative `env_file` and `tls` paths are read beside it, also
    /// for another revision: secrets are usually not committed).
    pub path: PathBuf,
    pub text: String,
    /// The commit it was read from with `--rev`; `None` for the working tree.
    pub rev_commit: Option<String>,
    /// An agent's bare clone, where the commit's SOPS files are read (the command line reads
    /// them from the working tree's repository).
    pub cache: Option<crate::git::CommitFiles>,
}

impl Loaded {
    /// The directory relative paths (`env_file`, `tls`) are read from.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Reads, parses and checks a manifest file; every problem found is in the error.
pub fn load(path: &Path) -> Result<Loaded, ManifestError> {
    let display = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ManifestError::io(&display, &e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ManifestError::single(
            &display,
            String::new(),
            Problem::new(
                Span::default(),
                format!(
                    "the file is {} bytes; a manifest is refused above {} bytes",
                    meta.len(),
                    MAX_FILE_BYTES
                ),
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| ManifestError::io(&display, &e))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid).to_string();
            return Err(ManifestError::single(
                &display,
                valid.clone(),
                Problem::new(
                    // Where the valid text ends.
                    crate::manifest::yaml::span_at(&valid, valid.len(), 0),
                    "the file is not valid UTF-8 text (a binary file, or another encoding?)".into(),
                ),
            ));
        }
    };
    let manifest = parse_str(&text)
        .map_err(|problems| ManifestError::new(&display, text.clone(), problems))?;
    Ok(Loaded {
        manifest,
        path: path.to_path_buf(),
        text,
        rev_commit: None,
        cache: None,
    })
}

/// A manifest whose text was read elsewhere (from git at a revision, for instance): `display`
/// names it in errors, `path` is the working-tree file relative paths are read beside.
pub fn from_text(
    display: &str,
    path: &Path,
    text: String,
    rev_commit: Option<String>,
) -> Result<Loaded, ManifestError> {
    let manifest =
        parse_str(&text).map_err(|problems| ManifestError::new(display, text.clone(), problems))?;
    Ok(Loaded {
        manifest,
        path: path.to_path_buf(),
        text,
        rev_commit,
        cache: None,
    })
}

/// Parses and checks manifest text; all problems at once, sorted by position.
pub fn parse_str(text: &str) -> Result<Manifest, Vec<Problem>> {
    let node =
        crate::manifest::yaml::parse(text).map_err(|e| vec![Problem::new(e.span, e.message)])?;
    // Decoding keeps what it could read, so the whole-manifest checks run even when some parts
    // are broken: the operator sees every problem in one pass.
    let (manifest, mut problems) = crate::manifest::decode::decode(&node);
    if let Some(m) = &manifest {
        problems.extend(crate::manifest::checks::validate(m));
    }
    match manifest {
        Some(m) if problems.is_empty() => Ok(m),
        _ => {
            problems.sort_by_key(|p| (p.span.line, p.span.column));
            problems.dedup_by(|a, b| a.span == b.span && a.message == b.message);
            Err(problems)
        }
    }
}

impl Manifest {
    /// Whether agents of `env` follow the reference through the registry (`pull: oci`, or
    /// `pull: true` in a manifest with a `reference`).
    pub fn follows_oci(&self, env: &str) -> bool {
        self.environments
            .get(env)
            .is_some_and(|e| e.pull && e.pull_oci)
    }
}

impl Manifest {
    /// The tasks `svc` runs in Swarm environment `env`: its override, else the service's, else 1.
    pub fn replicas_in(&self, env: &str, svc: &str) -> u32 {
        let o = self
            .environments
            .get(env)
            .and_then(|e| e.overrides.get(svc))
            .and_then(|o| o.replicas.as_ref());
        let s = self.services.get(svc).and_then(|s| s.replicas.as_ref());
        o.or(s).map(|r| r.value).unwrap_or(DEFAULT_REPLICAS)
    }

    /// The services that run on `host` of `env`, in manifest order.
    pub fn services_on(&self, env: &str, host: &str) -> Vec<&str> {
        let Some(e) = self.environments.get(env) else {
            return vec![];
        };
        let Some(h) = e.hosts.get(host) else {
            return vec![];
        };
        match &h.services {
            // A host's own list, put in manifest order by index: on a large fleet each host runs
            // a few of thousands of services, so it never scans them all (`check` asks once per
            // host, and so does every command that resolves).
            Some(list) => {
                let mut at: Vec<(usize, &str)> = list
                    .iter()
                    .filter_map(|l| self.services.get_full(l.value.as_str()))
                    .filter(|(_, name, _)| e.versions.contains_key(*name))
                    .map(|(i, name, _)| (i, name.as_str()))
                    .collect();
                at.sort_unstable();
                at.dedup();
                at.into_iter().map(|(_, name)| name).collect()
            }
            None => self
                .services
                .keys()
                .filter(|s| e.versions.contains_key(*s))
                .map(|s| s.as_str())
                .collect(),
        }
    }
}
