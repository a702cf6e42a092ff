//! The bollard implementation of the `Engine` seam: connecting over unix, tcp (TLS, or plain when
//! the manifest says `insecure: true`, both pooled: `transport`) and ssh (`ssh`: the operator's
//! OpenSSH client running `docker system dial-stdio`, sessions bounded per host), and turning bollard's
//! errors and types into fleetpin's.
//!
//! The API version: bollard 0.21 sends every path without a version prefix (it joins the path over
//! the versioned base), so each engine answers in its own current version — Engine 20.10 in 1.41,
//! a newer one in its own — and a `GET /version` per host to negotiate would change nothing that
//! is sent. fleetpin reads only what API 1.41 already has, so any engine from 20.10 on works,
//! and none refuses an old version it no longer supports.

use crate::engine::{
    ContainerDetails, ContainerSummary, CreateSpec, Credentials, Engine, EngineError, EngineInfo,
    Health, ImageInfo, ImageRemoved, LogLine, LogOptions, LogStream, MountSpec, RunState,
};
use crate::manifest::values::Endpoint;
use crate::observed::NetworkInfo;
use bollard::Docker;
use bollard::errors::Error as BError;
use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, Mount, MountType, NetworkConnectRequest, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// Client certificate files, already resolved against the manifest's directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    pub tls: Option<TlsFiles>,
    pub insecure: bool,
}

pub struct DockerEngine {
    docker: Docker,
    endpoint: String,
    timeout: Duration,
    /// `Some(version)` when the engine is Podman, asked once (`GET /version`) and only when a
    /// difference matters: a healthcheck to gate on, a restart policy refused.
    podman: tokio::sync::OnceCell<Option<String>>,
    /// The restart-policy limitation is said once per host, not once per container.
    said_policy: std::sync::atomic::AtomicBool,
    /// Creates and starts sent to this engine at once. dockerd does much of a start one
    /// container at a time (network sandbox, iptables), so twenty sent together finish no
    /// sooner than four at a time, but the last ones wait in dockerd long enough to hit the
    /// request timeout: here they wait in fleetpin, before their timeout begins.
    busy: tokio::sync::Semaphore,
}

/// Creates and starts in flight per engine (see `DockerEngine::busy`).
const CREATES_AND_STARTS_AT_ONCE: usize = 4;

/// Seconds bollard waits on one request once connected (pulls stream, so this bounds silence).
const REQUEST_TIMEOUT_SECS: u64 = 300;

/// The lock container's image: an empty filesystem imported once per host, never run. Fully
/// qualified under `localhost/`, with its tag inside the repository: Podman names an imported
/// image `localhost/NAME` and ignores the import's `tag` parameter (it would be `:latest`), while
/// Docker would resolve a short `fleetpin/lock` to `docker.io/fleetpin/lock`; this one name means
/// the same image on both.
const LOCK_IMAGE: &str = "localhost/fleetpin/lock:1";

