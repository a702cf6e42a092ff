//! The operations both faces call (`ops::apply`, `ops::rollback`), driven in memory exactly as
//! the command line and a console call them: each with its own context — actor, cancellation
//! token, a recording sink — over in-memory engines behind the `Connect` seam, in real git
//! repositories. What the events say, who authors the commits, and that two operations in one
//! process stay apart: one person's cancellation never stops another's run.

mod support;

use fleetpin::cancel::Cancel;
use fleetpin::engine::EngineError;
use fleetpin::engine::memory::MemoryEngine;
use fleetpin::git::Author;
use fleetpin::host::fleet::{Connect, HostRef};
use fleetpin::host::report::HostStatus;
use fleetpin::manifest::Loaded;
use fleetpin::ops::apply::{self, ApplyInput, ApplyOutcome};
use fleetpin::ops::context::{Actor, Ctx, Recorder};
use fleetpin::ops::rollback::{self, RollbackInput, RollbackOutcome};
use fleetpin::ops::run::RunOptions;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const REPO: &str = "r/web";

/// In-memory engines by host name: where the command line connects to Docker.
struct Mem(BTreeMap<String, Arc<MemoryEngine>>);

impl Connect for Mem {
    type Engine = MemoryEngine;

    async fn connect(&self, host: &HostRef, _: Duration) -> Result<Arc<MemoryEngine>, EngineError> {
        self.0
            .get(&host.name)
            .cloned()
            .ok_or_else(|| EngineError::Connect {
                endpoint: host.endpoint(),
                reason: "no such memory engine".into(),
            })
    }
}

/// One platform in its own git repository, one environment on one in-memory host.
struct Platform {
    _dir: tempfile::TempDir,
    file: PathBuf,
    platform: &'static str,
    env: &'static str,
    hosts: Mem,
}

impl Platform {
    fn new(platform: &'static str, env: &'static str) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let engine = Arc::new(MemoryEngine::new(
            ["1.0.0", "1.1.0", "2.0.0"]
                .iter()
                .map(|v| format!("{REPO}:{v}"))
                .collect(),
        ));
        Platform {
            file: dir.path().join("platform.yaml"),
            _dir: dir,
            platform,
            env,
            hosts: Mem(BTreeMap::from([("h1".to_string(), engine)])),
        }
    }

    fn dir(&self) -> &Path {
        self.file.parent().unwrap()
    }

    /// Pins `version` and commits it as the platform team.
    fn pin(&self, version: &str) -> Loaded {
        let text = format!(
            "platform: {}\nretain: 2\nservices:\n  web: {{image: {REPO}, update: {{drain: 0s}}}}\nenvironments:\n  {}:\n    hosts:\n      h1: {{endpoint: \"unix:///x.sock\"}}\n    versions: {{web: \"{version}\"}}\n",
            self.platform, self.env
        );
        std::fs::write(&self.file, text).unwrap();
        support::git::commit(
            self.dir(),
            &["platform.yaml"],
            "Platform Team",
            "platform@acme.test",
            &format!("pin {version}"),
        );
        fleetpin::ops::deploy::load(&self.file, None).unwrap()
    }

    /// The version the host serves.
    fn running(&self) -> String {
        let engine = &self.hosts.0["h1"];
        let name = format!("{}-{}-web", self.platform, self.env);
        let s = engine.state.lock().unwrap();
        let c = s
            .containers
            .iter()
            .find(|c| c.name == name)
            .expect("a container under the stable name");
        c.labels[fleetpin::plan::labels::VERSION].clone()
    }

    fn head_author(&self) -> (String, String) {
        let repo = git2::Repository::open(self.dir()).unwrap();
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        let a = head.author();
        (a.name().unwrap().into(), a.email().unwrap().into())
    }

    fn run_options() -> RunOptions {
        RunOptions {
            health_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        }
    }

    async fn apply(&self, ctx: &Ctx, loaded: &Loaded) -> ApplyOutcome {
        let input = ApplyInput {
            env: self.env.into(),
            run: Platform::run_options(),
            ..Default::default()
        };
        let plan = apply::prepare_on(ctx, &self.hosts, loaded, input)
            .await
            .unwrap();
        apply::run(ctx, loaded, plan).await.unwrap()
    }

    async fn rollback(&self, ctx: &Ctx, loaded: &Loaded) -> RollbackOutcome {
        let input = RollbackInput {
            env: self.env.into(),
            run: Platform::run_options(),
            ..Default::default()
        };
        let plan = rollback::prepare_on(ctx, &self.hosts, loaded, input)
            .await
            .unwrap();
        rollback::run(ctx, loaded, plan).await.unwrap()
    }
}

