//! An engine that lives in memory, for property tests of the planner and the apply sequence
//! ("whatever the host shows, applying the plan then planning again finds nothing to do").
//! It models names, states, labels and images only; it is never the proof that apply, rollback
//! or promote work on Docker — the integration tests against real daemons are.

use crate::engine::{
    ContainerDetails, ContainerSummary, CreateSpec, Credentials, Engine, EngineError, EngineInfo,
    Health, ImageInfo, LockInfo, RunState,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MemContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: RunState,
    pub health: Health,
    pub labels: BTreeMap<String, String>,
    pub restart_policy: String,
    pub created: i64,
}

#[derive(Debug, Default)]
pub struct MemState {
    pub containers: Vec<MemContainer>,
    /// Images present, by reference.
    pub images: Vec<String>,
    /// Images the fake registry can serve.
    pub registry: Vec<String>,
    /// Images whose containers never become healthy.
    pub unhealthy: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    next: u64,
}

#[derive(Debug, Default)]
pub struct MemoryEngine {
    pub state: Mutex<MemState>,
}

impl MemoryEngine {
    pub fn new(registry: Vec<String>) -> MemoryEngine {
        MemoryEngine {
            state: Mutex::new(MemState {
                registry,
                ..Default::default()
            }),
        }
    }

    pub fn add_container(&self, mut c: MemContainer) {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        if c.id.is_empty() {
            c.id = format!("{:064x}", s.next);
        }
        c.created = s.next as i64;
        s.containers.push(c);
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut MemState) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        f(&mut self.state.lock().unwrap())
    }
}

fn find<'a>(s: &'a mut MemState, id: &str) -> Result<&'a mut MemContainer, EngineError> {
    s.containers
        .iter_mut()
        .find(|c| c.id == id || c.name == id)
        .ok_or_else(|| EngineError::NotFound {
            what: format!("container {id}"),
        })
}

impl Engine for MemoryEngine {
    fn endpoint(&self) -> &str {
        "memory://"
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        Ok(EngineInfo {
            server_version: "memory".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
        })
    }

    async fn list_containers(&self, prefix: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        self.with(|s| {
            Ok(s.containers
                .iter()
                .filter(|c| c.name.starts_with(prefix))
                .map(|c| ContainerSummary {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    image_id: format!("sha256:{}", c.image.len()),
                    state: c.state,
                    health: c.health,
                    labels: c.labels.clone(),
                    created: c.created,
                })
                .collect())
        })
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        self.with(|s| {
            let c = find(s, id)?;
            Ok(ContainerDetails {
                id: c.id.clone(),
                name: c.name.clone(),
                state: c.state,
                health: c.health,
                health_log: vec![],
                started_at: None,
                exit_code: Some(0),
                restart_policy: c.restart_policy.clone(),
                image_id: c.image.clone(),
                labels: c.labels.clone(),
            })
        })
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        self.with(|s| {
            Ok(s.images.iter().any(|i| i == reference).then(|| ImageInfo {
                id: format!("sha256:{}", reference.len()),
                repo_digests: vec![],
                has_healthcheck: true,
            }))
        })
    }

    async fn pull(&self, reference: &str, _: Option<Credentials>) -> Result<(), EngineError> {
        self.with(|s| {
            if !s.registry.iter().any(|i| i == reference) {
                return Err(EngineError::NotFound {
                    what: format!("manifest for {reference}"),
                });
            }
            s.images.push(reference.to_string());
            Ok(())
        })
    }

    async fn ensure_volume(
        &self,
        name: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.with(|s| {
            if !s.volumes.iter().any(|v| v == name) {
                s.volumes.push(name.to_string());
            }
            Ok(())
        })
    }

    async fn ensure_network(
        &self,
        name: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.with(|s| {
            if !s.networks.iter().any(|v| v == name) {
                s.networks.push(name.to_string());
            }
            Ok(())
        })
    }

    async fn create_container(&self, spec: &CreateSpec) -> Result<String, EngineError> {
        self.with(|s| {
            if s.containers.iter().any(|c| c.name == spec.name) {
                return Err(EngineError::Conflict {
                    what: format!("container name {}", spec.name),
                });
            }
            if !s.images.contains(&spec.image) {
                return Err(EngineError::NotFound {
                    what: format!("image {}", spec.image),
                });
            }
            s.next += 1;
            let id = format!("{:064x}", s.next);
            let created = s.next as i64;
            s.containers.push(MemContainer {
                id: id.clone(),
                name: spec.name.clone(),
                image: spec.image.clone(),
                state: RunState::Created,
                health: Health::None,
                labels: spec.labels.clone(),
                restart_policy: spec.restart_policy.clone(),
                created,
            });
            Ok(id)
        })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.with(|s| {
            let unhealthy = {
                let c = find(s, id)?;
                c.image.clone()
            };
            let bad = s.unhealthy.contains(&unhealthy);
            let c = find(s, id)?;
            c.state = RunState::Running;
            c.health = if bad {
                Health::Unhealthy
            } else {
                Health::Healthy
            };
            Ok(())
        })
    }

    async fn stop(&self, id: &str, _: Option<Duration>) -> Result<(), EngineError> {
        self.with(|s| {
            let c = find(s, id)?;
            c.state = RunState::Exited;
            c.health = Health::None;
            Ok(())
        })
    }

    async fn rename(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        self.with(|s| {
            if s.containers
                .iter()
                .any(|c| c.name == new_name && c.id != id)
            {
                return Err(EngineError::Conflict {
                    what: format!("container name {new_name}"),
                });
            }
            find(s, id)?.name = new_name.to_string();
            Ok(())
        })
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.containers.retain(|c| c.id != id && c.name != id);
            Ok(())
        })
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), EngineError> {
        self.with(|s| {
            find(s, id)?.restart_policy = policy.to_string();
            Ok(())
        })
    }

    async fn logs_tail(&self, _: &str, _: usize) -> Result<String, EngineError> {
        Ok(String::new())
    }

    async fn create_lock(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        let spec = CreateSpec {
            name: name.to_string(),
            image: "fleetpin/lock:1".into(),
            env: vec![],
            labels: labels.clone(),
            ports: vec![],
            mounts: vec![],
            command: None,
            entrypoint: None,
            user: None,
            memory: None,
            nano_cpus: None,
            log_driver: None,
            healthcheck: None,
            restart_policy: "no".into(),
            stop_timeout: None,
            networks: vec![],
            aliases: vec![],
        };
        self.with(|s| {
            if !s.images.iter().any(|i| i == "fleetpin/lock:1") {
                s.images.push("fleetpin/lock:1".into());
            }
            Ok(())
        })?;
        self.create_container(&spec).await
    }

    async fn read_lock(&self, name: &str) -> Result<Option<LockInfo>, EngineError> {
        self.with(|s| {
            Ok(s.containers
                .iter()
                .find(|c| c.name == name)
                .map(|c| (c.id.clone(), c.labels.clone())))
        })
    }

    async fn remove_lock(&self, id: &str) -> Result<(), EngineError> {
        self.remove(id).await
    }
}