impl DockerEngine {
    /// Prepares the client (no request yet: the first one tells whether the host answers, within
    /// `connect_timeout` for its connection).
    pub async fn connect(
        target: &Target,
        connect_timeout: Duration,
    ) -> Result<DockerEngine, EngineError> {
        let endpoint = target.endpoint.key();
        let conn = |e: BError| EngineError::Connect {
            endpoint: endpoint.clone(),
            reason: e.to_string(),
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match &target.endpoint {
            Endpoint::Unix { path } => {
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version).map_err(conn)?
            }
            Endpoint::Tcp { host, port } => match &target.tls {
                Some(tls) => {
                    for (what, p) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                        if !p.is_file() {
                            return Err(EngineError::Tls {
                                endpoint: endpoint.clone(),
                                reason: format!("{what} file {} does not exist", p.display()),
                            });
                        }
                    }
                    crate::engine::transport::https(
                        &format!("https://{host}:{port}"),
                        &tls.ca,
                        &tls.cert,
                        &tls.key,
                        connect_timeout,
                        REQUEST_TIMEOUT_SECS,
                    )?
                }
                None if target.insecure => crate::engine::transport::http(
                    &format!("http://{host}:{port}"),
                    connect_timeout,
                    REQUEST_TIMEOUT_SECS,
                )?,
                None => {
                    return Err(EngineError::Connect {
                        endpoint,
                        reason: "plain tcp needs `insecure: true` in the manifest (or `tls`)"
                            .into(),
                    });
                }
            },
            Endpoint::Ssh { user, host, port } => crate::engine::ssh::docker(
                crate::engine::ssh::Destination {
                    user: user.clone(),
                    host: host.clone(),
                    // No port written: ssh's own choice (22, or the operator's ssh config).
                    port: *port,
                },
                connect_timeout,
                REQUEST_TIMEOUT_SECS,
            )?,
        };
        Ok(DockerEngine {
            docker,
            endpoint,
            timeout: connect_timeout,
            podman: tokio::sync::OnceCell::new(),
            said_policy: std::sync::atomic::AtomicBool::new(false),
            busy: tokio::sync::Semaphore::new(CREATES_AND_STARTS_AT_ONCE),
        })
    }

    /// The client itself, for the Swarm seam (engine/swarm.rs), which talks to a manager over
    /// the same transports.
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }

    /// Maps a bollard error for one operation on `what`.
    fn err(&self, what: &str, e: BError) -> EngineError {
        map_error(&self.endpoint, what, e)
    }

    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, BError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(30)), f).await {
            Err(_) => Err(EngineError::Timeout {
                endpoint: self.endpoint.clone(),
                seconds: self.timeout.max(Duration::from_secs(30)).as_secs(),
            }),
            Ok(r) => r.map_err(|e| self.err(what, e)),
        }
    }

    /// The engine's whole inspect answer for container `id` (for its details, or its stop
    /// timeout).
    async fn inspect_raw(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, EngineError> {
        // Podman reports a container between two restarts as `stopped`, a state Docker's API
        // (and bollard) does not have: that answer is read again a moment later.
        let mut tries = 0;
        loop {
            let r = self
                .timed(
                    &format!("container {id}"),
                    self.docker
                        .inspect_container(id, None::<InspectContainerOptions>),
                )
                .await;
            match r {
                Err(e) if tries < 20 && e.to_string().contains("unknown variant `stopped`") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return r,
            }
        }
    }

    /// Podman's version when the engine is Podman: its `/version` lists a `Podman Engine`
    /// component (Docker's lists `Engine`). An engine that does not answer is taken for Docker
    /// and asked again next time.
    pub async fn podman_version(&self) -> Option<String> {
        self.podman
            .get_or_try_init(|| async {
                let v = self
                    .timed("reading the engine version", self.docker.version())
                    .await?;
                Ok::<_, EngineError>(podman_in(&v))
            })
            .await
            .ok()
            .cloned()
            .flatten()
    }

    async fn import_lock_image(&self) -> Result<(), EngineError> {
        // An empty tar archive (two zero blocks) makes an image with no files.
        let empty_tar = bytes::Bytes::from(vec![0u8; 1024]);
        let opts = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(LOCK_IMAGE)
            .build();
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(empty_tar)), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| self.err("importing the lock image", e))?;
        }
        Ok(())
    }
}

/// The Podman version in a `/version` answer, if it is Podman's.
fn podman_in(v: &bollard::models::SystemVersion) -> Option<String> {
    v.components
        .iter()
        .flatten()
        .find(|c| c.name == "Podman Engine")
        .map(|c| c.version.clone())
}

fn health_from_status(status: &str) -> Health {
    if status.contains("(healthy)") {
        Health::Healthy
    } else if status.contains("(unhealthy)") {
        Health::Unhealthy
    } else if status.contains("health: starting") {
        Health::Starting
    } else {
        Health::None
    }
}

fn to_map(m: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default().into_iter().collect()
}

