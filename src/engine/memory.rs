//! An engine that lives in memory, for tests of the pure planner and of the orchestration above
//! the seam (the host runner, the swap, repair, rollback, the lock): "whatever the host shows,
//! applying the plan then planning again finds nothing to do", "a rename error puts the retained
//! container back". It models names, states, labels, images, restarts, a clock and injected
//! failures; it is never the proof that apply, rollback or promote work on Docker — the
//! integration tests against real daemons are.

use crate::engine::{
    ContainerDetails, ContainerSummary, CreateSpec, Credentials, Engine, EngineError, EngineInfo,
    Health, ImageInfo, ImageRemoved, LogLine, LogOptions, RunState,
};
use crate::observed::NetworkInfo;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Where the in-memory clock starts (unix seconds): any fixed time will do.
const EPOCH: i64 = 1_700_000_000;

#[derive(Debug, Clone)]
pub struct MemContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: RunState,
    pub health: Health,
    pub labels: BTreeMap<String, String>,
    pub restart_policy: String,
    /// Unix seconds, by the engine's clock.
    pub created: i64,
    pub started_at: Option<String>,
    pub restart_count: i64,
    /// Whether a client ever started it.
    pub ever_started: bool,
    /// Network → the aliases it answers on there.
    pub networks: BTreeMap<String, Vec<String>>,
    /// `KEY=VALUE`, as created.
    pub env: Vec<String>,
    /// Its engine crashed under it (`MemoryEngine::crash`): stopped, its endpoints stay
    /// recorded; started again in place, its networks do not list it (Docker 20.10).
    pub crashed: bool,
}

impl MemContainer {
    /// A container as a test describes it; id and creation time are set when added.
    pub fn new(name: &str, image: &str, state: RunState, labels: BTreeMap<String, String>) -> Self {
        MemContainer {
            id: String::new(),
            name: name.to_string(),
            image: image.to_string(),
            state,
            health: if state == RunState::Running {
                Health::Healthy
            } else {
                Health::None
            },
            labels,
            restart_policy: "unless-stopped".into(),
            created: 0,
            started_at: None,
            restart_count: 0,
            ever_started: state != RunState::Created,
            networks: BTreeMap::new(),
            env: vec![],
            crashed: false,
        }
    }
}

/// What a started container of an image does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Healthy (or, without a healthcheck, keeps running).
    Good,
    /// Runs, health check fails.
    Unhealthy,
    /// Its process exits and the engine restarts it.
    CrashLoop,
}

