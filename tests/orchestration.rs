//! The host orchestration — the one runner, the one swap, repair, rollback — on the in-memory
//! engine: the sequences an operator runs (upgrades, rollbacks, a relaunch, a kill at each step)
//! and the failures a real engine can return at any call (injected). The fleet tests prove the
//! same on real daemons; these prove the orchestration's decisions exhaustively and fast.

use fleetpin::engine::Engine;
use fleetpin::engine::RunState;
use fleetpin::engine::memory::{Behaviour, MemContainer, MemoryEngine};
use fleetpin::host::converge::Apply as ApplyWork;
use fleetpin::host::lock::LockConfig;
use fleetpin::host::report::{HostReport, HostStatus};
use fleetpin::host::rollback::Rollback as RollbackWork;
use fleetpin::host::runner::{self, HostWork, Settings, Target};
use fleetpin::manifest::resolve::{ResolvedService, resolve_host};
use fleetpin::ops::deploy::Selection;
use fleetpin::plan::labels::{self, DeployStamp};
use fleetpin::plan::rollback::{Disagreement, agree};
use fleetpin::plan::view::classify;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const REPO: &str = "r/web";

fn manifest(version: &str, extra: &str) -> String {
    format!(
        "platform: acme\nretain: 2\nservices:\n  web: {{image: {REPO}{extra}}}\nenvironments:\n  prod:\n    hosts:\n      h: {{endpoint: \"unix:///x.sock\"}}\n    versions: {{web: \"{version}\"}}\n"
    )
}

fn desired(version: &str) -> Vec<std::sync::Arc<ResolvedService>> {
    // No drain: the alias log shows two versions answering anyway, and the tests stay fast.
    let m = fleetpin::manifest::parse_str(&manifest(version, ", update: {drain: 0s}")).unwrap();
    resolve_host(&m, "prod", "h", &|_: &str| Ok(String::new())).unwrap()
}

fn registry() -> Vec<String> {
    ["1.0.0", "1.1.0", "2.0.0", "broken", "crash"]
        .iter()
        .map(|v| format!("{REPO}:{v}"))
        .collect()
}

fn settings() -> Settings {
    Settings {
        platform: "acme".into(),
        environment: "prod".into(),
        parallel: 1,
        lock: LockConfig {
            identity: "me".into(),
            operation: "apply apply-1".into(),
            machine: None,
            ttl: Duration::from_secs(60),
            wait: None,
        },
        health_timeout: Duration::from_secs(2),
        retain: 3,
        rollout: Default::default(),
        stamp: DeployStamp {
            commit: "c".into(),
            deployed_at: "t".into(),
            deployed_by: "me".into(),
        },
        cancel: Default::default(),
    }
}

/// The settings of a run that keeps `retain` previous containers per service.
fn retaining(retain: u32) -> Settings {
    Settings {
        retain,
        ..settings()
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn run<W: HostWork<MemoryEngine>>(
    engine: &Arc<MemoryEngine>,
    version: &str,
    work: &W,
) -> HostReport {
    run_with(engine, version, work, &settings())
}

fn run_with<W: HostWork<MemoryEngine>>(
    engine: &Arc<MemoryEngine>,
    version: &str,
    work: &W,
    settings: &Settings,
) -> HostReport {
    let target = Target {
        name: "h".into(),
        endpoint: "memory://".into(),
        engine: Ok(engine.clone()),
        desired: desired(version),
        changes: true,
    };
    block(runner::one_host(
        &**engine,
        &target,
        settings,
        work,
        &|_: &str| {},
    ))
}

fn apply(engine: &Arc<MemoryEngine>, version: &str) -> HostReport {
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    run(engine, version, &work)
}

/// Rolls back as the command does: agree on a target first, then the runner.
fn rollback(
    engine: &Arc<MemoryEngine>,
    pinned: &str,
    to: Option<&str>,
) -> Result<HostReport, Vec<Disagreement>> {
    let list = block(engine.list_containers("acme-prod-")).unwrap();
    let view = classify("acme", "prod", &list);
    let services = vec!["web".to_string()];
    let targets = agree(&[("h".into(), &view, services.clone())], &services, to)?;
    let work = RollbackWork {
        targets,
        to: to.map(str::to_string),
    };
    Ok(run(engine, pinned, &work))
}

/// (name role, version, state) of every container of the service, sorted by name.
fn roles(engine: &MemoryEngine) -> Vec<(String, String, RunState)> {
    engine
        .snapshot()
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("acme-prod-web"))
        .map(|(n, st, v)| {
            let role = n
                .strip_prefix("acme-prod-web")
                .unwrap()
                .split('-')
                .take_while(|p| !p.chars().all(|c| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join("-");
            (
                if role.is_empty() {
                    "current".into()
                } else {
                    role
                },
                v,
                st,
            )
        })
        .collect()
}

fn running(engine: &MemoryEngine) -> (String, String) {
    let s = engine.state.lock().unwrap();
    let c = s
        .containers
        .iter()
        .find(|c| c.name == "acme-prod-web")
        .expect("a container under the stable name");
    assert_eq!(c.state, RunState::Running, "{c:?}");
    (c.id.clone(), c.labels[labels::VERSION].clone())
}

fn engine() -> Arc<MemoryEngine> {
    Arc::new(MemoryEngine::new(registry()))
}

#[test]
fn three_upgrades_then_rollbacks_walk_back_and_never_forward() {
    let e = engine();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        assert_eq!(apply(&e, v).status, HostStatus::Converged);
        e.advance(5);
    }
    let (_, v) = running(&e);
    assert_eq!(v, "2.0.0");
    let r = rollback(&e, "2.0.0", None).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(running(&e).1, "1.1.0");
    e.advance(5);
    let r = rollback(&e, "1.1.0", None).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        running(&e).1,
        "1.0.0",
        "the second rollback goes further back"
    );
    // Nothing older: refused before anything is touched, naming what --to could pick.
    let calls = e.state.lock().unwrap().calls.len();
    let err = rollback(&e, "1.0.0", None).unwrap_err();
    assert!(
        err[0]
            .to_string()
            .contains("rolled back from: 2.0.0, 1.1.0"),
        "{err:?}"
    );
    assert_eq!(
        e.state.lock().unwrap().calls.len(),
        calls,
        "no host touched"
    );
    let mut rs = roles(&e);
    rs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        rs,
        vec![
            (
                "current".to_string(),
                "1.0.0".to_string(),
                RunState::Running
            ),
            (".rolled-back".into(), "1.1.0".into(), RunState::Exited),
            (".rolled-back".into(), "2.0.0".into(), RunState::Exited),
        ]
    );
    // `--to` may still name any kept version, rolled back from or not.
    let r = rollback(&e, "1.0.0", Some("2.0.0")).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(running(&e).1, "2.0.0");
}

