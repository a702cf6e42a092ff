//! The safety rules of contract section 4, on the private fleet (real dockerds, a real registry):
//! rollback walks back, a crash-looping release without HEALTHCHECK is refused, interrupted is not
//! failed, a pin moved back relaunches the retained container, the lock is renewed and judged by
//! the engine's clock, a slow graceful stop is waited out, and rollback refuses before touching
//! anything. Each test owns its platform name and ports (186xx).

mod support;

use std::time::Duration;
use support::{Scenario, spawn_paused, spawn_paused_with};

fn roles(s: &Scenario, host: &str) -> Vec<(String, String, String)> {
    let stable = format!("{}-test-web", s.platform);
    s.containers(host)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with(&stable))
        .map(|(n, st, v)| {
            let role = n[stable.len()..]
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

fn id_of(s: &Scenario, host: &str, name: &str) -> String {
    s.inspect(host, name).id.unwrap()
}

#[test]
fn rollback_walks_back_through_three_releases_and_never_forward() {
    let (_, s) = fleet_scenario!("walkback");
    let stable = format!("{}-test-web", s.platform);
    let mut ids = Vec::new();
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        s.deploy(&["h1"], 18601, v);
        ids.push(id_of(&s, "h1", &stable));
    }
    let first = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(s.version("h1", 18601).as_deref(), Some("1.1.0"));
    assert_eq!(
        id_of(&s, "h1", &stable),
        ids[1],
        "the retained 1.1.0 container"
    );
    assert_eq!(s.head_subject(), "rollback test: web 2.0.0 -> 1.1.0");

    let second = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        s.version("h1", 18601).as_deref(),
        Some("1.0.0"),
        "the second rollback goes further back, never forward: {second:?}"
    );
    assert_eq!(id_of(&s, "h1", &stable), ids[0]);
    assert_eq!(s.head_subject(), "rollback test: web 1.1.0 -> 1.0.0");
    let mut rs = roles(&s, "h1");
    rs.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        rs,
        vec![
            ("current".into(), "1.0.0".into(), "running".into()),
            (".rolled-back".into(), "1.1.0".into(), "exited".into()),
            (".rolled-back".into(), "2.0.0".into(), "exited".into()),
        ]
    );

    // Nothing older is retained: refused before anything is touched, naming what --to can pick.
    let third = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(third.code, 1, "{third:?}");
    assert!(
        third.stderr.contains("nothing to roll back to"),
        "{third:?}"
    );
    assert!(third.stderr.contains("--to"), "{third:?}");
    assert_eq!(id_of(&s, "h1", &stable), ids[0]);

    // `--to` may still name any retained version.
    let to = s.run(&["rollback", "test", "--to", "2.0.0", "--yes"]);
    assert_eq!(to.code, 0, "{to:?}");
    assert_eq!(s.version("h1", 18601).as_deref(), Some("2.0.0"));
    assert_eq!(id_of(&s, "h1", &stable), ids[2]);
}