/// A person's context: their identity and commit author, their own token and recorder.
fn person(name: &str, email: &str) -> (Ctx, Arc<Recorder>, Cancel) {
    let recorder = Recorder::new();
    let cancel = Cancel::new();
    let ctx = Ctx::new(
        Actor {
            id: email.into(),
            author: Some(Author {
                name: name.into(),
                email: email.into(),
            }),
            subject: None,
        },
        cancel.clone(),
        recorder.clone(),
        Duration::from_secs(1),
    );
    (ctx, recorder, cancel)
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The events as the documents a face streams: `kind` and the rest.
fn documents(recorder: &Recorder) -> Vec<Value> {
    recorder
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.dedup();
    kinds
}

/// A platform at 1.1.0 with 1.0.0 kept, deployed by the platform team.
fn deployed(platform: &'static str, env: &'static str) -> Platform {
    let p = Platform::new(platform, env);
    let (team, _, _) = person("Platform Team", "platform@acme.test");
    block(async {
        p.apply(&team, &p.pin("1.0.0")).await;
        p.apply(&team, &p.pin("1.1.0")).await;
    });
    assert_eq!(p.running(), "1.1.0");
    p
}

#[test]
fn an_apply_reports_its_plan_each_hosts_steps_and_how_it_ended_as_events_of_its_operation() {
    let p = Platform::new("acme", "prod");
    let (ctx, recorder, _) = person("Alice", "alice@acme.test");
    let loaded = p.pin("1.0.0");
    let outcome = block(p.apply(&ctx, &loaded));
    assert!(!outcome.failed(), "the apply succeeded");
    assert_eq!(p.running(), "1.0.0");

    let docs = documents(&recorder);
    // Every event names this one operation: its id, command, environment and actor.
    let id = docs[0]["operation"]["id"].as_str().unwrap().to_string();
    for d in &docs {
        assert_eq!(d["operation"]["id"], id.as_str(), "{d}");
        assert_eq!(d["operation"]["command"], "apply");
        assert_eq!(d["operation"]["environment"], "prod");
        assert_eq!(d["operation"]["actor"], "alice@acme.test");
    }
    // The webhook document before the work, the host's steps, the end of the run over hosts,
    // then the webhook document again with its result.
    assert_eq!(kinds(&docs), ["event", "step", "hosts_done", "event"]);
    let (first, last) = (&docs[0], docs.last().unwrap());
    assert!(first.get("result").is_none(), "{first}");
    assert_eq!(first["changes"][0]["kind"], "create");
    assert_eq!(first["changes"][0]["to"], "1.0.0");
    assert_eq!(last["result"], "success");
    assert_eq!(last["who"], "alice@acme.test");
    assert_eq!(last["changes"][0]["result"], "done");
    let steps: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "step").collect();
    assert!(steps.iter().all(|s| s["host"] == "h1"), "{steps:?}");
}

#[test]
fn a_rollback_walks_back_and_its_events_and_commit_are_the_actors() {
    let p = deployed("acme", "prod");
    let (ctx, recorder, _) = person("Alice", "alice@acme.test");
    let loaded = fleetpin::ops::deploy::load(&p.file, None).unwrap();
    let RollbackOutcome::Hosts(out) = block(p.rollback(&ctx, &loaded)) else {
        panic!("a plain-host environment");
    };
    assert!(out.ok, "{:?}", out.notes);
    assert_eq!(p.running(), "1.0.0", "walked back one step");
    let commit = out.commit.clone().expect("the pin was committed");
    assert_eq!(support::git::head(p.dir()), commit);
    assert_eq!(
        p.head_author(),
        ("Alice".to_string(), "alice@acme.test".to_string())
    );
    assert_eq!(
        support::git::head_subject(p.dir()),
        "rollback prod: web 1.1.0 -> 1.0.0"
    );

    let docs = documents(&recorder);
    assert_eq!(kinds(&docs), ["event", "step", "hosts_done", "event"]);
    assert!(docs.iter().all(|d| d["operation"]["command"] == "rollback"));
    let last = docs.last().unwrap();
    assert_eq!(last["result"], "success");
    assert_eq!(last["pin_commit"], commit.as_str());
    assert_eq!(last["changes"][0]["kind"], "downgrade");
    assert_eq!(last["changes"][0]["from"], "1.1.0");
    assert_eq!(last["changes"][0]["to"], "1.0.0");
}