#[test]
fn after_to_an_older_version_a_plain_rollback_never_picks_a_newer_one() {
    let e = engine();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        apply(&e, v);
        e.advance(5);
    }
    assert!(rollback(&e, "2.0.0", Some("1.0.0")).unwrap().ok());
    assert_eq!(running(&e).1, "1.0.0");
    let err = rollback(&e, "1.0.0", None).unwrap_err();
    assert!(
        err[0].to_string().contains("nothing to roll back to"),
        "{err:?}"
    );
}

#[test]
fn a_pin_moved_back_relaunches_the_kept_container() {
    let e = engine();
    apply(&e, "1.0.0");
    let (first, _) = running(&e);
    e.advance(5);
    apply(&e, "1.1.0");
    e.advance(5);
    // `git revert` of the pin: the same spec as the kept 1.0.0 container.
    let count = |e: &MemoryEngine, what: &str| {
        e.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.starts_with(what))
            .count()
    };
    let (pulls, creates) = (count(&e, "pull"), count(&e, "create"));
    let r = apply(&e, "1.0.0");
    assert!(r.ok(), "{r:?}");
    assert!(r.actions[0].relaunched, "{r:?}");
    assert_eq!(
        running(&e),
        (first, "1.0.0".into()),
        "the very container, started again"
    );
    assert_eq!(count(&e, "pull"), pulls, "no pull");
    assert_eq!(count(&e, "create"), creates, "no new container");
}

#[test]
fn a_crash_looping_release_without_healthcheck_fails_its_gate_and_the_previous_one_serves() {
    let e = engine();
    apply(&e, "1.0.0");
    let (first, _) = running(&e);
    e.set_behaviour(&format!("{REPO}:crash"), Behaviour::CrashLoop);
    let r = apply(&e, "crash");
    assert_eq!(r.status, HostStatus::Failed, "{r:?}");
    let f = r.failure.as_ref().unwrap();
    assert!(f.restored, "{f:?}");
    assert!(f.reason.contains("restart"), "{f:?}");
    assert_eq!(running(&e), (first, "1.0.0".into()));
    let failed: Vec<_> = roles(&e)
        .into_iter()
        .filter(|(r, _, _)| r == ".failed")
        .collect();
    assert_eq!(failed.len(), 1);
}

#[test]
fn a_rename_or_start_error_puts_the_kept_container_back_as_retained() {
    for op in ["rename", "start", "set_restart_policy"] {
        let e = engine();
        apply(&e, "1.0.0");
        e.advance(5);
        apply(&e, "1.1.0");
        let kept = e
            .snapshot()
            .into_iter()
            .find(|(n, _, _)| n.contains(".prev-"))
            .unwrap()
            .0;
        let kept_id = e.id_of(&kept).unwrap();
        let (serving, _) = running(&e);
        // The kept container's own step fails (for rename: giving it the stable name).
        e.fail_next(op, &kept_id);
        if op == "start" {
            // A refused start gets a fresh container of the same spec (see below): here that
            // one cannot be started either.
            e.fail_next("start", ".new-");
        }
        let r = rollback(&e, "1.1.0", None).unwrap();
        assert_eq!(r.status, HostStatus::Failed, "{op}: {r:?}");
        assert!(r.failure.as_ref().unwrap().restored, "{op}: {r:?}");
        assert_eq!(running(&e), (serving.clone(), "1.1.0".into()), "{op}");
        let s = e.state.lock().unwrap();
        let k = s.containers.iter().find(|c| c.id == kept_id).unwrap();
        assert_eq!(k.name, kept, "{op}: back under its retained name");
        assert_eq!(k.restart_policy, "no", "{op}");
        assert!(
            !s.containers.iter().any(|c| c.name.contains(".failed-")),
            "{op}: nothing failed"
        );
    }
}

#[test]
fn a_foreign_container_on_the_name_is_a_conflict_and_rollback_touches_nothing() {
    let e = engine();
    apply(&e, "1.0.0");
    e.advance(5);
    apply(&e, "1.1.0");
    // Someone replaced the service by hand with a container fleetpin did not create.
    let (ours, _) = running(&e);
    block(e.remove(&ours)).unwrap();
    e.add_container(MemContainer::new(
        "acme-prod-web",
        "nginx:1",
        RunState::Running,
        BTreeMap::new(),
    ));
    let before = e.snapshot();
    // The pure choice still sees the kept 1.0.0; the host work refuses on the conflict.
    let r = rollback(&e, "1.1.0", None).unwrap();
    assert_eq!(r.status, HostStatus::Failed, "{r:?}");
    assert_eq!(r.actions[0].kind, fleetpin::plan::ChangeKind::Conflict);
    assert_eq!(
        e.snapshot(),
        before,
        "untouched: the retained container is still retained"
    );
}

