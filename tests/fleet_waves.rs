//! Services of one host changed together, in depends_on waves, on the private fleet: a dependent
//! starts only after what it depends on passed its health check; a failed service stops its
//! dependents, never its independent neighbours. Ports 188xx.

mod support;

use support::Scenario;

fn started_at(s: &Scenario, host: &str, name: &str) -> String {
    s.inspect(host, name).state.unwrap().started_at.unwrap()
}

/// When the container's first passing health check ended, from Docker's health log.
fn first_healthy(s: &Scenario, host: &str, name: &str) -> String {
    let log = s
        .inspect(host, name)
        .state
        .unwrap()
        .health
        .unwrap()
        .log
        .unwrap_or_default();
    log.iter()
        .find(|p| p.exit_code == Some(0))
        .and_then(|p| p.end.clone())
        .unwrap_or_else(|| panic!("{name} has a passing health check in its log: {log:?}"))
}

fn t(rfc3339: &str) -> std::time::SystemTime {
    fleetpin::clock::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("a time: {rfc3339}"))
}

#[test]
fn a_dependent_starts_after_its_dependency_passed_its_health_check() {
    let (_, s) = fleet_scenario!("waves");
    let services = [
        ("db", 18801, ""),
        ("api", 18802, "depends_on: [db]"),
        ("web", 18803, "depends_on: [api]"),
        ("cache", 18804, ""),
    ];
    fn pins(v: &str) -> [(&str, &str); 4] {
        [("db", v), ("api", v), ("web", v), ("cache", v)]
    }
    s.write(&s.manifest(&["h1"], &services, &pins("1.0.0")));
    s.apply_ok("test");
    let name = |svc: &str| format!("{}-test-{svc}", s.platform);
    // From empty, then an upgrade of all four: each time the chain waits, the rest does not.
    for round in ["create", "upgrade"] {
        if round == "upgrade" {
            s.write(&s.manifest(&["h1"], &services, &pins("1.1.0")));
            s.apply_ok("test");
        }
        let db_ok = first_healthy(&s, "h1", &name("db"));
        let api_started = started_at(&s, "h1", &name("api"));
        assert!(
            t(&api_started) > t(&db_ok),
            "{round}: api started {api_started}, db first healthy {db_ok}"
        );
        let api_ok = first_healthy(&s, "h1", &name("api"));
        let web_started = started_at(&s, "h1", &name("web"));
        assert!(
            t(&web_started) > t(&api_ok),
            "{round}: web started {web_started}, api first healthy {api_ok}"
        );
        // cache depends on nothing: it started before db was healthy.
        let cache_started = started_at(&s, "h1", &name("cache"));
        assert!(
            t(&cache_started) < t(&db_ok),
            "{round}: cache started {cache_started}, db first healthy {db_ok}: they ran together"
        );
    }
}

#[test]
fn a_failed_service_stops_its_dependent_not_its_independent_neighbour() {
    let (_, s) = fleet_scenario!("wavefail");
    let services = [
        ("base", 18811, ""),
        ("dep", 18812, "depends_on: [base]"),
        ("other", 18813, ""),
    ];
    s.write(&s.manifest(
        &["h2"],
        &services,
        &[("base", "1.0.0"), ("dep", "1.0.0"), ("other", "1.0.0")],
    ));
    s.apply_ok("test");
    let name = |svc: &str| format!("{}-test-{svc}", s.platform);
    let dep_id = s.inspect("h2", &name("dep")).id.unwrap();
    s.write(&s.manifest(
        &["h2"],
        &services,
        &[("base", "broken"), ("dep", "1.1.0"), ("other", "1.1.0")],
    ));
    let out = s.run(&["apply", "test", "--yes", "--format", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let doc = out.json();
    let action = |svc: &str| {
        doc["hosts"][0]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["service"] == svc)
            .unwrap_or_else(|| panic!("an action for {svc}: {doc}"))
            .clone()
    };
    assert_eq!(action("base")["status"], "failed", "{doc}");
    assert_eq!(action("dep")["status"], "skipped", "{doc}");
    assert!(
        action("dep")["detail"]
            .as_str()
            .unwrap()
            .contains("depends on base, which failed"),
        "{doc}"
    );
    assert_eq!(action("other")["status"], "done", "{doc}");
    assert_eq!(
        s.inspect("h2", &name("dep")).id.unwrap(),
        dep_id,
        "the dependent is untouched"
    );
    assert_eq!(s.version("h2", 18812).as_deref(), Some("1.0.0"));
    assert_eq!(s.version("h2", 18813).as_deref(), Some("1.1.0"));
    assert_eq!(s.version("h2", 18811).as_deref(), Some("1.0.0"));
}
