//! The Swarm seam, beside the container `Engine`: a Swarm environment is one cluster reached
//! through a manager, where fleetpin creates and updates services and Swarm places, replaces and
//! rolls back their tasks. The container trait's rename, stop and retain have no meaning there,
//! so this is its own small trait (services, tasks, nodes), with bollard behind it
//! (`DockerSwarm`); ops/swarm.rs and host/swarm.rs are its only users.

use crate::engine::EngineError;
use crate::engine::docker::{DockerEngine, Target};
use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, HealthConfig, Limit, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// What fleetpin wants one Swarm service to be.
#[derive(Debug, Clone, Default)]
pub struct ServiceWant {
    pub name: String,
    /// `repo:tag` or `repo@sha256:…`.
    pub image: String,
    /// On the service (fleetpin's labels, with the version history) and on its containers.
    pub labels: BTreeMap<String, String>,
    pub container_labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    /// (published, target, udp)
    pub ports: Vec<(u16, u16, bool)>,
    /// Published in host mode (on the task's node) rather than on the routing mesh.
    pub publish_host: bool,
    pub replicas: u64,
    pub start_first: bool,
    /// Tasks updated at once.
    pub parallelism: u64,
    /// How long a new task is watched for failure before the update moves on.
    pub monitor: Duration,
    pub stop_grace: Option<Duration>,
    /// `none`, `on-failure` or `any`.
    pub restart: &'static str,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    /// (network, alias): attachable overlay networks, the service name as alias.
    pub networks: Vec<(String, String)>,
    /// (source, target, is a bind path, read-only): named volumes are node-local in Swarm.
    pub mounts: Vec<(String, String, bool, bool)>,
    /// Registry credentials sent with create and update, so the nodes can pull.
    pub credentials: Option<crate::engine::Credentials>,
    /// `test`, interval, timeout, retries, start period, when the manifest has a healthcheck.
    pub healthcheck: Option<(Vec<String>, Duration, Duration, u32, Duration)>,
}

pub use crate::observed::{ServiceState, TaskInfo};

/// A node of the cluster.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    pub addr: String,
}

/// A Swarm config object used as the environment's lock: atomic by name, its labels updatable,
/// its times set by the manager's clock.
#[derive(Debug, Clone, Default)]
pub struct LockObject {
    pub id: String,
    pub name: String,
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds, by the manager's clock.
    pub created: i64,
    pub updated: i64,
}