#[test]
fn repair_finishes_or_undoes_an_interrupted_swap_and_never_marks_it_failed() {
    // A run killed at S4 (the new container has the name, never started), at S5 (running, gate
    // pending), or stopped under a daemon crash: each repaired without a `.failed-` container.
    for state in [RunState::Created, RunState::Running, RunState::Exited] {
        let e = engine();
        apply(&e, "1.0.0");
        let (old, _) = running(&e);
        let new = {
            let mut s = e.state.lock().unwrap();
            let c = s.containers.iter_mut().find(|c| c.id == old).unwrap();
            c.name = "acme-prod-web.old-0000000000001-aa".into();
            c.state = RunState::Exited;
            drop(s);
            let spec_labels = {
                let d = desired("1.1.0");
                labels::for_service(&d[0], &settings().stamp)
            };
            e.add_container(MemContainer::new(
                "acme-prod-web",
                &format!("{REPO}:1.1.0"),
                state,
                spec_labels,
            ))
        };
        let r = apply(&e, "1.1.0");
        assert!(r.ok(), "{state:?}: {r:?}");
        assert!(!r.repaired.is_empty(), "{state:?}");
        let (id, version) = running(&e);
        assert_eq!(version, "1.1.0", "{state:?}");
        if state == RunState::Running {
            assert_eq!(id, new, "judged and confirmed where it runs");
        } else {
            // Never started, or stopped under it: undone, and the plan swapped afresh.
            assert_ne!(id, new, "{state:?}");
            assert!(e.id_of("acme-prod-web").is_some());
            assert!(!e.snapshot().iter().any(|(n, _, _)| n.contains(".new-")));
        }
        let rs = roles(&e);
        assert!(
            rs.iter().all(|(r, _, _)| r != ".failed"),
            "{state:?}: {rs:?}"
        );
        assert!(
            rs.contains(&(".prev".into(), "1.0.0".into(), RunState::Exited)),
            "{state:?}: {rs:?}"
        );
    }
}

#[test]
fn repair_after_a_release_that_does_fail_its_gate_keeps_one_failed_and_restores() {
    let e = engine();
    apply(&e, "1.0.0");
    let (old, _) = running(&e);
    e.set_behaviour(&format!("{REPO}:broken"), Behaviour::Unhealthy);
    {
        let mut s = e.state.lock().unwrap();
        let c = s.containers.iter_mut().find(|c| c.id == old).unwrap();
        c.name = "acme-prod-web.old-0000000000001-aa".into();
        c.state = RunState::Exited;
    }
    let d = desired("broken");
    e.add_container(MemContainer::new(
        "acme-prod-web",
        &format!("{REPO}:broken"),
        RunState::Created,
        labels::for_service(&d[0], &settings().stamp),
    ));
    let r = apply(&e, "broken");
    assert_eq!(
        r.status,
        HostStatus::Failed,
        "the re-run fails again: {r:?}"
    );
    assert_eq!(running(&e), (old, "1.0.0".into()));
    let failed = roles(&e)
        .into_iter()
        .filter(|(r, _, _)| r == ".failed")
        .count();
    assert_eq!(failed, 1);
}

#[test]
fn a_started_new_container_left_beside_the_old_one_is_stopped_and_removed_never_failed() {
    let e = engine();
    apply(&e, "1.0.0");
    let d = desired("1.1.0");
    let id = e.add_container(MemContainer::new(
        "acme-prod-web.new-0000000000001-0",
        &format!("{REPO}:1.1.0"),
        RunState::Running,
        labels::for_service(&d[0], &settings().stamp),
    ));
    let r = apply(&e, "1.0.0");
    assert!(r.ok(), "{r:?}");
    let s = e.state.lock().unwrap();
    assert!(!s.containers.iter().any(|c| c.id == id));
    let stop = s
        .calls
        .iter()
        .position(|c| c.starts_with("stop acme-prod-web.new-"));
    let remove = s
        .calls
        .iter()
        .position(|c| c.starts_with("remove acme-prod-web.new-"));
    assert!(
        stop.is_some() && stop < remove,
        "stopped before removed: {:?}",
        s.calls
    );
}

#[test]
fn a_rollback_killed_after_the_names_moved_is_finished_by_the_rerun_not_repeated() {
    let e = engine();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        apply(&e, v);
        e.advance(5);
    }
    // Killed at S4 of `rollback`: the kept 1.1.0 took the name, 2.0.0 is `.old-rb-`.
    {
        let mut s = e.state.lock().unwrap();
        let cur = s
            .containers
            .iter()
            .position(|c| c.name == "acme-prod-web")
            .unwrap();
        s.containers[cur].name = "acme-prod-web.old-rb-0000000000009-aa".into();
        s.containers[cur].state = RunState::Exited;
        let k = s
            .containers
            .iter()
            .position(|c| c.name.contains(".prev-") && c.labels[labels::VERSION] == "1.1.0")
            .unwrap();
        s.containers[k].name = "acme-prod-web".into();
    }
    let r = rollback(&e, "2.0.0", None).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(running(&e).1, "1.1.0", "one step back in all, not two");
    let rs = roles(&e);
    assert!(
        rs.contains(&(".rolled-back".into(), "2.0.0".into(), RunState::Exited)),
        "{rs:?}"
    );
    assert!(
        rs.contains(&(".prev".into(), "1.0.0".into(), RunState::Exited)),
        "{rs:?}"
    );
}

#[test]
fn kept_containers_are_bounded_by_retain_rolled_back_ones_going_first() {
    let e = engine();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        apply(&e, v);
        e.advance(5);
    }
    assert!(rollback(&e, "2.0.0", None).unwrap().ok());
    e.advance(5);
    assert!(rollback(&e, "1.1.0", None).unwrap().ok());
    e.advance(5);
    // retain 3: 1.1.0 and 2.0.0 rolled back from; a new release steps 1.0.0 aside as .prev-.
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    e.state
        .lock()
        .unwrap()
        .registry
        .push(format!("{REPO}:3.0.0"));
    let r = run_with(&e, "3.0.0", &work, &retaining(2));
    assert!(r.ok(), "{r:?}");
    let rs = roles(&e);
    assert!(
        rs.contains(&(".prev".into(), "1.0.0".into(), RunState::Exited)),
        "{rs:?}"
    );
    assert_eq!(rs.len(), 3, "one running, two kept: {rs:?}");
    assert!(rollback(&e, "3.0.0", None).unwrap().ok());
    assert_eq!(running(&e).1, "1.0.0", "back to what ran before 3.0.0");
}

