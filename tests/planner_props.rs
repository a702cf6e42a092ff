//! Property tests of the planner and the apply sequence, on the in-memory engine (never the proof
//! that apply works on Docker: tests/fleet_*.rs are). For any state a host may show — services
//! missing, at other versions, stopped, unhealthy, with retained, failed, half-created or
//! orphaned containers, or a foreign container on a name — applying the plan and planning again
//! leaves nothing to do but the conflicts, which are never touched — through the one host runner,
//! as apply does it (lock, repair, converge, release).

use fleetpin::engine::memory::{MemContainer, MemoryEngine};
use fleetpin::engine::{Engine, Health, RunState};
use fleetpin::host::converge;
use fleetpin::host::lock::LockConfig;
use fleetpin::host::report::{HostReport, HostStatus, Progress};
use fleetpin::host::runner::{self, HostWork, OnHost, Settings, Target};
use fleetpin::manifest::resolve::resolve_host;
use fleetpin::plan::labels::{self, DeployStamp};
use fleetpin::plan::{self, ChangeKind};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const SERVICES: [&str; 4] = ["db", "api", "web", "proxy"];
const VERSIONS: [&str; 4] = ["1.0.0", "1.2.0", "2.0.0", "nightly"];

#[derive(Debug, Clone)]
enum Seen {
    Absent,
    Ours {
        version: usize,
        same_hash: bool,
        state: u8,
        unhealthy: bool,
        retained: u8,
        failed: bool,
        pending: bool,
    },
    Foreign,
}

fn seen() -> impl Strategy<Value = Seen> {
    prop_oneof![
        Just(Seen::Absent),
        (
            0..4usize,
            any::<bool>(),
            0..3u8,
            any::<bool>(),
            0..4u8,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(version, same_hash, state, unhealthy, retained, failed, pending)| Seen::Ours {
                    version,
                    same_hash,
                    state,
                    unhealthy,
                    retained,
                    failed,
                    pending
                }
            ),
        Just(Seen::Foreign),
    ]
}

fn manifest(pins: &[Option<usize>]) -> String {
    let mut m = String::from("platform: acme\nretain: 2\nservices:\n");
    for s in SERVICES {
        // Both orders, no drain wait: `db` and `proxy` publish a port (stop-first).
        let port = match s {
            "db" => ", ports: [\"5432:5432\"]",
            "proxy" => ", ports: [\"80:80\"]",
            _ => "",
        };
        m.push_str(&format!(
            "  {s}: {{image: r/{s}, update: {{drain: 0s}}{port}}}\n"
        ));
    }
    m.push_str("  api2: {image: r/api, depends_on: [db]}\n");
    m.push_str("environments:\n  prod:\n    hosts:\n      h: {endpoint: \"unix:///x.sock\"}\n    versions:\n");
    for (s, p) in SERVICES.iter().zip(pins) {
        if let Some(v) = p {
            m.push_str(&format!("      {s}: \"{}\"\n", VERSIONS[*v]));
        }
    }
    m
}

fn container(
    name: String,
    service: &str,
    version: &str,
    hash: &str,
    state: RunState,
    health: Health,
) -> MemContainer {
    let mut c = MemContainer::new(
        &name,
        &format!("r/{service}:{version}"),
        state,
        BTreeMap::from([
            (labels::PLATFORM.into(), "acme".into()),
            (labels::ENVIRONMENT.into(), "prod".into()),
            (labels::SERVICE.into(), service.into()),
            (labels::VERSION.into(), version.into()),
            (labels::SPEC_HASH.into(), hash.into()),
        ]),
    );
    c.health = health;
    c
}

/// Apply's work as the command does it: plan under the lock, converge.
struct Converge {
    prune: bool,
}