#[derive(Debug, Default)]
pub struct MemState {
    pub containers: Vec<MemContainer>,
    /// Images present, by reference.
    pub images: Vec<String>,
    /// Image ids of references tagged onto another's image (`tag`); any other reference has an
    /// id of its own, derived from its text.
    pub image_ids: BTreeMap<String, String>,
    /// Images the fake registry can serve.
    pub registry: Vec<String>,
    /// RepoDigests of images, by reference (as an engine shortens names: `nginx@sha256:…`).
    pub digests: BTreeMap<String, Vec<String>>,
    /// How containers of an image behave once started (default: good).
    pub behaviour: BTreeMap<String, Behaviour>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    /// The labels each network was created with.
    pub network_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Failures to inject: the next call of `op` (`create`, `stop`, `rename`, `start`,
    /// `remove`, `pull`, `set_restart_policy`, `remove_image`) on a container whose id or name
    /// (or image reference) contains the text fails once; `vanish` removes the image a create
    /// needs just before it.
    pub fail_next: Vec<(String, String)>,
    /// Refusals that last: every call of `op` on a container whose id or name contains the
    /// text fails with the reason given (`start` refused as Docker refuses a container whose
    /// containerd task outlived a daemon crash), until `allow` lifts them.
    pub refusals: Vec<(String, String, String)>,
    /// Every mutating call, in order (`start NAME`, `rename OLD NEW`, …), for assertions.
    pub calls: Vec<String>,
    /// Seconds added to the clock.
    pub clock_offset: i64,
    /// A (network, alias) whose answering containers are recorded after every mutating call.
    pub watch: Option<(String, String)>,
    /// Versions of the running containers answering on `watch`, after each mutating call: what a
    /// client resolving the alias could have reached.
    pub answering_log: Vec<Vec<String>>,
    /// What containers wrote, by container id, oldest first.
    pub logs: BTreeMap<String, Vec<LogLine>>,
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

    /// Adds a container as a test describes it; returns its id.
    pub fn add_container(&self, mut c: MemContainer) -> String {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        if c.id.is_empty() {
            c.id = mem_id(s.next);
        }
        c.created = EPOCH + s.clock_offset + s.next as i64;
        push_once(&mut s.images, &c.image);
        let id = c.id.clone();
        s.containers.push(c);
        id
    }

    /// Gives the image of `source` the extra reference `reference`, as `docker tag` does.
    pub fn tag(&self, source: &str, reference: &str) {
        let mut s = self.state.lock().unwrap();
        let id = s.image_id(source);
        s.image_ids.insert(reference.to_string(), id);
        push_once(&mut s.images, reference);
    }

    /// The id of the image `reference` names.
    pub fn image_id(&self, reference: &str) -> String {
        self.state.lock().unwrap().image_id(reference)
    }

    /// Moves the engine's clock forward.
    pub fn advance(&self, secs: i64) {
        self.state.lock().unwrap().clock_offset += secs;
    }

    pub fn set_behaviour(&self, image: &str, b: Behaviour) {
        self.state
            .lock()
            .unwrap()
            .behaviour
            .insert(image.to_string(), b);
    }

    /// The engine killed and started again (Docker 20.10, no live-restore): what ran is stopped
    /// under the crash, and those whose policy is `always` are started again in place by the
    /// engine, running and healthy yet on no network (`MemContainer::crashed`).
    pub fn crash(&self) {
        let mut s = self.state.lock().unwrap();
        for c in s
            .containers
            .iter_mut()
            .filter(|c| c.state == RunState::Running)
        {
            c.crashed = true;
            if c.restart_policy != "always" {
                c.state = RunState::Exited;
                c.health = Health::None;
            }
        }
    }

    /// Makes the next `op` on a container matching `target` fail once.
    pub fn fail_next(&self, op: &str, target: &str) {
        self.state
            .lock()
            .unwrap()
            .fail_next
            .push((op.to_string(), target.to_string()));
    }

    /// Makes every `op` on a container matching `target` fail with `reason`, until `allow`.
    pub fn refuse(&self, op: &str, target: &str, reason: &str) {
        self.state.lock().unwrap().refusals.push((
            op.to_string(),
            target.to_string(),
            reason.to_string(),
        ));
    }

    /// Lifts the refusals of `op` (`refuse`).
    pub fn allow(&self, op: &str) {
        self.state
            .lock()
            .unwrap()
            .refusals
            .retain(|(o, _, _)| o != op);
    }

    /// The running containers that answer on `alias` in `network`, as Docker's DNS would list
    /// them, by name.
    pub fn answering(&self, network: &str, alias: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.answering(network, alias)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The containers as (name, state, version label), sorted by name.
    pub fn snapshot(&self) -> Vec<(String, RunState, String)> {
        let s = self.state.lock().unwrap();
        let mut v: Vec<_> = s
            .containers
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.state,
                    c.labels
                        .get("io.fleetpin.version")
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Lines the container `name` wrote (its output, as `logs` will read it back).
    pub fn write_logs(&self, name: &str, lines: &[LogLine]) {
        let id = self.id_of(name).expect("a container of that name");
        self.state
            .lock()
            .unwrap()
            .logs
            .entry(id)
            .or_default()
            .extend_from_slice(lines);
    }

    pub fn id_of(&self, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut MemState) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        f(&mut self.state.lock().unwrap())
    }

    /// `ensure_volume` and `ensure_network`: the name is in `list` afterwards.
    fn ensure(
        &self,
        list: impl FnOnce(&mut MemState) -> &mut Vec<String>,
        name: &str,
    ) -> Result<(), EngineError> {
        push_once(list(&mut self.state.lock().unwrap()), name);
        Ok(())
    }
}

impl MemState {
    /// The running containers that answer on `alias` in `network`.
    fn answering<'a>(
        &'a self,
        network: &'a str,
        alias: &'a str,
    ) -> impl Iterator<Item = &'a MemContainer> {
        self.containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .filter(move |c| {
                c.networks
                    .get(network)
                    .is_some_and(|a| a.iter().any(|x| x == alias))
            })
    }