#[test]
fn a_digest_pin_written_in_full_matches_what_docker_reports_in_short() {
    // The manifest says `docker.io/library/nginx`; Docker reports `nginx@sha256:…`.
    const D: &str = "sha256:4d0bc6182dc5ee4ce965969bfdd025bf1491b12cc22a3c9edb5597ff23dc551b";
    let text = format!(
        "platform: acme\nservices:\n  web: {{image: docker.io/library/nginx}}\nenvironments:\n  prod:\n    hosts:\n      h: {{endpoint: \"unix:///x.sock\"}}\n    versions: {{web: \"1.27@{D}\"}}\n"
    );
    let m = fleetpin::manifest::parse_str(&text).unwrap();
    let d = resolve_host(&m, "prod", "h", &|_: &str| Ok(String::new())).unwrap();
    let reference = format!("docker.io/library/nginx@{D}");
    let e = Arc::new(MemoryEngine::new(vec![reference.clone()]));
    e.state
        .lock()
        .unwrap()
        .digests
        .insert(reference, vec![format!("nginx@{D}")]);
    let target = Target {
        name: "h".into(),
        endpoint: "memory://".into(),
        engine: Ok(e.clone()),
        desired: d,
        changes: true,
    };
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    let r = block(runner::one_host(
        &*e,
        &target,
        &settings(),
        &work,
        &|_: &str| {},
    ));
    assert_eq!(r.status, HostStatus::Converged, "{r:?}");
}

/// Watches who answers on the service's alias in the memory engine's default network.
fn watch_alias(e: &MemoryEngine) {
    let mut s = e.state.lock().unwrap();
    s.watch = Some(("acme-prod-default".into(), "web".into()));
    s.answering_log.clear();
    s.calls.clear();
}

fn answered(e: &MemoryEngine) -> Vec<Vec<String>> {
    e.state.lock().unwrap().answering_log.clone()
}

#[test]
fn start_first_never_leaves_the_alias_empty_and_never_lets_an_unjudged_release_answer() {
    // No published port, no writable mount: start-first by default.
    let e = engine();
    apply(&e, "1.0.0");
    watch_alias(&e);
    let r = apply(&e, "1.1.0");
    assert!(r.ok(), "{r:?}");
    let log = answered(&e);
    assert!(
        log.iter().all(|a| !a.is_empty()),
        "someone always answers: {log:?}"
    );
    assert!(
        log.iter().any(|a| a.len() == 2),
        "both answer while the old one drains: {log:?}"
    );
    assert_eq!(log.last().unwrap(), &vec!["1.1.0".to_string()]);
    // The new one answers only once judged: before its first appearance on the alias, it was
    // started (and watched) without it.
    let calls = e.state.lock().unwrap().calls.clone();
    let started = calls
        .iter()
        .position(|c| c.starts_with("start acme-prod-web.new-"))
        .unwrap();
    let aliased = calls
        .iter()
        .position(|c| c.starts_with("connect acme-prod-web.new-") && c.ends_with(" web"))
        .unwrap();
    let stopped_old = calls
        .iter()
        .position(|c| c.starts_with("stop acme-prod-web"))
        .unwrap();
    assert!(started < aliased && aliased < stopped_old, "{calls:?}");

    // A broken release: never on the alias, the old one never interrupted.
    e.set_behaviour(&format!("{REPO}:broken"), Behaviour::Unhealthy);
    watch_alias(&e);
    let r = apply(&e, "broken");
    assert_eq!(r.status, HostStatus::Failed);
    assert!(r.failure.as_ref().unwrap().restored);
    let log = answered(&e);
    assert!(
        log.iter().all(|a| a == &vec!["1.1.0".to_string()]),
        "{log:?}"
    );
    assert!(
        !e.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "stop acme-prod-web"),
        "never stopped"
    );
    let failed = roles(&e)
        .into_iter()
        .filter(|(r, _, _)| r == ".failed")
        .count();
    assert_eq!(failed, 1);
}

#[test]
fn start_first_rollback_relaunches_the_kept_container_beside_and_keeps_one_answering() {
    let e = engine();
    apply(&e, "1.0.0");
    let (first, _) = running(&e);
    e.advance(5);
    apply(&e, "1.1.0");
    e.advance(5);
    watch_alias(&e);
    let r = rollback(&e, "1.1.0", None).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        running(&e),
        (first, "1.0.0".into()),
        "the kept container, relaunched"
    );
    let log = answered(&e);
    assert!(log.iter().all(|a| !a.is_empty()), "{log:?}");
    assert_eq!(log.last().unwrap(), &vec!["1.0.0".to_string()]);
}

#[test]
fn a_start_first_swap_killed_at_each_step_is_repaired_to_exactly_one_serving_container() {
    // Each state a kill can leave, built by hand from a finished 1.0.0 -> 1.1.0 swap's parts.
    let d = desired("1.1.0");
    let new_labels = labels::for_service(&d[0], &settings().stamp);
    let new_on = |alias: bool| {
        BTreeMap::from([(
            "acme-prod-default".to_string(),
            if alias {
                vec!["web".to_string()]
            } else {
                vec![]
            },
        )])
    };
    // (old state, new name, new state, new has alias, expected version serving)
    let cases = [
        (
            "created",
            RunState::Running,
            ".new-1-x",
            RunState::Created,
            false,
            "1.1.0",
        ),
        (
            "started",
            RunState::Running,
            ".new-1-x",
            RunState::Running,
            false,
            "1.1.0",
        ),
        (
            "aliased",
            RunState::Running,
            ".new-1-x",
            RunState::Running,
            true,
            "1.1.0",
        ),
        (
            "stopped",
            RunState::Exited,
            ".new-1-x",
            RunState::Running,
            true,
            "1.1.0",
        ),
    ];
    for (step, old_state, suffix, new_state, alias, serving) in cases {
        let e = engine();
        apply(&e, "1.0.0");
        let (old, _) = running(&e);
        {
            let mut s = e.state.lock().unwrap();
            let c = s.containers.iter_mut().find(|c| c.id == old).unwrap();
            c.state = old_state;
            c.networks = new_on(true);
        }
        let mut c = MemContainer::new(
            &format!("acme-prod-web{suffix}"),
            &format!("{REPO}:1.1.0"),
            new_state,
            new_labels.clone(),
        );
        c.networks = new_on(alias);
        let new = e.add_container(c);
        let r = apply(&e, "1.1.0");
        assert!(r.ok(), "{step}: {r:?}");
        let (id, version) = running(&e);
        assert_eq!(version, serving, "{step}");
        let rs = roles(&e);
        assert_eq!(
            rs.iter()
                .filter(|(_, _, st)| *st == RunState::Running)
                .count(),
            1,
            "{step}: exactly one serves: {rs:?}"
        );
        assert!(
            !rs.iter()
                .any(|(r, _, _)| r == ".failed" || r.starts_with(".new") || r.starts_with(".old")),
            "{step}: {rs:?}"
        );
        if step == "stopped" {
            assert_eq!(
                id, new,
                "{step}: the new one was serving alone: it is finished, not replaced"
            );
        }
        let s = e.state.lock().unwrap();
        if step == "started" || step == "aliased" {
            // It may have answered: stopped gracefully before it was removed, never failed.
            let stop = s
                .calls
                .iter()
                .position(|c| c.starts_with("stop acme-prod-web.new-"));
            let rm = s
                .calls
                .iter()
                .position(|c| c.starts_with("remove acme-prod-web.new-"));
            assert!(stop.is_some() && stop < rm, "{step}: {:?}", s.calls);
        }
    }
}