impl Engine for DockerEngine {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let v = self
            .timed("reading the engine version", self.docker.version())
            .await?;
        Ok(EngineInfo {
            server_version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        })
    }

    async fn clock(&self) -> Result<std::time::SystemTime, EngineError> {
        let info = self
            .timed("reading the engine's clock", self.docker.info())
            .await?;
        let text = info.system_time.unwrap_or_default();
        crate::clock::parse_rfc3339(&text).ok_or_else(|| EngineError::Api {
            what: "the engine's clock".into(),
            reason: format!("cannot read its SystemTime `{text}`"),
        })
    }

    async fn list_containers(&self, prefix: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        // The name filter is a regular expression: Docker matches it against the name with its
        // leading slash, Podman without, so the slash is optional.
        let mut filters = HashMap::new();
        filters.insert("name", vec![format!("^/?{}", regex_escape(prefix))]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .timed(
                "listing containers",
                self.docker.list_containers(Some(opts)),
            )
            .await?;
        Ok(list
            .into_iter()
            .map(|c| {
                let status = c.status.unwrap_or_default();
                ContainerSummary {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    image_id: c.image_id.unwrap_or_default(),
                    state: RunState::parse(&c.state.map(|s| s.to_string()).unwrap_or_default()),
                    health: health_from_status(&status),
                    labels: to_map(c.labels),
                    created: c.created.unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn container_env(
        &self,
        id: &str,
    ) -> Result<BTreeMap<String, crate::secrets::Secret>, EngineError> {
        let c = self.inspect_raw(id).await?;
        Ok(super::env_map(
            c.config.and_then(|c| c.env).unwrap_or_default(),
        ))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        let c = self.inspect_raw(id).await?;
        let state = c.state.unwrap_or_default();
        let health = state.health.clone();
        let health_status = health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let health_log = health
            .and_then(|h| h.log)
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                format!(
                    "exit {}: {}",
                    r.exit_code.unwrap_or_default(),
                    r.output.unwrap_or_default().trim()
                )
            })
            .collect();
        let config = c.config.unwrap_or_default();
        let attached = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default();
        Ok(ContainerDetails {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            state: RunState::parse(&state.status.map(|s| s.to_string()).unwrap_or_default()),
            health: match health_status.as_str() {
                "healthy" => Health::Healthy,
                "unhealthy" => Health::Unhealthy,
                "starting" => Health::Starting,
                _ => Health::None,
            },
            health_log,
            started_at: state.started_at,
            restart_count: c.restart_count.unwrap_or(0),
            exit_code: state.exit_code,
            restart_policy: c
                .host_config
                .and_then(|h| h.restart_policy)
                .and_then(|r| r.name)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            labels: to_map(config.labels),
            endpoints: attached
                .iter()
                .map(|(name, e)| {
                    let ip = e.ip_address.clone().unwrap_or_default();
                    let held = if ip.is_empty() {
                        e.endpoint_id.clone().unwrap_or_default()
                    } else {
                        ip
                    };
                    (name.clone(), held)
                })
                .collect(),
            networks: attached
                .into_iter()
                .map(|(name, e)| (name, e.aliases.unwrap_or_default()))
                .collect(),
        })
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self
            .timed(
                &format!("image {reference}"),
                self.docker.inspect_image(reference),
            )
            .await
        {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                repo_tags: i.repo_tags.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                has_healthcheck: i
                    .config
                    .and_then(|c| c.healthcheck)
                    .and_then(|h| h.test)
                    .is_some_and(|t| !t.is_empty() && t[0] != "NONE"),
            })),
            Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pull(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), EngineError> {
        let creds = credentials.map(|c| bollard::auth::DockerCredentials {
            username: c.username,
            password: c.password,
            identitytoken: c.identity_token,
            serveraddress: Some(c.server),
            ..Default::default()
        });
        let opts = CreateImageOptionsBuilder::new()
            .from_image(reference)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, creds);
        let what = format!("pulling {reference}");
        loop {
            // Silence longer than the request timeout means the registry or network is stuck.
            match tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS), stream.next())
                .await
            {
                Err(_) => {
                    return Err(EngineError::Timeout {
                        endpoint: self.endpoint.clone(),
                        seconds: REQUEST_TIMEOUT_SECS,
                    });
                }
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(self.err(&what, e)),
                Ok(Some(Ok(info))) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(EngineError::Api {
                            what,
                            reason: detail,
                        });
                    }
                }
            }
        }
    }

    async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ..Default::default()
        };
        // Docker returns the existing volume unchanged when the name is taken: data is never touched.
        self.timed(&format!("volume {name}"), self.docker.create_volume(req))
            .await
            .map(|_| ())
    }

    async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let mut filters = HashMap::new();
        filters.insert("name", vec![name.to_string()]);
        let opts = bollard::query_parameters::ListNetworksOptionsBuilder::new()
            .filters(&filters)
            .build();
        let existing = self
            .timed("listing networks", self.docker.list_networks(Some(opts)))
            .await?;
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Ok(());
        }
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ..Default::default()
        };
        match self
            .timed(&format!("network {name}"), self.docker.create_network(req))
            .await
        {
            Ok(_) | Err(EngineError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_container(&self, spec: &CreateSpec) -> Result<String, EngineError> {
        let mut exposed: Vec<String> = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &spec.ports {
            let key = format!("{}/{}", p.container, p.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(vec![]))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.ip.clone(),
                    host_port: Some(p.host.to_string()),
                });
        }
        let mounts = spec
            .mounts
            .iter()
            .map(|m| {
                let (typ, source, target, read_only) = match m {
                    MountSpec::Volume {
                        name,
                        target,
                        read_only,
                    } => (MountType::VOLUME, name, target, read_only),
                    MountSpec::Bind {
                        path,
                        target,
                        read_only,
                    } => (MountType::BIND, path, target, read_only),
                };
                Mount {
                    typ: Some(typ),
                    source: Some(source.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                }
            })
            .collect();
        let restart = match spec.restart_policy.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        };
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            mounts: Some(mounts),
            memory: spec.memory,
            nano_cpus: spec.nano_cpus,
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            log_config: spec
                .log_driver
                .as_ref()
                .map(|(driver, opts)| HostConfigLogConfig {
                    typ: Some(driver.clone()),
                    config: Some(opts.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                }),
            network_mode: spec.networks.first().cloned(),
            ..Default::default()
        };
        let healthcheck = spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval.map(|d| d.as_nanos() as i64),
            timeout: h.timeout.map(|d| d.as_nanos() as i64),
            retries: h.retries.map(|r| r as i64),
            start_period: h.start_period.map(|d| d.as_nanos() as i64),
            ..Default::default()
        });
        // API 1.41 accepts a single network at create; the others are connected afterwards.
        let aliases = (!spec.aliases.is_empty()).then(|| spec.aliases.clone());
        let networking_config = spec.networks.first().map(|n| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                n.clone(),
                EndpointSettings {
                    aliases: aliases.clone(),
                    ..Default::default()
                },
            )])),
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            exposed_ports: Some(exposed),
            cmd: spec.command.clone(),
            entrypoint: spec.entrypoint.clone(),
            user: spec.user.clone(),
            healthcheck,
            stop_timeout: spec.stop_timeout.map(|d| d.as_secs() as i64),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let _turn = self.busy.acquire().await;
        let created = self
            .timed(
                &format!("creating container {}", spec.name),
                self.docker.create_container(Some(opts), body),
            )
            .await?;
        for n in spec.networks.iter().skip(1) {
            let req = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(EndpointSettings {
                    aliases: aliases.clone(),
                    ..Default::default()
                }),
            };
            self.timed(
                &format!("connecting {} to {n}", spec.name),
                self.docker.connect_network(n, req),
            )
            .await?;
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        let _turn = self.busy.acquire().await;
        self.timed(
            &format!("starting container {id}"),
            self.docker
                .start_container(id, None::<bollard::query_parameters::StartContainerOptions>),
        )
        .await
    }

    async fn connect_network(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        let req = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.timed(
            &format!("connecting {id} to {network}"),
            self.docker.connect_network(network, req),
        )
        .await
    }

    async fn network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError> {
        match self
            .timed(
                &format!("network {name}"),
                self.docker.inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                ),
            )
            .await
        {
            Ok(n) => Ok(Some(NetworkInfo {
                name: n.name.unwrap_or_default(),
                driver: n.driver.unwrap_or_default(),
                labels: n.labels.unwrap_or_default().into_iter().collect(),
                containers: n.containers.unwrap_or_default().into_keys().collect(),
            })),
            Err(EngineError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.timed(
            &format!("removing network {name}"),
            self.docker.remove_network(name),
        )
        .await
    }

    async fn disconnect_network(&self, id: &str, network: &str) -> Result<(), EngineError> {
        let req = bollard::models::NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(false),
        };
        match self
            .timed(
                &format!("disconnecting {id} from {network}"),
                self.docker.disconnect_network(network, req),
            )
            .await
        {
            // Not attached (Docker says so with a 403 or a 404, depending on the version).
            Err(EngineError::NotFound { .. }) => Ok(()),
            Err(EngineError::Api { reason, .. }) if reason.contains("is not connected") => Ok(()),
            other => other,
        }
    }

    async fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<(), EngineError> {
        // The engine waits the container's own stop timeout when none is given; the client must
        // wait at least as long (plus a margin), or a slow graceful stop looks like a dead host.
        let grace = match timeout {
            Some(t) => t,
            None => {
                let c = self.inspect_raw(id).await?;
                c.config
                    .and_then(|c| c.stop_timeout)
                    .filter(|t| *t >= 0)
                    .map(|t| Duration::from_secs(t as u64))
                    .unwrap_or(Duration::from_secs(10))
            }
        };
        let mut b = StopContainerOptionsBuilder::new();
        if let Some(t) = timeout {
            b = b.t(t.as_secs() as i32);
        }
        let deadline = grace + Duration::from_secs(30);
        // bollard's own per-request deadline must not be the shorter one either.
        let docker = self.docker.clone().with_timeout(deadline);
        let r = match tokio::time::timeout(deadline, docker.stop_container(id, Some(b.build())))
            .await
        {
            Err(_) => Err(EngineError::Timeout {
                endpoint: self.endpoint.clone(),
                seconds: deadline.as_secs(),
            }),
            Ok(r) => r.map_err(|e| self.err(&format!("stopping container {id}"), e)),
        };
        match r {
            // 304: already stopped.
            Err(EngineError::Api { reason, .. }) if reason.is_empty() || reason.contains("304") => {
                Ok(())
            }
            other => other,
        }
    }

    async fn rename(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        let opts = RenameContainerOptionsBuilder::new().name(new_name).build();
        self.timed(
            &format!("renaming container {id} to {new_name}"),
            self.docker.rename_container(id, opts),
        )
        .await
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(false)
            .build();
        match self
            .timed(
                &format!("removing container {id}"),
                self.docker.remove_container(id, Some(opts)),
            )
            .await
        {
            Ok(()) | Err(EngineError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_image(&self, reference: &str) -> Result<ImageRemoved, EngineError> {
        // Never forced: Docker then refuses an image a container uses, and removing one tag of
        // several only untags it.
        let opts = RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(false)
            .build();
        let items = self
            .timed(
                &format!("removing image {reference}"),
                self.docker.remove_image(reference, Some(opts), None),
            )
            .await?;
        Ok(ImageRemoved {
            deleted: items.iter().any(|i| i.deleted.is_some()),
        })
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), EngineError> {
        let name = match policy {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        };
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        match self
            .timed(
                &format!("setting the restart policy of {id}"),
                self.docker.update_container(id, body),
            )
            .await
        {
            // Podman 4.3 has no `/containers/{id}/update`: its router answers a bare 404 "Not
            // Found", where a missing container would be "no such container". Confirmed by the
            // engine's identity before it is let pass.
            Err(EngineError::NotFound { what }) if !what.contains("no such container") => {
                let Some(version) = self.podman_version().await else {
                    return Err(EngineError::NotFound { what });
                };
                if !self
                    .said_policy
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(
                        "{}: Podman {version} cannot change a container's restart policy (no \
                         container-update endpoint): retained containers keep theirs (`{policy}` \
                         was asked); see docs/podman.md",
                        self.endpoint
                    );
                }
                Ok(())
            }
            other => other,
        }
    }

    async fn runs_healthchecks(&self) -> bool {
        self.podman_version().await.is_none()
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, EngineError> {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
        {
            match item {
                Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
                Err(e) => return Err(self.err(&format!("logs of {id}"), e)),
            }
        }
        Ok(out)
    }

    fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> impl futures::Stream<Item = Result<LogLine, EngineError>> + Send + use<> {
        let frames = self.docker.logs(id, Some(log_query(options)));
        log_lines(frames, self.endpoint.clone(), format!("logs of {id}"))
    }

    async fn create_lock(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        let body = || ContainerCreateBody {
            image: Some(LOCK_IMAGE.to_string()),
            cmd: Some(vec!["fleetpin-lock".into()]),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        let what = format!("lock {name}");
        match self
            .timed(
                &what,
                self.docker.create_container(Some(opts.clone()), body()),
            )
            .await
        {
            Ok(c) => Ok(c.id),
            Err(EngineError::NotFound { .. }) => {
                self.import_lock_image().await?;
                self.timed(&what, self.docker.create_container(Some(opts), body()))
                    .await
                    .map(|c| c.id)
            }
            Err(e) => Err(e),
        }
    }

    async fn remove_lock(&self, id: &str) -> Result<(), EngineError> {
        self.remove(id).await
    }
}

/// A bollard error for one operation on `what` of the engine at `endpoint`, in fleetpin's words.
pub(crate) fn map_error(endpoint: &str, what: &str, e: BError) -> EngineError {
    match e {
        BError::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::NotFound {
            what: format!("{what} ({message})"),
        },
        BError::DockerResponseServerError {
            status_code: 409,
            message,
        } => EngineError::Conflict {
            what: format!("{what} ({message})"),
        },
        BError::DockerResponseServerError { message, .. } => EngineError::Api {
            what: what.to_string(),
            reason: message,
        },
        // An ssh transport's own failure (refused key, unknown host, no docker CLI there) is a
        // connection failure in ssh's words.
        BError::IOError { ref err }
            if err
                .get_ref()
                .is_some_and(|e| e.is::<crate::engine::ssh::SshError>()) =>
        {
            EngineError::Connect {
                endpoint: endpoint.to_string(),
                reason: err.to_string(),
            }
        }
        BError::RequestTimeoutError => EngineError::Timeout {
            endpoint: endpoint.to_string(),
            seconds: REQUEST_TIMEOUT_SECS,
        },
        other => {
            let reason = other.to_string();
            if reason.contains("onnect")
                || reason.contains("broken pipe")
                || reason.contains("reset")
            {
                EngineError::Connect {
                    endpoint: endpoint.to_string(),
                    reason,
                }
            } else {
                EngineError::Api {
                    what: what.to_string(),
                    reason,
                }
            }
        }
    }
}

/// The log query of `logs`, for a container or a Swarm task.
pub(crate) fn log_query(options: &LogOptions) -> bollard::query_parameters::LogsOptions {
    let mut b = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(options.follow)
        .tail(&options.tail.map_or("all".to_string(), |n| n.to_string()));
    if let Some(since) = options.since {
        b = b.since(since.clamp(0, i32::MAX as i64) as i32);
    }
    b.build()
}

/// The engine's log frames as lines, each with the engine's time; an error ends the stream.
pub(crate) fn log_lines(
    frames: impl futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
    + Send
    + 'static,
    endpoint: String,
    what: String,
) -> impl futures::Stream<Item = Result<LogLine, EngineError>> + Send + 'static {
    // One frame may finish several lines (or none): they wait in `ready`.
    let state = (
        Box::pin(frames),
        LineSplitter::default(),
        std::collections::VecDeque::new(),
        false,
    );
    futures_util::stream::unfold(
        state,
        move |(mut frames, mut split, mut ready, mut done)| {
            let (endpoint, what) = (endpoint.clone(), what.clone());
            async move {
                loop {
                    if let Some(line) = ready.pop_front() {
                        return Some((Ok(line), (frames, split, ready, done)));
                    }
                    if done {
                        return None;
                    }
                    match frames.next().await {
                        Some(Ok(frame)) => {
                            use bollard::container::LogOutput;
                            let (stream, bytes) = match frame {
                                LogOutput::StdErr { message } => (LogStream::Stderr, message),
                                LogOutput::StdOut { message }
                                | LogOutput::Console { message }
                                | LogOutput::StdIn { message } => (LogStream::Stdout, message),
                            };
                            ready.extend(split.push(stream, &bytes));
                        }
                        Some(Err(e)) => {
                            done = true;
                            return Some((
                                Err(map_error(&endpoint, &what, e)),
                                (frames, split, ready, done),
                            ));
                        }
                        None => {
                            done = true;
                            ready.extend(split.finish());
                        }
                    }
                }
            }
        },
    )
}

/// Docker's log frames into lines. Each frame is one entry of the container's log — a line, or
/// a piece of a long one (the engine splits lines over 16 KiB) — headed, with `timestamps`, by
/// the time the engine received it and a space. Pieces are joined per stream until a newline; a
/// line carries the time of its first piece.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: [Option<(Option<String>, Vec<u8>)>; 2],
}

impl LineSplitter {
    /// The complete lines a frame finishes.
    pub fn push(&mut self, stream: LogStream, frame: &[u8]) -> Vec<LogLine> {
        let (time, mut rest) = split_timestamp(frame);
        let slot = &mut self.partial[stream as usize];
        let mut out = Vec::new();
        loop {
            let (buf_time, buf) = slot.get_or_insert_with(|| (time.clone(), Vec::new()));
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    buf.extend_from_slice(&rest[..i]);
                    out.push(line_of(stream, buf_time.take(), std::mem::take(buf)));
                    *slot = None;
                    rest = &rest[i + 1..];
                    if rest.is_empty() {
                        break;
                    }
                }
                None => {
                    buf.extend_from_slice(rest);
                    break;
                }
            }
        }
        out
    }

    /// What is left when the stream ends: a last line without a newline.
    pub fn finish(&mut self) -> Vec<LogLine> {
        [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .filter_map(|st| {
                let (time, buf) = self.partial[st as usize].take()?;
                (!buf.is_empty()).then(|| line_of(st, time, buf))
            })
            .collect()
    }
}