#[test]
fn a_crash_looping_release_without_healthcheck_fails_its_gate() {
    let (_, s) = fleet_scenario!("crashloop");
    // No healthcheck at all; 1.1.0's process dies after 4 s (and the engine restarts it).
    let extra = "healthcheck: {test: [\"NONE\"]}\nupdate: {monitor: 8s}\ncommand: [\"sh\", \"-c\", \"[ \\\"$APP_VERSION\\\" = 1.1.0 ] && { httpd -p 8080 -h /www; sleep 4; exit 3; }; exec /entrypoint.sh\"]";
    s.write(&s.manifest(&["h2"], &[("web", 18602, extra)], &[("web", "1.0.0")]));
    s.apply_ok("test");
    let stable = format!("{}-test-web", s.platform);
    let good = id_of(&s, "h2", &stable);

    s.write(&s.manifest(&["h2"], &[("web", 18602, extra)], &[("web", "1.1.0")]));
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(
        out.code, 1,
        "the release exits inside the monitor window: {out:?}"
    );
    assert!(
        out.stdout.contains("exited") || out.stdout.contains("restart"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("the previous version runs again"),
        "{out:?}"
    );
    assert_eq!(
        id_of(&s, "h2", &stable),
        good,
        "the good container serves again"
    );
    assert_eq!(s.version("h2", 18602).as_deref(), Some("1.0.0"));
    let policy = s
        .inspect("h2", &stable)
        .host_config
        .unwrap()
        .restart_policy
        .unwrap()
        .name
        .unwrap()
        .to_string();
    assert_eq!(
        policy, "unless-stopped",
        "the restored one keeps its own policy"
    );
    let rs = roles(&s, "h2");
    assert_eq!(
        rs.iter()
            .filter(|(r, v, _)| r == ".failed" && v == "1.1.0")
            .count(),
        1,
        "{rs:?}"
    );
}

#[test]
fn killed_during_or_just_before_the_gate_of_a_healthy_release_nothing_is_marked_failed() {
    let (_, s) = fleet_scenario!("interrupted");
    let stable = format!("{}-test-web", s.platform);
    s.deploy(&["h3"], 18603, "1.0.0");
    for (to, step) in [
        ("1.1.0", "started"),
        ("2.0.0", "renamed-new"),
        ("1.2.0", "started"),
    ] {
        s.write_web(&["h3"], 18603, to);
        let (mut child, _err) = spawn_paused(&s, &["apply", "test", "--yes"], step, 600);
        child.kill().unwrap();
        child.wait().unwrap();
        let rerun = s.run(&["apply", "test", "--yes"]);
        assert_eq!(
            rerun.code, 0,
            "killed at {step} on the way to {to}: {rerun:?}"
        );
        assert!(rerun.stdout.contains("repaired"), "{rerun:?}");
        assert_eq!(s.version("h3", 18603).as_deref(), Some(to));
        let rs = roles(&s, "h3");
        assert!(
            !rs.iter().any(|(r, _, _)| r == ".failed"),
            "an interrupted release is not a failed one ({step} -> {to}): {rs:?}"
        );
        assert!(
            !rs.iter().any(|(r, _, _)| r == ".old" || r == ".new"),
            "{rs:?}"
        );
    }
    // retain: 2 — the two releases before 1.2.0, stopped, restart policy `no`.
    let mut rs = roles(&s, "h3");
    rs.sort();
    assert_eq!(
        rs,
        vec![
            (".prev".into(), "1.1.0".into(), "exited".into()),
            (".prev".into(), "2.0.0".into(), "exited".into()),
            ("current".into(), "1.2.0".into(), "running".into()),
        ]
    );
    for (name, _, _) in s.containers("h3") {
        if name.contains(".prev-") {
            let p = s
                .inspect("h3", &name)
                .host_config
                .unwrap()
                .restart_policy
                .unwrap();
            assert_eq!(p.name.unwrap().to_string(), "no", "{name}");
        }
    }
    assert_eq!(id_of(&s, "h3", &stable).len(), 64);
}

#[test]
fn a_pin_moved_back_relaunches_the_retained_container() {
    let (_, s) = fleet_scenario!("revert");
    let stable = format!("{}-test-web", s.platform);
    let services = [("web", 18604, "volumes: [\"data:/data\"]")];
    s.write(&s.manifest(&["h1"], &services, &[("web", "1.0.0")]));
    s.apply_ok("test");
    let first = id_of(&s, "h1", &stable);
    s.write(&s.manifest(&["h1"], &services, &[("web", "1.1.0")]));
    s.apply_ok("test");

    // `git revert` of the pin commit: the manifest is byte for byte the first one again.
    s.write(&s.manifest(&["h1"], &services, &[("web", "1.0.0")]));
    let plan = s.run(&["plan", "test"]);
    assert!(plan.stdout.contains("downgrade (retained)"), "{plan:?}");
    let plan_json = s.run(&["plan", "test", "--format", "json"]).json();
    assert_eq!(
        plan_json["hosts"][0]["changes"][0]["relaunch"].as_str(),
        Some(first.as_str())
    );
    let out = s.run(&["apply", "test", "--yes", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(
        report["hosts"][0]["actions"][0]["relaunched"], true,
        "{report}"
    );
    assert_eq!(
        id_of(&s, "h1", &stable),
        first,
        "the very container, no new one"
    );
    assert_eq!(s.version("h1", 18604).as_deref(), Some("1.0.0"));
    assert_eq!(
        s.run(&["plan", "test", "--detailed-exitcode"]).code,
        0,
        "nothing left to do"
    );
}

#[test]
fn the_lock_is_renewed_judged_by_the_engines_clock_and_can_be_waited_for() {
    let (_, s) = fleet_scenario!("lockclock");
    s.deploy(&["h2"], 18605, "1.0.0");
    s.write_web(&["h2"], 18605, "1.1.0");
    // A long run: it holds the lock for ~14 s with a time to live of 6 s, renewing it.
    let ttl = [("FLEETPIN_LOCK_TTL", "6")];
    let (a, _a_err) = spawn_paused_with(&s, &["apply", "test", "--yes"], "started", 14, &ttl);
    std::thread::sleep(Duration::from_secs(9));
    // Past the TTL since it was taken, from a laptop whose clock is two hours ahead: held.
    let b = s.run_prefixed(
        &["faketime", "-f", "+2h"],
        &["apply", "test", "--yes"],
        &[
            ("FLEETPIN_LOCK_TTL", "6"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    assert_eq!(b.code, 1, "{b:?}");
    assert!(b.stdout.contains("h2  locked"), "{b:?}");
    assert!(b.stdout.contains("locked by tester@example.test"), "{b:?}");
    // CI's way: wait for it.
    let c = s.run_with(&["apply", "test", "--yes", "--lock-wait", "60s"], &ttl);
    assert_eq!(c.code, 0, "{c:?}");
    let a = a.wait_with_output().unwrap();
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stdout)
    );
    assert_eq!(s.version("h2", 18605).as_deref(), Some("1.1.0"));
    // Released: no lock and no heartbeat container left.
    let docker = s.docker("h2");
    let lock = format!("fleetpin-lock-{}-test", s.platform);
    let left = support::block_on(async move {
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
            .all(true)
            .build();
        docker
            .list_containers(Some(opts))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.names?.first().cloned())
            .filter(|n| n.trim_start_matches('/').starts_with(&lock))
            .collect::<Vec<_>>()
    });
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_slow_graceful_stop_is_waited_out_in_full() {
    let (_, s) = fleet_scenario!("slowstop");
    // Takes 45 s to stop on SIGTERM; it may take 60.
    let extra = "stop_timeout: 60s\ncommand: [\"sh\", \"-c\", \"trap 'sleep 45; exit 0' TERM; httpd -p 8080 -h /www; while :; do sleep 1; done\"]";
    s.write(&s.manifest(&["h3"], &[("web", 18606, extra)], &[("web", "1.0.0")]));
    s.apply_ok("test");
    s.write(&s.manifest(&["h3"], &[("web", 18606, extra)], &[("web", "1.1.0")]));
    let started = std::time::Instant::now();
    s.apply_ok("test");
    assert!(
        started.elapsed() >= Duration::from_secs(45),
        "the stop was waited for"
    );
    assert_eq!(s.version("h3", 18606).as_deref(), Some("1.1.0"));
    let prev = s
        .containers("h3")
        .into_iter()
        .find(|(n, _, _)| n.contains(".prev-"))
        .unwrap();
    let state = s.inspect("h3", &prev.0).state.unwrap();
    assert_eq!(state.exit_code, Some(0), "stopped gracefully, not killed");
}

#[test]
fn rollback_refuses_before_touching_any_host() {
    let (_, s) = fleet_scenario!("rbscope");
    let services = [("web", 18607, ""), ("api", 18608, ""), ("extra", 18609, "")];
    let hosts = ["h1", "h2"];
    // `extra` is in the manifest but not pinned in `test`.
    let pinned =
        |web: &str, api: &str| s.manifest(&hosts, &services, &[("web", web), ("api", api)]);
    s.write(&pinned("1.0.0", "1.0.0"));
    s.apply_ok("test");
    s.write(&pinned("1.1.0", "1.0.0"));
    s.apply_ok("test");
    let before: Vec<_> = hosts.iter().map(|h| s.containers(h)).collect();

    let ghost = s.run(&["rollback", "test", "-s", "extra", "--yes"]);
    assert_eq!(ghost.code, 1, "{ghost:?}");
    assert!(
        ghost.stderr.contains("`extra` is not pinned in test"),
        "{ghost:?}"
    );

    // api has nothing to go back to: nothing is rolled back, web included.
    let all = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(all.code, 1, "{all:?}");
    assert!(
        all.stderr.contains("api: nothing to roll back to"),
        "{all:?}"
    );
    let after: Vec<_> = hosts.iter().map(|h| s.containers(h)).collect();
    assert_eq!(before, after, "no host touched");

    // Hosts that would go back to different versions: an error, which --to settles.
    s.write(&pinned("1.2.0", "1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes", "--host", "h1"]).code, 0);
    s.write(&pinned("2.0.0", "1.0.0"));
    s.apply_ok("test");
    // h1 went 1.0.0 -> 1.1.0 -> 1.2.0 -> 2.0.0, h2 1.0.0 -> 1.1.0 -> 2.0.0.
    let split = s.run(&["rollback", "test", "-s", "web", "--yes"]);
    assert_eq!(split.code, 1, "{split:?}");
    assert!(split.stderr.contains("different versions"), "{split:?}");
    assert!(
        split.stderr.contains("1.1.0 on h2; 1.2.0 on h1"),
        "{split:?}"
    );
    let to = s.run(&["rollback", "test", "-s", "web", "--to", "1.1.0", "--yes"]);
    assert_eq!(to.code, 0, "{to:?}");
    for h in hosts {
        assert_eq!(s.version(h, 18607).as_deref(), Some("1.1.0"), "{h}");
    }
    assert_eq!(s.head_subject(), "rollback test: web 2.0.0 -> 1.1.0");
}

#[test]
fn rollback_of_some_hosts_leaves_the_pin_and_names_the_hosts_that_differ() {
    let (_, s) = fleet_scenario!("rbsubset");
    let hosts = ["h1", "h3"];
    s.write(&s.manifest(&hosts, &[("web", 18611, "")], &[("web", "1.0.0")]));
    s.apply_ok("test");
    s.write(&s.manifest(&hosts, &[("web", 18611, "")], &[("web", "1.1.0")]));
    s.apply_ok("test");
    let head = s.head();
    let text = std::fs::read_to_string(s.path()).unwrap();
    let out = s.run(&[
        "rollback", "test", "--host", "h3", "--yes", "--format", "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = out.json();
    assert_eq!(doc["pinned"], false);
    let notes = doc["notes"].to_string();
    assert!(
        notes.contains("h3 now runs web 1.0.0 while test pins 1.1.0"),
        "{notes}"
    );
    assert_eq!(s.head(), head, "nothing committed");
    assert_eq!(
        std::fs::read_to_string(s.path()).unwrap(),
        text,
        "the file is untouched"
    );
    assert_eq!(s.version("h3", 18611).as_deref(), Some("1.0.0"));
    assert_eq!(s.version("h1", 18611).as_deref(), Some("1.1.0"));
}

#[test]
fn a_foreign_container_on_the_name_is_a_conflict_for_rollback_and_nothing_is_demoted() {
    let (fleet, s) = fleet_scenario!("rbforeign");
    let stable = format!("{}-test-web", s.platform);
    s.deploy(&["h2"], 18612, "1.0.0");
    s.deploy(&["h2"], 18612, "1.1.0");
    // Someone replaced the service by hand, under its name.
    let docker = s.docker("h2");
    support::block_on(support::docker::remove(&docker, &stable));
    s.by_hand("h2", &stable, &format!("{}:2.0.0", fleet.image), false);
    let before = s.containers("h2");
    let out = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("conflict"), "{out:?}");
    assert_eq!(
        s.containers("h2"),
        before,
        "the retained container is still retained"
    );
    assert!(!before.iter().any(|(n, _, _)| n.contains(".failed-")));
}