/// Hosts h1..hN on engines of their own, the last one unable to pull 1.1.0; each runs 1.0.0.
fn fleet_of(n: usize) -> Vec<Arc<MemoryEngine>> {
    (0..n)
        .map(|i| {
            let e = engine();
            apply(&e, "1.0.0");
            if i == n - 1 {
                e.state
                    .lock()
                    .unwrap()
                    .registry
                    .retain(|r| !r.ends_with(":1.1.0"));
            }
            e
        })
        .collect()
}

fn rollout(
    engines: &[Arc<MemoryEngine>],
    canary: u32,
    on_failure: fleetpin::manifest::OnFailure,
) -> Vec<HostReport> {
    let targets: Vec<Target<MemoryEngine>> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| Target {
            name: format!("h{}", i + 1),
            endpoint: "memory://".into(),
            engine: Ok(e.clone()),
            desired: desired("1.1.0"),
            changes: true,
        })
        .collect();
    let mut s = settings();
    s.parallel = 1;
    s.rollout = fleetpin::manifest::Rollout {
        canary,
        on_failure,
        span: Default::default(),
    };
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    block(fleetpin::host::rollout::run(
        targets,
        &s,
        &work,
        &|_: &str| Box::new(|_: &str| {}),
    ))
}

#[test]
fn a_rollout_that_fails_on_its_last_host_puts_every_changed_host_back_with_on_failure_rollback() {
    let engines = fleet_of(3);
    let before: Vec<String> = engines.iter().map(|e| running(e).0).collect();
    let reports = rollout(&engines, 1, fleetpin::manifest::OnFailure::Rollback);
    let statuses: Vec<HostStatus> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            HostStatus::RolledBack,
            HostStatus::RolledBack,
            HostStatus::Failed
        ],
        "{reports:#?}"
    );
    for (e, id) in engines.iter().zip(&before) {
        assert_eq!(
            running(e),
            (id.clone(), "1.0.0".into()),
            "the very container that served"
        );
        let rs = roles(e);
        assert!(
            rs.iter().all(|(r, v, _)| r != ".prev" || v != "1.1.0"),
            "1.1.0 is rolled back from, never a default target: {rs:?}"
        );
    }
}

#[test]
fn a_rollout_that_fails_stops_there_with_on_failure_stop_and_says_who_is_untouched() {
    let mut engines = fleet_of(3);
    // A fourth host after the failing one: untouched.
    let extra = engine();
    apply(&extra, "1.0.0");
    engines.push(extra);
    let reports = rollout(&engines, 1, fleetpin::manifest::OnFailure::Stop);
    let statuses: Vec<HostStatus> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            HostStatus::Converged,
            HostStatus::Converged,
            HostStatus::Failed,
            HostStatus::Skipped
        ]
    );
    assert_eq!(running(&engines[0]).1, "1.1.0");
    assert_eq!(running(&engines[2]).1, "1.0.0");
    assert_eq!(running(&engines[3]).1, "1.0.0");
}

#[test]
fn a_failed_canary_leaves_every_other_host_untouched() {
    // The canary is the first host with changes; here it is the one that cannot pull.
    let engines: Vec<Arc<MemoryEngine>> = fleet_of(1)
        .into_iter()
        .chain([engine(), engine()])
        .collect();
    for e in &engines[1..] {
        apply(e, "1.0.0");
    }
    let reports = rollout(&engines, 1, fleetpin::manifest::OnFailure::Stop);
    let statuses: Vec<HostStatus> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [HostStatus::Failed, HostStatus::Skipped, HostStatus::Skipped]
    );
    assert!(reports[1].error.as_deref().unwrap().contains("canary"));
    for e in &engines {
        assert_eq!(running(e).1, "1.0.0");
    }
}

#[test]
fn a_start_first_rollback_killed_at_any_step_is_finished_by_the_rerun_one_step_back() {
    // 1.0.0 -> 1.1.0 -> 2.0.0, then `rollback` (to 1.1.0, start-first) killed at each step.
    for step in ["started", "aliased", "stopped", "renamed-old"] {
        let e = engine();
        for v in ["1.0.0", "1.1.0", "2.0.0"] {
            apply(&e, v);
            e.advance(5);
        }
        let (serving, _) = running(&e);
        let kept = e
            .snapshot()
            .into_iter()
            .find(|(n, _, v)| n.contains(".prev-") && v == "1.1.0")
            .unwrap()
            .0;
        let kept_id = e.id_of(&kept).unwrap();
        {
            // The state the killed rollback left, made by hand.
            let mut s = e.state.lock().unwrap();
            let k = s.containers.iter_mut().find(|c| c.id == kept_id).unwrap();
            k.name = "acme-prod-web.new-k-0000000000009-bb".into();
            k.state = RunState::Running;
            k.networks = BTreeMap::from([(
                "acme-prod-default".to_string(),
                if step == "started" {
                    vec![]
                } else {
                    vec!["web".to_string()]
                },
            )]);
            let cur = s.containers.iter_mut().find(|c| c.id == serving).unwrap();
            match step {
                "stopped" => cur.state = RunState::Exited,
                "renamed-old" => {
                    cur.state = RunState::Exited;
                    cur.name = "acme-prod-web.old-rb-0000000000009-aa".into();
                }
                _ => {}
            }
        }
        let r = rollback(&e, "2.0.0", None).unwrap_or_else(|p| panic!("{step}: {p:?}"));
        assert!(r.ok(), "{step}: {r:?}");
        assert_eq!(
            running(&e),
            (kept_id.clone(), "1.1.0".into()),
            "{step}: one step back in all"
        );
        let rs = roles(&e);
        assert!(
            rs.contains(&(".rolled-back".into(), "2.0.0".into(), RunState::Exited)),
            "{step}: the version stepped away from is rolled back from: {rs:?}"
        );
        assert!(
            rs.contains(&(".prev".into(), "1.0.0".into(), RunState::Exited)),
            "{step}: {rs:?}"
        );
        assert!(
            !rs.iter()
                .any(|(r, _, _)| r.starts_with(".new") || r.starts_with(".old") || r == ".failed"),
            "{step}: {rs:?}"
        );
    }
}