fn line_of(stream: LogStream, time: Option<String>, mut bytes: Vec<u8>) -> LogLine {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    LogLine {
        stream,
        time,
        line: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `2026-01-02T03:04:05.123456789Z rest` → the time and the rest; a frame without one is all rest.
fn split_timestamp(frame: &[u8]) -> (Option<String>, &[u8]) {
    let head = &frame[..frame.len().min(40)];
    if let Some(i) = head.iter().position(|b| *b == b' ')
        && let Ok(t) = std::str::from_utf8(&frame[..i])
        && t.len() >= 20
        && t.as_bytes()[4] == b'-'
        && t.as_bytes()[10] == b'T'
    {
        return (Some(t.to_string()), &frame[i + 1..]);
    }
    (None, frame)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_lines_with_their_time_and_stream() {
        let mut s = LineSplitter::default();
        let out = s.push(
            LogStream::Stdout,
            b"2026-01-02T03:04:05.123456789Z hello world\n",
        );
        assert_eq!(
            out,
            vec![LogLine {
                stream: LogStream::Stdout,
                time: Some("2026-01-02T03:04:05.123456789Z".into()),
                line: "hello world".into(),
            }]
        );
        // A long line split in pieces, each with its own time: joined, with the first time.
        assert!(
            s.push(LogStream::Stderr, b"2026-01-02T03:04:06.1Z first half ")
                .is_empty()
        );
        let out = s.push(LogStream::Stderr, b"2026-01-02T03:04:06.2Z second half\r\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line, "first half second half");
        assert_eq!(out[0].time.as_deref(), Some("2026-01-02T03:04:06.1Z"));
        assert_eq!(out[0].stream, LogStream::Stderr);
        // Without a time (a frame that does not start with one), and a last line with no newline.
        let out = s.push(LogStream::Stdout, b"a\nb\nc");
        assert_eq!(
            out.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let rest = s.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].line, "c");
        assert_eq!(rest[0].time, None);
        assert!(s.finish().is_empty());
        // An empty line is a line.
        let out = s.push(LogStream::Stdout, b"2026-01-02T03:04:05Z \n");
        assert_eq!(out[0].line, "");
    }
}
