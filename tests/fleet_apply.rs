//! plan, apply and rollback against the private fleet: real dockerds, a real registry, real
//! pulls, real containers answering HTTP. Each test owns a platform name and host ports, so the
//! tests run in parallel on the same fleet without touching each other.

mod support;

use support::Scenario;

const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

fn versions_on(s: &Scenario, port: u16) -> Vec<Option<String>> {
    HOSTS.iter().map(|h| s.version(h, port)).collect()
}

#[test]
fn create_from_empty_then_upgrade_then_nothing_to_do() {
    let (_, s) = fleet_scenario!("create");
    let services = [
        ("web", 18101, "volumes: [\"web-data:/data\"]"),
        ("api", 18102, "depends_on: [web]"),
    ];
    s.write(&s.manifest(&HOSTS, &services, &[("web", "1.0.0"), ("api", "1.1.0")]));

    let plan = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    for h in HOSTS {
        assert!(plan.stdout.contains(h), "every host is named: {plan:?}");
    }
    assert_eq!(plan.stdout.matches("  create").count(), 6, "{plan:?}");

    s.apply_ok("test");
    assert_eq!(versions_on(&s, 18101), vec![Some("1.0.0".to_string()); 3]);
    assert_eq!(versions_on(&s, 18102), vec![Some("1.1.0".to_string()); 3]);

    // The contract's labels, with the manifest's commit.
    let c = s.inspect("h2", &format!("{}-test-web", s.platform));
    let labels = c.config.unwrap().labels.unwrap();
    assert_eq!(labels["io.fleetpin.platform"], s.platform);
    assert_eq!(labels["io.fleetpin.environment"], "test");
    assert_eq!(labels["io.fleetpin.service"], "web");
    assert_eq!(labels["io.fleetpin.version"], "1.0.0");
    assert_eq!(labels["io.fleetpin.commit"], s.head());
    assert_eq!(labels["io.fleetpin.deployed-by"], "tester@example.test");
    assert_eq!(labels["io.fleetpin.spec-hash"].len(), 64);
    assert!(labels["io.fleetpin.deployed-at"].ends_with('Z'));

    // Upgrade one service on all hosts.
    s.write(&s.manifest(&HOSTS, &services, &[("web", "1.1.0"), ("api", "1.1.0")]));
    let plan = s.run(&["plan", "test"]);
    assert_eq!(
        plan.stdout.matches("1.0.0 -> 1.1.0  upgrade").count(),
        3,
        "{plan:?}"
    );
    let out = s.run(&["apply", "test", "--yes", "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(versions_on(&s, 18101), vec![Some("1.1.0".to_string()); 3]);

    // The previous container is retained, stopped, with restart policy `no`.
    for h in HOSTS {
        let list = s.containers(h);
        let prev: Vec<_> = list
            .iter()
            .filter(|(n, _, _)| n.contains(".prev-"))
            .collect();
        assert_eq!(prev.len(), 1, "{h}: {list:?}");
        assert_eq!(prev[0].2, "1.0.0");
        assert_eq!(prev[0].1, "exited");
        let policy = s.restart_policy(h, &prev[0].0);
        assert_eq!(policy.to_string(), "no");
        assert_eq!(
            list.iter().filter(|(_, st, _)| st == "running").count(),
            2,
            "{h}: {list:?}"
        );
    }

    // A second apply has nothing to do and says so; plan agrees.
    let again = s.apply_ok("test");
    assert!(again.stdout.contains("Nothing to do"), "{again:?}");
    assert_eq!(s.run(&["plan", "test", "--detailed-exitcode"]).code, 0);
}

#[test]
fn reconfigure_and_downgrade() {
    let (_, s) = fleet_scenario!("reconf");
    let hosts = ["h1"];
    s.write(&s.manifest(
        &hosts,
        &[("web", 18111, "env: {MODE: blue}")],
        &[("web", "1.1.0")],
    ));
    s.apply_ok("test");

    s.write(&s.manifest(
        &hosts,
        &[("web", 18111, "env: {MODE: green}")],
        &[("web", "1.1.0")],
    ));
    let plan = s.run(&["plan", "test"]);
    assert!(plan.stdout.contains("reconfigure"), "{plan:?}");
    s.apply_ok("test");
    let env = s
        .config("h1", &format!("{}-test-web", s.platform))
        .env
        .unwrap();
    assert!(env.contains(&"MODE=green".to_string()), "{env:?}");

    s.write(&s.manifest(
        &hosts,
        &[("web", 18111, "env: {MODE: green}")],
        &[("web", "1.0.0")],
    ));
    let plan = s.run(&["plan", "test"]);
    assert!(
        plan.stdout.contains("1.1.0 -> 1.0.0  downgrade"),
        "{plan:?}"
    );
    s.apply_ok("test");
    assert_eq!(s.version("h1", 18111).as_deref(), Some("1.0.0"));
}

#[test]
fn orphans_are_shown_and_removed_only_with_prune() {
    let (_, s) = fleet_scenario!("orphan");
    let hosts = ["h2"];
    let both = [("web", 18121, ""), ("old", 18122, "")];
    s.write(&s.manifest(&hosts, &both, &[("web", "1.0.0"), ("old", "1.0.0")]));
    s.apply_ok("test");

    s.write(&s.manifest(&hosts, &[("web", 18121, "")], &[("web", "1.0.0")]));
    let plan = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "orphans count as pending: {plan:?}");
    assert!(plan.stdout.contains("- old"), "{plan:?}");
    assert!(plan.stdout.contains("remove-orphan"), "{plan:?}");

    s.apply_ok("test");
    assert_eq!(
        s.version("h2", 18122).as_deref(),
        Some("1.0.0"),
        "kept without --prune"
    );

    let prune = s.run(&["apply", "test", "--yes", "--prune"]);
    assert_eq!(prune.code, 0, "{prune:?}");
    assert!(
        !s.containers("h2")
            .iter()
            .any(|(n, _, _)| n.contains("-old")),
        "{:?}",
        s.containers("h2")
    );
    assert_eq!(s.version("h2", 18121).as_deref(), Some("1.0.0"));
}

#[test]
fn a_foreign_container_holding_the_name_is_reported_and_never_touched() {
    let (fleet, s) = fleet_scenario!("conflict");
    let name = format!("{}-test-web", s.platform);
    let image = format!("{}:1.0.0", fleet.image);
    let id = s.by_hand("h3", &name, &image, true);
    s.write_web(&["h3"], 18131, "1.1.0");
    let plan = s.run(&["plan", "test"]);
    assert_eq!(
        plan.code, 1,
        "a conflict makes the command exit 1: {plan:?}"
    );
    assert!(plan.stdout.contains("conflict"), "{plan:?}");
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    let after = s.inspect("h3", &name);
    assert_eq!(
        after.id.as_deref(),
        Some(id.as_str()),
        "the foreign container is untouched"
    );
    assert_eq!(after.state.unwrap().running, Some(true));
}

#[test]
fn an_image_that_never_gets_healthy_is_replaced_by_the_old_one_again() {
    let (_, s) = fleet_scenario!("broken");
    let hosts = ["h1", "h2"];
    s.write(&s.manifest(&hosts, &[("web", 18141, "")], &[("web", "1.0.0")]));
    s.apply_ok("test");

    s.write(&s.manifest(&hosts, &[("web", 18141, "")], &[("web", "broken")]));
    let out = s.run(&["apply", "test", "--yes", "--max-parallel", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("unhealthy"), "{out:?}");
    assert!(
        out.stdout.contains("404"),
        "the health log is shown: {out:?}"
    );
    assert!(
        out.stdout.contains("previous version runs again"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("skipped"),
        "after a failed host no new host starts: {out:?}"
    );
    for h in hosts {
        assert_eq!(
            s.version(h, 18141).as_deref(),
            Some("1.0.0"),
            "{h} serves the old version"
        );
    }
    let failed: Vec<_> = s.containers_with("h1", ".failed-");
    assert_eq!(failed.len(), 1, "the failed container is kept for its logs");
    assert_eq!(failed[0].1, "exited");
    assert!(
        s.containers("h2").iter().all(|(_, _, v)| v == "1.0.0"),
        "h2 was never touched"
    );
}

#[test]
fn a_tag_missing_from_the_registry_leaves_the_host_untouched() {
    let (_, s) = fleet_scenario!("missing");
    s.deploy(&["h2"], 18151, "1.0.0");
    let before = s.containers("h2");

    s.write_web(&["h2"], 18151, "9.9.9");
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("pull of"), "{out:?}");
    assert!(out.stdout.contains("nothing was changed"), "{out:?}");
    assert_eq!(
        s.containers("h2"),
        before,
        "no container created, stopped or renamed"
    );
    assert_eq!(s.version("h2", 18151).as_deref(), Some("1.0.0"));
}

#[test]
fn an_unreachable_host_fails_the_run_but_not_the_others() {
    let (_, s) = fleet_scenario!("dead");
    // 10.213.7.250 is in the fleet's subnet and never assigned: a host whose engine is gone.
    let hosts = ["h1", "tcp://10.213.7.250:2375", "h3"];
    s.write(&s.manifest(&hosts, &[("web", 18161, "")], &[("web", "1.0.0")]));
    let plan = s.run(&["--connect-timeout", "2", "plan", "test"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    assert!(
        plan.stdout.contains("dead") && plan.stdout.contains("unreachable"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("h1") && plan.stdout.contains("h3"),
        "{plan:?}"
    );

    let out = s.run(&[
        "--connect-timeout",
        "2",
        "apply",
        "test",
        "--yes",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    let dead = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "dead")
        .unwrap();
    assert_eq!(dead["status"], "unreachable");
    for h in ["h1", "h3"] {
        assert_eq!(
            s.version(h, 18161).as_deref(),
            Some("1.0.0"),
            "{h} converged"
        );
    }
}

#[test]
fn the_lock_keeps_two_runs_apart_and_unlock_removes_a_stale_one() {
    let (_, s) = fleet_scenario!("lock");
    s.deploy(&["h1"], 18171, "1.0.0");

    // Two applies at once: one converges, the other is refused by the lock, naming its owner.
    s.write_web(&["h1"], 18171, "1.1.0");
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| s.run(&["apply", "test", "--yes"]));
        let b = scope.spawn(|| s.run(&["apply", "test", "--yes"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let codes = [a.code, b.code];
    assert!(codes.contains(&0) && codes.contains(&1), "{a:?}\n{b:?}");
    let refused = if a.code == 1 { &a } else { &b };
    assert!(refused.stdout.contains("locked by"), "{refused:?}");
    assert!(
        refused.stdout.contains("tester@example.test"),
        "the owner is named: {refused:?}"
    );
    assert_eq!(s.version("h1", 18171).as_deref(), Some("1.1.0"));

    // A lock left by a killed run on another machine: apply refuses, `unlock` removes it, apply
    // proceeds.
    let lock_name = format!("fleetpin-lock-{}-test", s.platform);
    let leave_a_lock = || {
        support::block_on(async {
            let engine = fleetpin::engine::docker::DockerEngine::connect(
                &fleetpin::engine::docker::Target {
                    endpoint: fleetpin::manifest::values::Endpoint::parse(&s.host("h1").unix)
                        .unwrap(),
                    tls: None,
                    insecure: false,
                },
                std::time::Duration::from_secs(5),
            )
            .await
            .unwrap();
            let labels = std::collections::BTreeMap::from([
                (
                    "io.fleetpin.lock.owner".to_string(),
                    "someone@elsewhere".to_string(),
                ),
                (
                    "io.fleetpin.lock.machine".to_string(),
                    "another-machine".to_string(),
                ),
                ("io.fleetpin.lock.pid".to_string(), "1".to_string()),
                ("io.fleetpin.lock.ttl".to_string(), "3600".to_string()),
            ]);
            fleetpin::engine::Engine::create_lock(&engine, &lock_name, &labels)
                .await
                .unwrap();
        })
    };
    leave_a_lock();
    s.write_web(&["h1"], 18171, "1.2.0");
    let refused = s.run(&["apply", "test", "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stdout.contains("someone@elsewhere"), "{refused:?}");
    assert!(
        refused.stdout.contains("fleetpin unlock test --host h1"),
        "{refused:?}"
    );
    let unlock = s.run(&["unlock", "test"]);
    assert_eq!(unlock.code, 0, "{unlock:?}");
    assert!(unlock.stdout.contains("someone@elsewhere"), "{unlock:?}");
    s.apply_ok("test");
    assert_eq!(s.version("h1", 18171).as_deref(), Some("1.2.0"));

    // For scripts: one JSON document.
    leave_a_lock();
    let json = s.run(&["unlock", "test", "--format", "json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let doc = json.json();
    assert_eq!(doc["hosts"][0]["host"], "h1");
    assert_eq!(doc["hosts"][0]["removed"], true);
    assert_eq!(doc["hosts"][0]["owner"], "someone@elsewhere");
}

#[test]
fn rollback_restores_the_previous_version_in_place_and_commits_the_pin() {
    let (_, s) = fleet_scenario!("rollback");
    let hosts = ["h2", "h3"];
    let services = [("web", 18181, "volumes: [\"data:/data\"]")];
    s.write(&s.manifest(&hosts, &services, &[("web", "1.0.0")]));
    let nothing = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(nothing.code, 1, "nothing deployed yet: {nothing:?}");
    s.apply_ok("test");
    let none_retained = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(none_retained.code, 1, "{none_retained:?}");
    assert!(
        none_retained.stderr.contains("nothing to roll back to"),
        "{none_retained:?}"
    );

    // Data written to the named volume must survive the upgrade and the rollback.
    let mountpoint = support::block_on({
        let docker = s.docker("h2");
        let name = format!("{}-test-data", s.platform);
        async move { docker.inspect_volume(&name).await.unwrap().mountpoint }
    });
    std::fs::write(
        std::path::Path::new(&mountpoint).join("orders.db"),
        "order 42\n",
    )
    .unwrap();

    // The 1.0.0 container, which the upgrade will retain.
    let first_id = s
        .inspect("h2", &format!("{}-test-web", s.platform))
        .id
        .unwrap();
    s.write(&s.manifest(&hosts, &services, &[("web", "1.1.0")]));
    s.apply_ok("test");
    let upgraded_id = s
        .inspect("h2", &format!("{}-test-web", s.platform))
        .id
        .unwrap();
    assert_ne!(upgraded_id, first_id);
    let before = std::fs::read_to_string(s.path()).unwrap();

    let out = s.run(&["rollback", "test", "-s", "web", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    for h in hosts {
        assert_eq!(s.version(h, 18181).as_deref(), Some("1.0.0"), "{h}");
    }
    // The very container that ran before the upgrade, started again: no new container.
    let now = s.inspect("h2", &format!("{}-test-web", s.platform));
    assert_eq!(now.id.as_deref(), Some(first_id.as_str()));
    assert_eq!(
        now.config.unwrap().labels.unwrap()["io.fleetpin.version"],
        "1.0.0"
    );
    assert_eq!(
        s.containers("h2").len(),
        2,
        "one running, one retained: {:?}",
        s.containers("h2")
    );
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(&mountpoint).join("orders.db")).unwrap(),
        "order 42\n"
    );

    // The pin now says what runs, in one changed line, committed.
    let after = std::fs::read_to_string(s.path()).unwrap();
    let changed: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![("      web: \"1.1.0\"", "      web: \"1.0.0\"")]
    );
    assert_eq!(s.head_subject(), "rollback test: web 1.1.0 -> 1.0.0");
    assert_eq!(
        s.run(&["plan", "test", "--detailed-exitcode"]).code,
        0,
        "nothing left to do"
    );
}

#[test]
fn a_saved_plan_is_applied_exactly_and_refused_when_the_host_changed() {
    let (_, s) = fleet_scenario!("saved");
    let services = [("web", 18191, ""), ("api", 18192, "")];
    s.write(&s.manifest(
        &["h1", "h3"],
        &services,
        &[("web", "1.0.0"), ("api", "1.0.0")],
    ));
    s.apply_ok("test");

    s.write(&s.manifest(
        &["h1", "h3"],
        &services,
        &[("web", "1.1.0"), ("api", "1.0.0")],
    ));
    let plan_file = s.dir.path().join("test.plan.json");
    let plan = s.run(&["plan", "test", "-o", plan_file.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["format"], "fleetpin-plan/1");

    // Someone stops api on h3 by hand after the plan was made.
    let docker = s.docker("h3");
    let api = format!("{}-test-api", s.platform);
    support::block_on(async move {
        docker
            .stop_container(
                &api,
                None::<bollard::query_parameters::StopContainerOptions>,
            )
            .await
            .unwrap();
    });
    let out = s.run(&[
        "apply",
        "test",
        "--yes",
        "--plan",
        plan_file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = out.json();
    let hosts = report["hosts"].as_array().unwrap();
    let h1 = hosts.iter().find(|h| h["host"] == "h1").unwrap();
    let h3 = hosts.iter().find(|h| h["host"] == "h3").unwrap();
    assert_eq!(h1["status"], "converged", "{out:?}");
    assert_eq!(h3["status"], "refused", "{out:?}");
    assert!(
        h3["error"]
            .as_str()
            .unwrap()
            .contains("changed since the plan"),
        "{out:?}"
    );
    assert_eq!(s.version("h1", 18191).as_deref(), Some("1.1.0"));
    assert_eq!(
        s.version("h3", 18191).as_deref(),
        Some("1.0.0"),
        "the refused host is untouched"
    );
    // Exactly the plan: the stopped api on h3 was not restarted, nothing else changed on h1.
    assert_eq!(s.version("h3", 18192), None);
}