fn apply_retaining(engine: &Arc<MemoryEngine>, version: &str, retain: u32) -> HostReport {
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    run_with(engine, version, &work, &retaining(retain))
}

fn images(e: &MemoryEngine) -> Vec<String> {
    let mut v = e.state.lock().unwrap().images.clone();
    v.sort();
    v
}

#[test]
fn an_image_goes_with_the_last_container_that_used_it_and_a_tag_of_the_operator_stays() {
    let e = engine();
    for v in ["1.0.0", "1.1.0"] {
        assert!(apply_retaining(&e, v, 1).ok());
        e.advance(5);
    }
    // The operator tagged the retained release by hand.
    e.tag(&format!("{REPO}:1.1.0"), &format!("{REPO}:golden"));
    let r = apply_retaining(&e, "2.0.0", 1);
    assert!(r.ok(), "{r:?}");
    // 1.0.0's container left retention: its image went with it; the retained 1.1.0 stays.
    assert_eq!(r.images_removed.len(), 1, "{r:?}");
    assert_eq!(r.images_removed[0].reference, format!("{REPO}:1.0.0"));
    assert!(r.images_removed[0].deleted);
    assert_eq!(
        images(&e),
        [
            format!("{REPO}:1.1.0"),
            format!("{REPO}:2.0.0"),
            format!("{REPO}:golden")
        ]
    );
    e.advance(5);
    // 1.0.0 again (pulled again), and 1.1.0's container leaves retention: only its tag goes,
    // the operator's tag keeps the image.
    let r = apply_retaining(&e, "1.0.0", 1);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.images_removed.len(), 1, "{r:?}");
    assert_eq!(r.images_removed[0].reference, format!("{REPO}:1.1.0"));
    assert!(!r.images_removed[0].deleted, "only untagged: {r:?}");
    assert_eq!(
        images(&e),
        [
            format!("{REPO}:1.0.0"),
            format!("{REPO}:2.0.0"),
            format!("{REPO}:golden")
        ]
    );
    assert_eq!(
        e.image_id(&format!("{REPO}:golden")),
        e.image_id(&format!("{REPO}:1.1.0"))
    );
}

#[test]
fn an_image_one_service_stops_using_is_kept_for_another_service_of_the_same_run() {
    let desired = |web: &str, worker: &str| {
        let m = fleetpin::manifest::parse_str(&format!(
            "platform: acme\nretain: 1\nservices:\n  web: {{image: {REPO}, update: {{drain: 0s}}}}\n  worker: {{image: {REPO}, depends_on: [web], update: {{drain: 0s}}}}\nenvironments:\n  prod:\n    hosts:\n      h: {{endpoint: \"unix:///x.sock\"}}\n    versions: {{web: \"{web}\", worker: \"{worker}\"}}\n"
        ))
        .unwrap();
        resolve_host(&m, "prod", "h", &|_: &str| Ok(String::new())).unwrap()
    };
    let e = engine();
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    let one_kept = retaining(1);
    let go = |web: &str, worker: &str| {
        let target = Target {
            name: "h".into(),
            endpoint: "memory://".into(),
            engine: Ok(e.clone()),
            desired: desired(web, worker),
            changes: true,
        };
        block(runner::one_host(
            &*e,
            &target,
            &one_kept,
            &work,
            &|_: &str| {},
        ))
    };
    for (web, worker) in [("1.0.0", "2.0.0"), ("1.1.0", "2.0.0")] {
        assert!(go(web, worker).ok());
        e.advance(5);
    }
    // web steps 1.1.0 aside and lets its kept 1.0.0 go; worker (after web) moves to 1.0.0 in the
    // same run, from the image on the host: it is neither removed nor pulled again.
    let pulls = |e: &MemoryEngine| {
        e.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.starts_with("pull"))
            .count()
    };
    let before = pulls(&e);
    let r = go("2.0.0", "1.0.0");
    assert!(r.ok(), "{r:?}");
    assert_eq!(pulls(&e), before, "nothing pulled: {r:?}");
    // Worker's 2.0.0 stepped aside (kept), web runs 2.0.0: nothing is unused.
    assert!(r.images_removed.is_empty(), "{r:?}");
    assert_eq!(
        images(&e),
        [
            format!("{REPO}:1.0.0"),
            format!("{REPO}:1.1.0"),
            format!("{REPO}:2.0.0")
        ]
    );
}

#[test]
fn an_image_that_left_the_host_before_the_create_is_pulled_again() {
    let e = engine();
    assert!(apply(&e, "1.0.0").ok());
    e.advance(5);
    e.fail_next("vanish", &format!("{REPO}:1.1.0"));
    let r = apply(&e, "1.1.0");
    assert!(r.ok(), "{r:?}");
    assert_eq!(running(&e).1, "1.1.0");
    let calls = e.state.lock().unwrap().calls.clone();
    let pulls: Vec<&String> = calls.iter().filter(|c| c.starts_with("pull")).collect();
    assert_eq!(
        pulls,
        [
            &format!("pull {REPO}:1.0.0"),
            &format!("pull {REPO}:1.1.0"),
            &format!("pull {REPO}:1.1.0")
        ]
    );
}

