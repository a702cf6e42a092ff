//! In-memory hosts behind the `Connect` seam and a manifest in a temp git repository, for tests
//! that drive the operations (apply, rollback, validate) as the command line does, without
//! Docker: what the hosts end up running, what an operation said, and whether it reached a host
//! at all. Fleet-free.

use fleetpin::cancel::Cancel;
use fleetpin::engine::EngineError;
use fleetpin::engine::memory::{MemContainer, MemoryEngine};
use fleetpin::git::Author;
use fleetpin::host::fleet::{Connect, HostRef};
use fleetpin::manifest::Loaded;
use fleetpin::ops::apply::{self, ApplyInput, ApplyOutcome, ApplyPlan};
use fleetpin::ops::context::{Actor, Ctx, Recorder};
use fleetpin::ops::error::OpResult;
use fleetpin::ops::run::RunOptions;
use fleetpin::plan::Change;
use fleetpin::secrets::Keys;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The image every memory host's registry serves, at 1.0.0, 1.1.0 and 2.0.0.
pub const IMAGE: &str = "r/web";

/// In-memory engines by host name, counting how often an operation connected to one.
pub struct Hosts {
    engines: BTreeMap<String, Arc<MemoryEngine>>,
    connects: AtomicUsize,
}

impl Hosts {
    /// One host, `name`.
    pub fn one(name: &str) -> Hosts {
        let engine = MemoryEngine::new(
            ["1.0.0", "1.1.0", "2.0.0"]
                .iter()
                .map(|v| format!("{IMAGE}:{v}"))
                .collect(),
        );
        Hosts {
            engines: BTreeMap::from([(name.to_string(), Arc::new(engine))]),
            connects: AtomicUsize::new(0),
        }
    }

    pub fn engine(&self, host: &str) -> &Arc<MemoryEngine> {
        &self.engines[host]
    }

    /// How many times an operation connected to a host.
    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    /// The container named `name` on `host`, if there is one.
    pub fn container(&self, host: &str, name: &str) -> Option<MemContainer> {
        let s = self.engine(host).state.lock().unwrap();
        s.containers.iter().find(|c| c.name == name).cloned()
    }

    /// The environment `name` on `host` was created with, by variable.
    pub fn env_of(&self, host: &str, name: &str) -> BTreeMap<String, String> {
        let c = self
            .container(host, name)
            .unwrap_or_else(|| panic!("no container {name} on {host}"));
        c.env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Connect for Hosts {
    type Engine = MemoryEngine;

    async fn connect(&self, host: &HostRef, _: Duration) -> Result<Arc<MemoryEngine>, EngineError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        self.engines
            .get(&host.name)
            .cloned()
            .ok_or_else(|| EngineError::Connect {
                endpoint: host.endpoint(),
                reason: "no such memory engine".into(),
            })
    }
}

/// A manifest repository in a temp directory: `platform.yaml` and whatever files it names.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        Repo { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// Commits `files` (already written) as the platform team.
    pub fn commit(&self, files: &[&str], message: &str) {
        super::git::commit(
            self.root(),
            files,
            "Platform Team",
            "platform@acme.test",
            message,
        );
    }

    /// The short id of HEAD, as fleetpin names a commit in messages.
    pub fn head_short(&self) -> String {
        fleetpin::git::short_id(&super::git::head(self.root())).to_string()
    }

    /// The manifest, as the command line loads it (HEAD's when it is committed and unchanged).
    pub fn load(&self) -> Loaded {
        fleetpin::ops::deploy::load(&self.path("platform.yaml"), None).unwrap()
    }
}

/// The age identities of `SOPS_AGE_KEY_FILE=file` alone (`None`: no identity at all; no HOME
/// either, so no default key file is found).
pub fn keys(file: Option<&Path>) -> Keys {
    let file = file.map(|f| f.to_str().unwrap().to_string());
    Keys::from_vars(
        &|k| (k == "SOPS_AGE_KEY_FILE").then(|| file.clone()).flatten(),
        None,
    )
}

/// The platform team's context (its commits authored by it), with `keys`, and what its
/// operations say.
pub fn ctx(keys: Keys) -> (Ctx, Arc<Recorder>) {
    let recorder = Recorder::new();
    let actor = Actor {
        id: "platform@acme.test".into(),
        author: Some(Author {
            name: "Platform Team".into(),
            email: "platform@acme.test".into(),
        }),
        subject: None,
    };
    let ctx = Ctx::new(
        actor,
        Cancel::new(),
        recorder.clone(),
        Duration::from_secs(1),
    )
    .with_keys(Arc::new(keys));
    (ctx, recorder)
}

pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn run_options() -> RunOptions {
    RunOptions {
        health_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    }
}

/// What `apply ENV` would do (resolved, observed, planned; nothing touched).
pub fn prepare(
    ctx: &Ctx,
    hosts: &Hosts,
    loaded: &Loaded,
    env: &str,
) -> OpResult<ApplyPlan<MemoryEngine>> {
    let input = ApplyInput {
        env: env.into(),
        run: run_options(),
        ..Default::default()
    };
    block(apply::prepare_on(ctx, hosts, loaded, input))
}

/// The changes `prepare` planned on the first host (`plan ENV` shows them).
pub fn changes(ctx: &Ctx, hosts: &Hosts, loaded: &Loaded, env: &str) -> Vec<Change> {
    match prepare(ctx, hosts, loaded, env) {
        Ok(ApplyPlan::Hosts(h)) => h.doc.hosts[0].changes.clone(),
        Ok(ApplyPlan::Swarm(_)) => panic!("a plain-host environment"),
        Err(e) => panic!("{e}"),
    }
}

/// `apply ENV`, which must succeed.
pub fn apply(ctx: &Ctx, hosts: &Hosts, loaded: &Loaded, env: &str) -> ApplyOutcome {
    let plan = prepare(ctx, hosts, loaded, env).unwrap_or_else(|e| panic!("{e}"));
    let out = block(apply::run(ctx, loaded, plan)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.failed(), "the apply failed");
    out
}