impl HostWork<MemoryEngine> for Converge {
    async fn work(
        &self,
        engine: &MemoryEngine,
        target: &Target<MemoryEngine>,
        on: OnHost<'_>,
        progress: Progress<'_>,
    ) -> HostReport {
        let changes = plan::plan_host(&target.desired, on.view);
        converge::execute(engine, target, &changes, on, self.prune, progress).await
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn apply_then_plan_finds_nothing_to_do(
        pins in proptest::collection::vec(proptest::option::of(0..4usize), 4),
        seen in proptest::collection::vec(seen(), 4),
        prune in any::<bool>(),
    ) {
        let m = fleetpin::manifest::parse_str(&manifest(&pins)).unwrap();
        let desired = resolve_host(&m, "prod", "h", &|_: &str| Ok(String::new())).unwrap();
        let registry: Vec<String> = SERVICES
            .iter()
            .flat_map(|s| VERSIONS.iter().map(move |v| format!("r/{s}:{v}")))
            .collect();
        let engine = MemoryEngine::new(registry);
        let hash_of = |s: &str| desired.iter().find(|r| r.service == s).map(|r| r.spec_hash.clone()).unwrap_or_default();
        for (s, seen) in SERVICES.iter().zip(&seen) {
            let stable = format!("acme-prod-{s}");
            match seen {
                Seen::Absent => {}
                Seen::Foreign => {
                    let mut c = container(stable, s, "1.0.0", "x", RunState::Running, Health::None);
                    c.labels.clear();
                    engine.add_container(c);
                }
                Seen::Ours { version, same_hash, state, unhealthy, retained, failed, pending } => {
                    let v = VERSIONS[*version];
                    let hash = if *same_hash { hash_of(s) } else { "old".into() };
                    let state = [RunState::Running, RunState::Exited, RunState::Created][*state as usize];
                    let health = if *unhealthy { Health::Unhealthy } else { Health::Healthy };
                    engine.add_container(container(stable.clone(), s, v, &hash, state, health));
                    for i in 0..*retained {
                        engine.add_container(container(format!("{stable}.prev-000000000000{i}-abc"), s, "1.0.0", "h", RunState::Exited, Health::None));
                    }
                    if *failed {
                        engine.add_container(container(format!("{stable}.failed-0000000000001-abc"), s, "2.0.0", "h", RunState::Exited, Health::None));
                    }
                    if *pending {
                        engine.add_container(container(format!("{stable}.new-0000000000001-abc"), s, "2.0.0", "h", RunState::Created, Health::None));
                    }
                }
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let engine = Arc::new(engine);
        rt.block_on(async {
            let settings = Settings {
                platform: "acme".into(),
                environment: "prod".into(),
                parallel: 1,
                lock: LockConfig { identity: "me".into(), operation: "apply apply-1".into(), machine: None, ttl: Duration::from_secs(60), wait: None },
                health_timeout: Duration::from_secs(1),
                retain: 2,
                rollout: Default::default(),
                stamp: DeployStamp { commit: "c".into(), deployed_at: "t".into(), deployed_by: "me".into() },
                cancel: Default::default(),
            };
            let list = engine.list_containers("acme-prod-").await.unwrap();
            let before = plan::classify("acme", "prod", &list);
            let changes = plan::plan_host(&desired, &before);
            let target = Target { name: "h".into(), endpoint: "memory://".into(), engine: Ok(engine.clone()), desired: desired.clone(), changes: true };
            let work = Converge { prune };
            let report = runner::one_host(&*engine, &target, &settings, &work, &|_: &str| {}).await;
            prop_assert!(matches!(report.status, HostStatus::Converged | HostStatus::Unchanged), "{report:?}");

            let list = engine.list_containers("acme-prod-").await.unwrap();
            let view = plan::classify("acme", "prod", &list);
            let again = plan::plan_host(&desired, &view);
            for c in &again {
                let fine = match c.kind {
                    ChangeKind::Unchanged | ChangeKind::Conflict => true,
                    ChangeKind::RemoveOrphan => !prune,
                    _ => false,
                };
                prop_assert!(fine, "after apply: {c:?}\nall: {again:?}");
            }
            // One running container per desired service (under its name, unless someone else's
            // holds it), at most one failed one, no half-created or unconfirmed container, no
            // more than `retain` kept where the service was replaced, and the lock released.
            prop_assert!(view.pending.is_empty() && view.unconfirmed.is_empty());
            for r in &desired {
                let running = list.iter().filter(|c| {
                    c.state == RunState::Running
                        && c.labels.get(labels::SERVICE) == Some(&r.service)
                        && c.labels.contains_key(labels::PLATFORM)
                }).count();
                if view.foreign.contains_key(&r.container_name) {
                    prop_assert_eq!(running, 0, "{}: a foreign container holds the name", r.service);
                } else {
                    prop_assert_eq!(running, 1, "{}: {:?}", r.service, list);
                    prop_assert_eq!(view.current[&r.service].state, RunState::Running);
                }
                prop_assert!(view.failed.get(&r.service).is_none_or(|f| f.len() <= 1), "{}: {:?}", r.service, view.failed);
                let replaced = changes.iter().any(|c| c.service == r.service && c.kind.replaces() && c.kind != ChangeKind::Create);
                prop_assert!(!replaced || view.kept(&r.service).len() <= 2, "{}: {} kept", r.service, view.kept(&r.service).len());
            }
            prop_assert!(engine.list_containers("fleetpin-lock-").await.unwrap().is_empty(), "the lock is released");
            Ok(())
        })?;
    }
}