/// `run_with` for a manifest with `extra` in the service (`, update: {order: stop-first}`, …).
fn run_extra<W: HostWork<MemoryEngine>>(
    engine: &Arc<MemoryEngine>,
    version: &str,
    extra: &str,
    work: &W,
    settings: &Settings,
) -> HostReport {
    let m = fleetpin::manifest::parse_str(&manifest(version, extra)).unwrap();
    let target = Target {
        name: "h".into(),
        endpoint: "memory://".into(),
        engine: Ok(engine.clone()),
        desired: resolve_host(&m, "prod", "h", &|_: &str| Ok(String::new())).unwrap(),
        changes: true,
    };
    block(runner::one_host(
        &**engine,
        &target,
        settings,
        work,
        &|_: &str| {},
    ))
}

/// Docker's answer to a start of a container whose containerd task outlived a daemon crash.
fn task_exists(id: &str) -> String {
    format!("task {id}: already exists")
}

/// (name, id) of the containers of web that are kept for rollback (`.prev-`, `.rolled-back-`).
fn kept(e: &MemoryEngine) -> Vec<(String, String)> {
    let s = e.state.lock().unwrap();
    s.containers
        .iter()
        .filter(|c| c.name.contains(".prev-") || c.name.contains(".rolled-back-"))
        .map(|c| (c.name.clone(), c.id.clone()))
        .collect()
}

/// Whether `name` is `acme-prod-web.broken-<13-digit millis>-<the id's first 8 characters>`.
fn is_broken_name(name: &str, id: &str) -> bool {
    name.strip_prefix("acme-prod-web.broken-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(millis, short)| {
            millis.len() == 13 && millis.chars().all(|c| c.is_ascii_digit()) && short == &id[..8]
        })
}

#[test]
fn a_kept_container_the_engine_refuses_to_start_is_created_afresh_and_removed() {
    // Stop-first (the field case: a published port) and start-first alike.
    for extra in [
        ", update: {drain: 0s, order: stop-first}",
        ", update: {drain: 0s}",
    ] {
        let e = engine();
        let work = ApplyWork {
            saved: None,
            select: Selection::default(),
            prune: false,
        };
        let settings = retaining(2);
        for v in ["1.0.0", "2.0.0", "1.1.0"] {
            assert!(run_extra(&e, v, extra, &work, &settings).ok(), "{extra}");
            e.advance(5);
        }
        let stale = e
            .snapshot()
            .into_iter()
            .find(|(n, _, v)| n.contains(".prev-") && v == "2.0.0")
            .unwrap()
            .0;
        let stale_id = e.id_of(&stale).unwrap();
        // Its containerd task outlived a daemon crash: every start is refused.
        e.refuse("start", &stale_id, &task_exists(&stale_id));

        let r = run_extra(&e, "2.0.0", extra, &work, &settings);
        assert!(r.ok(), "{extra}: {r:?}");
        let (serving, version) = running(&e);
        assert_eq!(version, "2.0.0", "{extra}");
        assert_ne!(serving, stale_id, "{extra}: a fresh container serves");
        let a = &r.actions[0];
        assert!(!a.relaunched, "{extra}: {a:?}");
        let u = a.unstartable.as_ref().expect("the report says so");
        assert_eq!((u.id.as_str(), u.container.as_str()), (&*stale_id, &*stale));
        assert!(u.removed && u.same_spec, "{extra}: {u:?}");
        let said = a.detail.as_deref().unwrap_or_default();
        assert!(
            said.contains(&format!("retained container {stale} could not be started"))
                && said.contains("already exists")
                && said.contains("created afresh; the old one removed"),
            "{extra}: {said}"
        );
        assert!(
            e.id_of(&stale).is_none(),
            "{extra}: the refused one is gone"
        );
        let k = kept(&e);
        assert!(k.len() <= 2, "{extra}: within retain: {k:?}");
        assert!(k.iter().all(|(_, id)| *id != stale_id), "{extra}: {k:?}");
        // The host is at its pin: nothing left to do.
        let again = run_extra(&e, "2.0.0", extra, &work, &settings);
        assert_eq!(again.status, HostStatus::Unchanged, "{extra}: {again:?}");
    }
}

#[test]
fn a_refused_kept_container_the_engine_will_not_remove_either_is_renamed_broken_and_never_chosen() {
    let e = engine();
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    let settings = retaining(2);
    let extra = ", update: {drain: 0s, order: stop-first}";
    for v in ["1.0.0", "2.0.0", "1.1.0"] {
        assert!(run_extra(&e, v, extra, &work, &settings).ok());
        e.advance(5);
    }
    let stale = e
        .snapshot()
        .into_iter()
        .find(|(n, _, v)| n.contains(".prev-") && v == "2.0.0")
        .unwrap()
        .0;
    let stale_id = e.id_of(&stale).unwrap();
    e.refuse("start", &stale_id, &task_exists(&stale_id));
    e.refuse(
        "remove",
        &stale_id,
        "removal of container is already in progress",
    );

    let r = run_extra(&e, "2.0.0", extra, &work, &settings);
    assert!(r.ok(), "{r:?}");
    let (fresh, _) = running(&e);
    assert_ne!(fresh, stale_id);
    let u = r.actions[0].unstartable.clone().unwrap();
    assert!(!u.removed, "{u:?}");
    let left = u.left_as.clone().unwrap();
    assert!(is_broken_name(&left, &stale_id), "{left}");
    assert!(
        u.describe()
            .contains(&format!("the old one kept as {left}")),
        "{}",
        u.describe()
    );
    let now = e.state.lock().unwrap().containers.clone();
    let b = now.iter().find(|c| c.id == stale_id).unwrap();
    assert_eq!(b.name, left);
    assert_eq!(b.restart_policy, "no", "a daemon restart must not start it");
    // Outside retain: two kept besides it, none of them the broken one.
    e.advance(5);
    let k = kept(&e);
    assert!(
        k.len() <= 2 && k.iter().all(|(_, id)| *id != stale_id),
        "{k:?}"
    );

    // Rollback walks back to 1.1.0, never to the broken 2.0.0; `--to 2.0.0` names the fresh one.
    let back = rollback(&e, "2.0.0", None).unwrap();
    assert!(back.ok(), "{back:?}");
    assert_eq!(running(&e).1, "1.1.0");
    e.advance(5);
    let to = rollback(&e, "1.1.0", Some("2.0.0")).unwrap();
    assert!(to.ok(), "{to:?}");
    assert_eq!(running(&e), (fresh.clone(), "2.0.0".into()));
    assert!(to.actions[0].unstartable.is_none(), "{to:?}");
    assert_eq!(
        e.state
            .lock()
            .unwrap()
            .containers
            .iter()
            .find(|c| c.id == stale_id)
            .map(|c| c.name.clone()),
        Some(left),
        "never started, never renamed back"
    );
    // An apply never relaunches it either, and once the engine allows, a swap removes it.
    e.allow("remove");
    e.advance(5);
    let r = run_extra(&e, "1.0.0", extra, &work, &settings);
    assert!(r.ok(), "{r:?}");
    assert!(r.actions[0].unstartable.is_none(), "{r:?}");
    assert!(
        !e.state
            .lock()
            .unwrap()
            .containers
            .iter()
            .any(|c| c.id == stale_id),
        "removed once the engine allows it"
    );
}