    /// The id of the image `reference` names, and every reference to that image.
    fn references(&self, reference: &str) -> (String, Vec<String>) {
        let id = self.image_id(reference);
        let refs = self
            .images
            .iter()
            .filter(|i| self.image_id(i) == id)
            .cloned()
            .collect();
        (id, refs)
    }

    fn image_id(&self, reference: &str) -> String {
        if reference.starts_with("sha256:") {
            return reference.to_string();
        }
        self.image_ids.get(reference).cloned().unwrap_or_else(|| {
            use sha2::Digest as _;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(reference)))
        })
    }

    fn now(&self) -> i64 {
        EPOCH + self.clock_offset + self.next as i64
    }

    fn injected(&mut self, op: &str, id: &str) -> Result<(), EngineError> {
        let name = self
            .containers
            .iter()
            .find(|c| c.id == id || c.name == id)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let hit = |o: &str, t: &str| o == op && (id.contains(t) || name.contains(t));
        if let Some((_, _, reason)) = self.refusals.iter().find(|(o, t, _)| hit(o, t)) {
            return Err(EngineError::Api {
                what: format!("{op} {name}"),
                reason: reason.clone(),
            });
        }
        if let Some(i) = self.fail_next.iter().position(|(o, t)| hit(o, t)) {
            self.fail_next.remove(i);
            return Err(EngineError::Api {
                what: format!("{op} {name}"),
                reason: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn log(&mut self, call: String) {
        self.calls.push(call);
        if let Some((network, alias)) = &self.watch {
            let now: Vec<String> = self
                .answering(network, alias)
                .map(|c| {
                    c.labels
                        .get("io.fleetpin.version")
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            self.answering_log.push(now);
        }
    }
}

/// A container id that, like Docker's, differs from the others in its first characters.
fn mem_id(n: u64) -> String {
    format!("{:016x}{n:048x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Adds `name` to an engine's list of images, volumes or networks unless it is there already.
fn push_once(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
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

fn summary(s: &MemState, c: &MemContainer) -> ContainerSummary {
    ContainerSummary {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: s.image_id(&c.image),
        state: c.state,
        health: c.health,
        labels: c.labels.clone(),
        created: c.created,
    }
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

    async fn clock(&self) -> Result<SystemTime, EngineError> {
        self.with(|s| Ok(crate::clock::from_unix(s.now())))
    }

    async fn list_containers(&self, prefix: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        self.with(|s| {
            Ok(s.containers
                .iter()
                .filter(|c| c.name.starts_with(prefix))
                .map(|c| summary(s, c))
                .collect())
        })
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails, EngineError> {
        self.with(|s| {
            let image_id = {
                let c = find(s, id)?.image.clone();
                s.image_id(&c)
            };
            let c = find(s, id)?;
            Ok(ContainerDetails {
                id: c.id.clone(),
                name: c.name.clone(),
                state: c.state,
                health: c.health,
                health_log: vec![],
                started_at: c.started_at.clone(),
                restart_count: c.restart_count,
                exit_code: Some(0),
                restart_policy: c.restart_policy.clone(),
                image: c.image.clone(),
                image_id,
                labels: c.labels.clone(),
                networks: c.networks.clone(),
                // Running: an address on each network; stopped: none, unless it stopped under
                // a crash (`crash`), which leaves its endpoints recorded.
                endpoints: c
                    .networks
                    .keys()
                    .map(|n| {
                        let held = c.state == RunState::Running || c.crashed;
                        (
                            n.clone(),
                            if held {
                                format!("ep-{}", c.id)
                            } else {
                                String::new()
                            },
                        )
                    })
                    .collect(),
            })
        })
    }

    async fn container_env(
        &self,
        id: &str,
    ) -> Result<BTreeMap<String, crate::secrets::Secret>, EngineError> {
        self.with(|s| Ok(super::env_map(find(s, id)?.env.clone())))
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        self.with(|s| {
            let (id, tags) = s.references(reference);
            Ok((!tags.is_empty()).then(|| ImageInfo {
                id: id.clone(),
                repo_digests: tags
                    .iter()
                    .flat_map(|t| s.digests.get(t).cloned().unwrap_or_default())
                    .collect(),
                repo_tags: tags,
                has_healthcheck: true,
            }))
        })
    }

    async fn pull(&self, reference: &str, _: Option<Credentials>) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("pull", reference)?;
            if !s.registry.iter().any(|i| i == reference) {
                return Err(EngineError::NotFound {
                    what: format!("manifest for {reference}"),
                });
            }
            push_once(&mut s.images, reference);
            s.log(format!("pull {reference}"));
            Ok(())
        })
    }

    async fn ensure_volume(
        &self,
        name: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.ensure(|s| &mut s.volumes, name)
    }

    async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        self.with(|s| {
            s.network_labels
                .entry(name.to_string())
                .or_insert_with(|| labels.clone());
            Ok(())
        })?;
        self.ensure(|s| &mut s.networks, name)
    }

    async fn network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError> {
        self.with(|s| {
            Ok(s.networks.iter().any(|n| n == name).then(|| NetworkInfo {
                name: name.to_string(),
                driver: "bridge".into(),
                labels: s.network_labels.get(name).cloned().unwrap_or_default(),
                containers: s
                    .containers
                    .iter()
                    .filter(|c| c.networks.contains_key(name))
                    .filter(|c| !(c.crashed && c.state == RunState::Running))
                    .map(|c| c.id.clone())
                    .collect(),
            }))
        })
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.networks.retain(|n| n != name);
            s.network_labels.remove(name);
            Ok(())
        })
    }

    async fn create_container(&self, spec: &CreateSpec) -> Result<String, EngineError> {
        self.with(|s| {
            s.injected("create", &spec.name)?;
            // `vanish`: the image leaves the host just before this create, as when another run
            // removed it as unused in between.
            if s.injected("vanish", &spec.image).is_err() {
                s.images.retain(|i| i != &spec.image);
            }
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
            let id = mem_id(s.next);
            let created = s.now();
            s.containers.push(MemContainer {
                id: id.clone(),
                name: spec.name.clone(),
                image: spec.image.clone(),
                state: RunState::Created,
                health: Health::None,
                labels: spec.labels.clone(),
                restart_policy: spec.restart_policy.clone(),
                created,
                started_at: None,
                restart_count: 0,
                ever_started: false,
                networks: spec
                    .networks
                    .iter()
                    .map(|n| (n.clone(), spec.aliases.clone()))
                    .collect(),
                crashed: false,
                env: spec.env.clone(),
            });
            s.log(format!("create {}", spec.name));
            Ok(id)
        })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("start", id)?;
            let now = s.now();
            let image = find(s, id)?.image.clone();
            let b = s.behaviour.get(&image).copied().unwrap_or(Behaviour::Good);
            let c = find(s, id)?;
            c.ever_started = true;
            c.restart_count = 0;
            c.started_at = Some(crate::clock::rfc3339(crate::clock::from_unix(now)));
            match b {
                Behaviour::Good => {
                    c.state = RunState::Running;
                    c.health = Health::Healthy;
                }
                Behaviour::Unhealthy => {
                    c.state = RunState::Running;
                    c.health = Health::Unhealthy;
                }
                Behaviour::CrashLoop => {
                    // As seen from the next inspect: it already exited once and was restarted.
                    c.state = RunState::Restarting;
                    c.health = Health::None;
                    c.restart_count = 1;
                }
            }
            let name = c.name.clone();
            s.log(format!("start {name}"));
            Ok(())
        })
    }

    async fn connect_network(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("connect", id)?;
            let c = find(s, id)?;
            if c.networks.contains_key(network) {
                return Err(EngineError::Api {
                    what: format!("connecting {id} to {network}"),
                    reason: "already connected".into(),
                });
            }
            c.networks.insert(network.to_string(), aliases.to_vec());
            let name = c.name.clone();
            s.log(format!("connect {name} {network} {}", aliases.join(",")));
            Ok(())
        })
    }

    async fn disconnect_network(&self, id: &str, network: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("disconnect", id)?;
            let c = find(s, id)?;
            c.networks.remove(network);
            let name = c.name.clone();
            s.log(format!("disconnect {name} {network}"));
            Ok(())
        })
    }

    async fn stop(&self, id: &str, _: Option<Duration>) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("stop", id)?;
            let c = find(s, id)?;
            if c.state == RunState::Created {
                return Ok(());
            }
            c.state = RunState::Exited;
            c.health = Health::None;
            let name = c.name.clone();
            s.log(format!("stop {name}"));
            Ok(())
        })
    }

    async fn rename(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("rename", id)?;
            if s.containers
                .iter()
                .any(|c| c.name == new_name && c.id != id)
            {
                return Err(EngineError::Conflict {
                    what: format!("container name {new_name}"),
                });
            }
            let c = find(s, id)?;
            let old = std::mem::replace(&mut c.name, new_name.to_string());
            s.log(format!("rename {old} {new_name}"));
            Ok(())
        })
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("remove", id)?;
            if let Some(c) = s.containers.iter().find(|c| c.id == id || c.name == id) {
                let name = c.name.clone();
                s.log(format!("remove {name}"));
            }
            s.containers.retain(|c| c.id != id && c.name != id);
            Ok(())
        })
    }

    async fn remove_image(&self, reference: &str) -> Result<ImageRemoved, EngineError> {
        // Docker's rules, not forced: a tag among several is only untagged; the last one goes
        // with its image unless a container uses it; by id, only an image with one tag at most.
        self.with(|s| {
            s.injected("remove_image", reference)?;
            let (id, refs) = s.references(reference);
            if refs.is_empty() {
                return Err(EngineError::NotFound {
                    what: format!("image {reference}"),
                });
            }
            let by_id = reference.starts_with("sha256:");
            let conflict = |why: &str| EngineError::Conflict {
                what: format!("image {reference} ({why})"),
            };
            if by_id && refs.len() > 1 {
                return Err(conflict("referenced in multiple repositories"));
            }
            if !by_id && refs.len() > 1 {
                s.images.retain(|i| i != reference);
                s.log(format!("untag {reference}"));
                return Ok(ImageRemoved { deleted: false });
            }
            if s.containers.iter().any(|c| s.image_id(&c.image) == id) {
                return Err(conflict("a container is using it"));
            }
            s.images.retain(|i| !refs.contains(i));
            s.log(format!("remove image {reference}"));
            Ok(ImageRemoved { deleted: true })
        })
    }

    async fn set_restart_policy(&self, id: &str, policy: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.injected("set_restart_policy", id)?;
            find(s, id)?.restart_policy = policy.to_string();
            Ok(())
        })
    }

    async fn logs_tail(&self, _: &str, _: usize) -> Result<String, EngineError> {
        Ok(String::new())
    }

    /// What was written so far; `follow` ends there too (nothing writes while a test reads).
    fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> impl futures::Stream<Item = Result<LogLine, EngineError>> + Send + use<> {
        let found = self.with(|s| {
            let c = find(s, id)?.id.clone();
            Ok(s.logs.get(&c).cloned().unwrap_or_default())
        });
        let items: Vec<Result<LogLine, EngineError>> = match found {
            Err(e) => vec![Err(e)],
            Ok(lines) => {
                let since = options.since;
                let mut kept: Vec<LogLine> = lines
                    .into_iter()
                    .filter(|l| {
                        since.is_none_or(|t| {
                            l.time
                                .as_deref()
                                .and_then(crate::clock::parse_rfc3339)
                                .is_some_and(|lt| crate::clock::unix(lt) >= t)
                        })
                    })
                    .collect();
                if let Some(n) = options.tail {
                    kept.drain(..kept.len().saturating_sub(n));
                }
                kept.into_iter().map(Ok).collect()
            }
        };
        futures::stream::iter(items)
    }

    async fn create_lock(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        self.with(|s| {
            s.injected("create_lock", name)?;
            if s.containers.iter().any(|c| c.name == name) {
                return Err(EngineError::Conflict {
                    what: format!("container name {name}"),
                });
            }
            s.next += 1;
            let id = format!("{:064x}", s.next);
            let created = s.now();
            let mut c = MemContainer::new(
                name,
                "localhost/fleetpin/lock:1",
                RunState::Created,
                labels.clone(),
            );
            c.id = id.clone();
            c.created = created;
            c.restart_policy = "no".into();
            s.containers.push(c);
            Ok(id)
        })
    }

    async fn remove_lock(&self, id: &str) -> Result<(), EngineError> {
        self.with(|s| {
            s.containers.retain(|c| c.id != id);
            Ok(())
        })
    }
}