#[test]
fn two_operations_at_once_keep_their_own_events_and_commit_authors() {
    let a = deployed("acme", "prod");
    let b = deployed("beta", "recette");
    let (alice, alice_events, _) = person("Alice", "alice@acme.test");
    let (bob, bob_events, _) = person("Bob", "bob@beta.test");
    let la = fleetpin::ops::deploy::load(&a.file, None).unwrap();
    let lb = fleetpin::ops::deploy::load(&b.file, None).unwrap();
    let (ra, rb) = block(async { tokio::join!(a.rollback(&alice, &la), b.rollback(&bob, &lb)) });
    assert!(!ra.failed() && !rb.failed());
    assert_eq!((a.running(), b.running()), ("1.0.0".into(), "1.0.0".into()));
    assert_eq!(a.head_author(), ("Alice".into(), "alice@acme.test".into()));
    assert_eq!(b.head_author(), ("Bob".into(), "bob@beta.test".into()));

    let (da, db) = (documents(&alice_events), documents(&bob_events));
    assert!(!da.is_empty() && !db.is_empty());
    assert!(
        da.iter()
            .all(|d| d["operation"]["actor"] == "alice@acme.test"
                && d["operation"]["environment"] == "prod"),
        "only Alice's operation in Alice's sink"
    );
    assert!(
        db.iter().all(|d| d["operation"]["actor"] == "bob@beta.test"
            && d["operation"]["environment"] == "recette"),
        "only Bob's operation in Bob's sink"
    );
    assert_ne!(da[0]["operation"]["id"], db[0]["operation"]["id"]);
}

#[test]
fn cancelling_one_operation_leaves_the_other_running() {
    let a = deployed("acme", "prod");
    let b = deployed("beta", "recette");
    let (alice, _, _) = person("Alice", "alice@acme.test");
    let (bob, bob_events, bob_cancel) = person("Bob", "bob@beta.test");
    let la = a.pin("2.0.0");
    let lb = b.pin("2.0.0");
    // Bob cancels before his run reaches a host; Alice's, in the same process, goes on.
    bob_cancel.cancel();
    let (ra, rb) = block(async { tokio::join!(a.apply(&alice, &la), b.apply(&bob, &lb)) });
    assert!(!ra.failed() && !ra.interrupted(), "Alice's apply finished");
    assert_eq!(a.running(), "2.0.0");
    assert!(rb.interrupted(), "Bob's apply says it was interrupted");
    let ApplyOutcome::Hosts(rb) = rb else {
        panic!("plain hosts")
    };
    assert_eq!(rb.hosts[0].status, HostStatus::Interrupted);
    assert_eq!(b.running(), "1.1.0", "Bob's host untouched");
    let last = documents(&bob_events).pop().unwrap();
    assert_eq!(last["result"], "interrupted");
}

#[test]
fn a_move_to_swarm_steps_a_hosts_containers_aside_and_can_put_them_back_as_they_were() {
    use fleetpin::engine::Engine;
    use fleetpin::host::gate::Gate;
    use fleetpin::host::moving;
    use fleetpin::plan::moving::retirement;
    let p = deployed("acme", "prod");
    let engine = p.hosts.0["h1"].clone();
    let serving = |e: &MemoryEngine| {
        let s = e.state.lock().unwrap();
        s.containers
            .iter()
            .find(|c| c.name == "acme-prod-web")
            .map(|c| (c.id.clone(), c.state, c.networks.clone()))
    };
    let (id, _, networks) = serving(&engine).expect("1.1.0 serves");
    assert_eq!(
        networks["acme-prod-default"],
        ["web"],
        "answers on its alias"
    );

    let list = block(engine.list_containers("acme-prod-")).unwrap();
    let view = fleetpin::plan::view::classify("acme", "prod", &list);
    let nets = [(
        "acme-prod-default".to_string(),
        block(engine.network("acme-prod-default")).unwrap(),
    )];
    let r = retirement("acme", "prod", "h1", "memory://h1", &view, &nets).unwrap();
    assert_eq!(r.containers[0].id, id);
    assert_eq!(r.kept.len(), 1, "1.0.0 is kept: {:?}", r.kept);
    assert_eq!(r.networks, ["acme-prod-default"]);

    let done = block(moving::retire(&*engine, &r, &|_: &str| {})).unwrap();
    assert!(serving(&engine).is_none(), "nothing under the stable name");
    assert!(
        block(engine.network("acme-prod-default"))
            .unwrap()
            .is_none(),
        "the overlay may take the name"
    );

    // The move failed: the very container serves again, on its network, with its alias.
    let gate = Gate::new(Duration::from_secs(2), Duration::ZERO);
    let problems = block(moving::put_back(
        &*engine,
        "acme",
        "prod",
        &done,
        &gate,
        &|_: &str| {},
    ));
    assert!(problems.is_empty(), "{problems:?}");
    let (back, state, networks) = serving(&engine).expect("back under its name");
    assert_eq!(back, id);
    assert_eq!(state, fleetpin::engine::RunState::Running);
    assert_eq!(networks["acme-prod-default"], ["web"]);
    assert_eq!(p.running(), "1.1.0");

    // Or it succeeded: what it stepped aside and what was kept are removed.
    let done = block(moving::retire(&*engine, &r, &|_: &str| {})).unwrap();
    assert!(block(moving::finish(&*engine, &r, &done, &|_: &str| {})).is_empty());
    assert!(
        block(engine.list_containers("acme-prod-"))
            .unwrap()
            .is_empty(),
        "no container of prod left on the old host"
    );
}