#[test]
fn a_rollback_to_a_kept_container_the_engine_refuses_to_start_creates_that_version_afresh() {
    let e = engine();
    assert!(apply(&e, "1.0.0").ok());
    e.advance(5);
    assert!(apply(&e, "1.1.0").ok());
    e.advance(5);
    let stale = kept(&e).pop().unwrap();
    e.refuse("start", &stale.1, &task_exists(&stale.1));
    let r = rollback(&e, "1.1.0", None).unwrap();
    assert!(r.ok(), "{r:?}");
    let (serving, version) = running(&e);
    assert_eq!(version, "1.0.0");
    assert_ne!(serving, stale.1);
    let u = r.actions[0].unstartable.as_ref().unwrap();
    assert!(u.removed && u.same_spec, "{u:?}");
    assert!(e.id_of(&stale.0).is_none());
    // The version rolled back from is kept as such: a second rollback has nowhere to go.
    let rs = roles(&e);
    assert!(
        rs.contains(&(".rolled-back".into(), "1.1.0".into(), RunState::Exited)),
        "{rs:?}"
    );
}

#[test]
fn a_fresh_container_that_fails_its_gate_leaves_the_refused_one_kept_and_the_old_one_serving() {
    let e = engine();
    let work = ApplyWork {
        saved: None,
        select: Selection::default(),
        prune: false,
    };
    let extra = ", update: {drain: 0s, order: stop-first}";
    for v in ["2.0.0", "1.1.0"] {
        assert!(run_extra(&e, v, extra, &work, &settings()).ok());
        e.advance(5);
    }
    let (serving, _) = running(&e);
    let stale = kept(&e).pop().unwrap();
    e.refuse("start", &stale.1, &task_exists(&stale.1));
    e.set_behaviour(&format!("{REPO}:2.0.0"), Behaviour::Unhealthy);
    let r = run_extra(&e, "2.0.0", extra, &work, &settings());
    assert_eq!(r.status, HostStatus::Failed, "{r:?}");
    let f = r.failure.as_ref().unwrap();
    assert!(f.restored, "{f:?}");
    assert!(
        f.reason.contains("could not be started") && f.reason.contains("created afresh"),
        "the failure says the kept one was refused first: {f:?}"
    );
    assert_eq!(running(&e), (serving, "1.1.0".into()));
    // The refused one is still kept (never removed before a fresh one passed its gate); the
    // fresh one is the failed one.
    assert_eq!(e.id_of(&stale.0), Some(stale.1.clone()));
    assert_eq!(
        roles(&e).iter().filter(|(r, _, _)| r == ".failed").count(),
        1
    );
}

/// The serving container of web, as the engine holds it.
fn current(engine: &MemoryEngine) -> MemContainer {
    let s = engine.state.lock().unwrap();
    s.containers
        .iter()
        .find(|c| c.name == "acme-prod-web")
        .cloned()
        .expect("a container under the stable name")
}

#[test]
fn a_service_stopped_under_an_engine_crash_is_created_afresh_never_started_in_place() {
    let e = engine();
    apply(&e, "1.0.0");
    let (before, _) = running(&e);
    e.advance(5);
    e.crash();
    assert_eq!(current(&e).state, RunState::Exited);
    let r = apply(&e, "1.0.0");
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.actions.len(), 1, "{r:?}");
    assert_eq!(r.actions[0].kind, fleetpin::plan::ChangeKind::Restart);
    let (now, version) = running(&e);
    assert_ne!(
        now, before,
        "a fresh container serves, not the crashed one again"
    );
    assert_eq!(version, "1.0.0");
    assert!(!current(&e).crashed);
    // The crashed one is kept stopped, and never relaunched; the host is converged.
    let again = apply(&e, "1.0.0");
    assert!(again.ok() && again.actions.is_empty(), "{again:?}");
}

#[test]
fn a_service_the_engine_started_again_in_place_without_its_network_is_replaced() {
    let e = engine();
    apply(&e, "1.0.0");
    let (before, _) = running(&e);
    // `restart: always`: the engine starts it again after the crash by itself, running and
    // healthy, yet its network does not list it.
    for c in e.state.lock().unwrap().containers.iter_mut() {
        if c.name == "acme-prod-web" {
            c.restart_policy = "always".into();
        }
    }
    e.advance(5);
    e.crash();
    assert_eq!(current(&e).state, RunState::Running);
    let r = apply(&e, "1.0.0");
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.actions.len(),
        1,
        "the host is not taken as converged: {r:?}"
    );
    let (now, _) = running(&e);
    assert_ne!(now, before, "a fresh container serves");
    assert!(!current(&e).crashed);
    let again = apply(&e, "1.0.0");
    assert!(again.ok() && again.actions.is_empty(), "{again:?}");
}