/// The operations fleetpin needs from a Swarm manager.
#[allow(async_fn_in_trait)]
pub trait SwarmEngine {
    fn endpoint(&self) -> &str;
    /// Services whose name starts with `prefix`.
    async fn services(&self, prefix: &str) -> Result<Vec<ServiceState>, EngineError>;
    async fn service(&self, name: &str) -> Result<Option<ServiceState>, EngineError>;
    async fn create(&self, want: &ServiceWant) -> Result<String, EngineError>;
    /// Replaces the spec of the service at `version` (optimistic: a concurrent change fails).
    async fn update(&self, id: &str, version: u64, want: &ServiceWant) -> Result<(), EngineError>;
    async fn tasks(&self, service_id: &str) -> Result<Vec<TaskInfo>, EngineError>;
    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError>;
    /// `image` with the digest the registry gives it now (`repo:tag@sha256:…`), as `docker
    /// service create` pins it, so every task runs the same image and audit and promote can read
    /// it; `image` unchanged when it has a digest or the registry cannot say.
    async fn image_with_digest(
        &self,
        image: &str,
        credentials: Option<crate::engine::Credentials>,
    ) -> String;
    /// The manager's clock (`/info` SystemTime).
    async fn clock(&self) -> Result<std::time::SystemTime, EngineError>;
    async fn lock_get(&self, name: &str) -> Result<Option<LockObject>, EngineError>;
    /// Creates the config `name`; `EngineError::Conflict` when it exists.
    async fn lock_create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError>;
    /// Rewrites its labels: the manager stamps `updated`, which is the heartbeat.
    async fn lock_touch(
        &self,
        lock: &LockObject,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError>;
    async fn lock_remove(&self, id: &str) -> Result<(), EngineError>;
    /// A task's output, line by line, as `Engine::logs` gives a container's (the manager fetches
    /// it from the task's node).
    fn task_logs(
        &self,
        task_id: &str,
        options: &crate::engine::LogOptions,
    ) -> impl futures::Stream<Item = Result<crate::engine::LogLine, EngineError>> + Send + use<Self>;
    /// Creates the attachable overlay network `name` when missing.
    async fn ensure_overlay(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError>;
    /// Removes a service and its tasks (a move to Swarm that failed gives its hosts back).
    async fn remove_service(&self, id: &str) -> Result<(), EngineError>;
    /// Removes the network `name` when it exists and nothing uses it.
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;
}

/// A manager reached with bollard, over the same transports as a plain host.
pub struct DockerSwarm {
    docker: Docker,
    endpoint: String,
}

impl DockerSwarm {
    pub async fn connect(target: &Target, timeout: Duration) -> Result<DockerSwarm, EngineError> {
        let engine = DockerEngine::connect(target, timeout).await?;
        Ok(DockerSwarm {
            endpoint: target.endpoint.key(),
            docker: engine.client().clone(),
        })
    }

    /// A removal: what is already gone (404) is removed.
    fn removed(
        &self,
        what: &str,
        r: Result<(), bollard::errors::Error>,
    ) -> Result<(), EngineError> {
        match r {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.err(what, e)),
        }
    }

    fn err(&self, what: &str, e: bollard::errors::Error) -> EngineError {
        crate::engine::docker::map_error(&self.endpoint, what, e)
    }
}

fn auth(c: crate::engine::Credentials) -> bollard::auth::DockerCredentials {
    bollard::auth::DockerCredentials {
        username: c.username,
        password: c.password,
        identitytoken: c.identity_token,
        serveraddress: Some(c.server),
        ..Default::default()
    }
}

fn service_state(s: bollard::models::Service) -> ServiceState {
    let spec = s.spec.unwrap_or_default();
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let env = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .map(|r| r as u64);
    ServiceState {
        id: s.id.unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        labels: spec.labels.unwrap_or_default().into_iter().collect(),
        image,
        replicas,
        update_state: s
            .update_status
            .as_ref()
            .and_then(|u| u.state)
            .map(|st| st.to_string()),
        update_message: s.update_status.and_then(|u| u.message),
        env: crate::engine::env_map(env),
    }
}

fn spec_of(w: &ServiceWant) -> ServiceSpec {
    let order = |start_first: bool| {
        if start_first {
            "start-first"
        } else {
            "stop-first"
        }
    };
    let ports = w
        .ports
        .iter()
        .map(|(published, target, udp)| EndpointPortConfig {
            protocol: Some(if *udp {
                EndpointPortConfigProtocolEnum::UDP
            } else {
                EndpointPortConfigProtocolEnum::TCP
            }),
            published_port: Some(*published as i64),
            target_port: Some(*target as i64),
            publish_mode: Some(if w.publish_host {
                EndpointPortConfigPublishModeEnum::HOST
            } else {
                EndpointPortConfigPublishModeEnum::INGRESS
            }),
            ..Default::default()
        })
        .collect();
    let nanos = |d: Duration| d.as_nanos() as i64;
    ServiceSpec {
        name: Some(w.name.clone()),
        labels: Some(w.labels.clone().into_iter().collect()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(w.image.clone()),
                labels: Some(w.container_labels.clone().into_iter().collect()),
                env: Some(w.env.clone()),
                args: w.command.clone(),
                command: w.entrypoint.clone(),
                user: w.user.clone(),
                stop_grace_period: w.stop_grace.map(nanos),
                mounts: Some(
                    w.mounts
                        .iter()
                        .map(|(source, target, bind, ro)| bollard::models::Mount {
                            source: Some(source.clone()),
                            target: Some(target.clone()),
                            typ: Some(if *bind {
                                bollard::models::MountType::BIND
                            } else {
                                bollard::models::MountType::VOLUME
                            }),
                            read_only: Some(*ro),
                            ..Default::default()
                        })
                        .collect(),
                ),
                health_check: w
                    .healthcheck
                    .as_ref()
                    .map(|(test, i, t, r, s)| HealthConfig {
                        test: Some(test.clone()),
                        interval: Some(nanos(*i)),
                        timeout: Some(nanos(*t)),
                        retries: Some(*r as i64),
                        start_period: Some(nanos(*s)),
                        ..Default::default()
                    }),
                ..Default::default()
            }),
            networks: Some(
                w.networks
                    .iter()
                    .map(|(n, alias)| bollard::models::NetworkAttachmentConfig {
                        target: Some(n.clone()),
                        aliases: Some(vec![alias.clone()]),
                        ..Default::default()
                    })
                    .collect(),
            ),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(match w.restart {
                    "none" => TaskSpecRestartPolicyConditionEnum::NONE,
                    "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
                    _ => TaskSpecRestartPolicyConditionEnum::ANY,
                }),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    memory_bytes: w.memory.map(|m| m as i64),
                    nano_cpus: w.cpus.map(|c| (c * 1e9) as i64),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(w.replicas as i64),
            }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(w.parallelism as i64),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(w.monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(if w.start_first {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
            ..Default::default()
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(0),
            monitor: Some(nanos(w.monitor)),
            order: Some(match order(w.start_first) {
                "start-first" => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
                _ => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl SwarmEngine for DockerSwarm {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn task_logs(
        &self,
        task_id: &str,
        options: &crate::engine::LogOptions,
    ) -> impl futures::Stream<Item = Result<crate::engine::LogLine, EngineError>> + Send + use<>
    {
        let frames = self
            .docker
            .task_logs(task_id, Some(crate::engine::docker::log_query(options)));
        crate::engine::docker::log_lines(
            frames,
            self.endpoint.clone(),
            format!("logs of task {task_id}"),
        )
    }

    async fn services(&self, prefix: &str) -> Result<Vec<ServiceState>, EngineError> {
        let filters = HashMap::from([("name".to_string(), vec![prefix.to_string()])]);
        let list = self
            .docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| self.err("list services", e))?;
        Ok(list
            .into_iter()
            .map(service_state)
            .filter(|s| s.name.starts_with(prefix))
            .collect())
    }

    async fn service(&self, name: &str) -> Result<Option<ServiceState>, EngineError> {
        match self.docker.inspect_service(name, None).await {
            Ok(s) => Ok(Some(service_state(s))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err(&format!("service {name}"), e)),
        }
    }

    async fn create(&self, want: &ServiceWant) -> Result<String, EngineError> {
        let r = self
            .docker
            .create_service(spec_of(want), want.credentials.clone().map(auth))
            .await
            .map_err(|e| self.err(&format!("create service {}", want.name), e))?;
        Ok(r.id.unwrap_or_default())
    }

    async fn update(&self, id: &str, version: u64, want: &ServiceWant) -> Result<(), EngineError> {
        self.docker
            .update_service(
                id,
                spec_of(want),
                UpdateServiceOptionsBuilder::default()
                    .version(version as i32)
                    .build(),
                want.credentials.clone().map(auth),
            )
            .await
            .map_err(|e| self.err(&format!("update service {}", want.name), e))?;
        Ok(())
    }

    async fn tasks(&self, service_id: &str) -> Result<Vec<TaskInfo>, EngineError> {
        let filters = HashMap::from([("service".to_string(), vec![service_id.to_string()])]);
        let list = self
            .docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(|e| self.err("list tasks", e))?;
        Ok(list
            .into_iter()
            .map(|t| TaskInfo {
                id: t.id.unwrap_or_default(),
                service_id: t.service_id.unwrap_or_default(),
                node_id: t.node_id.unwrap_or_default(),
                slot: t.slot.map(|s| s as u64),
                desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                state: t
                    .status
                    .as_ref()
                    .and_then(|s| s.state)
                    .map(|s: TaskState| s.to_string())
                    .unwrap_or_default(),
                error: t.status.as_ref().and_then(|s| s.err.clone()),
                labels: t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                image: t
                    .spec
                    .and_then(|s| s.container_spec)
                    .and_then(|c| c.image)
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn image_with_digest(
        &self,
        image: &str,
        credentials: Option<crate::engine::Credentials>,
    ) -> String {
        if image.contains("@sha256:") {
            return image.to_string();
        }
        match self
            .docker
            .inspect_registry_image(image, credentials.map(auth))
            .await
        {
            Ok(d)
                if d.descriptor
                    .digest
                    .as_deref()
                    .is_some_and(|x| !x.is_empty()) =>
            {
                format!("{image}@{}", d.descriptor.digest.unwrap_or_default())
            }
            _ => image.to_string(),
        }
    }

    async fn clock(&self) -> Result<std::time::SystemTime, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| self.err("reading the manager's clock", e))?;
        let text = info.system_time.unwrap_or_default();
        crate::clock::parse_rfc3339(&text).ok_or_else(|| EngineError::Api {
            what: "the manager's clock".into(),
            reason: format!("cannot read its SystemTime `{text}`"),
        })
    }

    async fn lock_get(&self, name: &str) -> Result<Option<LockObject>, EngineError> {
        let c = match self.docker.inspect_config(name).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.err(&format!("config {name}"), e)),
        };
        let time = |t: Option<String>| {
            t.as_deref()
                .and_then(crate::clock::parse_rfc3339)
                .map(crate::clock::unix)
                .unwrap_or(0)
        };
        let spec = c.spec.unwrap_or_default();
        // The name is matched exactly: inspect also answers to an id prefix.
        if spec.name.as_deref() != Some(name) {
            return Ok(None);
        }
        Ok(Some(LockObject {
            id: c.id.unwrap_or_default(),
            name: name.to_string(),
            version: c.version.and_then(|v| v.index).unwrap_or(0),
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
            created: time(c.created_at),
            updated: time(c.updated_at),
        }))
    }

    async fn lock_create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        use base64::Engine as _;
        let spec = bollard::models::ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(b"fleetpin lock\n")),
            ..Default::default()
        };
        match self.docker.create_config(spec).await {
            Ok(r) => Ok(r.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Err(EngineError::Conflict {
                what: format!("config {name}"),
            }),
            Err(e) => Err(self.err(&format!("create config {name}"), e)),
        }
    }

    async fn lock_touch(
        &self,
        lock: &LockObject,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        use base64::Engine as _;
        let spec = bollard::models::ConfigSpec {
            name: Some(lock.name.clone()),
            labels: Some(labels.clone().into_iter().collect()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(b"fleetpin lock\n")),
            ..Default::default()
        };
        self.docker
            .update_config(
                &lock.id,
                spec,
                bollard::query_parameters::UpdateConfigOptions {
                    version: lock.version as i64,
                },
            )
            .await
            .map_err(|e| self.err(&format!("renew config {}", lock.name), e))
    }

    async fn ensure_overlay(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => return Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(self.err(&format!("network {name}"), e)),
        }
        let req = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(self.err(&format!("create network {name}"), e)),
        }
    }

    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        let r = self.docker.delete_service(id).await.map(|_| ());
        self.removed(&format!("remove service {id}"), r)
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let r = self.docker.remove_network(name).await;
        self.removed(&format!("remove network {name}"), r)
    }

    async fn lock_remove(&self, id: &str) -> Result<(), EngineError> {
        let r = self.docker.delete_config(id).await;
        self.removed(&format!("remove config {id}"), r)
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        let list = self
            .docker
            .list_nodes(None)
            .await
            .map_err(|e| self.err("list nodes", e))?;
        Ok(list
            .into_iter()
            .map(|n| NodeInfo {
                id: n.id.unwrap_or_default(),
                hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                addr: n.status.and_then(|s| s.addr).unwrap_or_default(),
            })
            .collect())
    }
}
