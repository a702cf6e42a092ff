//! Zero-downtime through a real reverse proxy on the private fleet: Caddy resolving the service's
//! alias through Docker's DNS every second (with a short dial timeout and retries), in front of an
//! app that drains on SIGTERM. Clients send 60 requests a second through the proxy while
//! fleetpin upgrades, rolls back, and refuses a never-healthy release of a start-first service:
//! not one request may fail, and the broken release must answer none. Also the rollout across
//! hosts: canary, `on_failure: rollback` and `stop`.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Scenario;

/// For each request, when it was sent and the body (None: failed).
type Seen = Vec<(Instant, Option<String>)>;

/// What clients saw.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Three clients, each requesting `GET /version` on addr:port every 50 ms on a schedule
    /// (a slow answer does not hold the others back), each on a new connection: 60 a second.
    fn start(addr: &str, port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..3u64)
            .map(|i| {
                let (s, v, addr) = (stop.clone(), seen.clone(), addr.to_string());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(17 * i));
                    let mut next = Instant::now();
                    while !s.load(Ordering::SeqCst) {
                        let at = Instant::now();
                        let r = support::http_get(&addr, port, "/version");
                        v.lock().unwrap().push((at, r));
                        next += Duration::from_millis(50);
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            threads,
        }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let mut v = self.seen.lock().unwrap().clone();
        v.sort_by_key(|(t, _)| *t);
        v
    }
}

/// Runs `args` under a steady load through the proxy; returns fleetpin's output and the load.
fn under_load(
    s: &Scenario,
    port: u16,
    args: &[&str],
) -> (
    support::Out,
    Vec<(Instant, Option<String>)>,
    Instant,
    Instant,
) {
    let load = Load::start(&s.host("h1").addr, port);
    std::thread::sleep(Duration::from_secs(1));
    let began = Instant::now();
    let out = s.run(args);
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    (out, load.stop(), began, ended)
}

/// Asserts that every request got an answer, that requests covered the whole run, and returns
/// the versions that answered with how many times each.
fn no_request_lost(
    what: &str,
    seen: &[(Instant, Option<String>)],
    began: Instant,
    ended: Instant,
) -> std::collections::BTreeMap<String, usize> {
    let failed: Vec<_> = seen.iter().filter(|(_, r)| r.is_none()).collect();
    let mut versions = std::collections::BTreeMap::new();
    for (_, r) in seen.iter().filter_map(|(t, r)| r.as_ref().map(|r| (t, r))) {
        *versions.entry(r.clone()).or_insert(0) += 1;
    }
    let rate = seen.len() as f64 / (seen.last().unwrap().0 - seen[0].0).as_secs_f64();
    println!(
        "{what}: {} requests at {rate:.0}/s, {} failed, answers {versions:?}",
        seen.len(),
        failed.len()
    );
    assert!(
        rate >= 50.0,
        "{what}: at least 50 requests a second: {rate:.1}/s"
    );
    assert!(
        seen.first().unwrap().0 < began && seen.last().unwrap().0 > ended,
        "{what}: requests began before the swap and ended after it"
    );
    assert!(
        failed.is_empty(),
        "{what}: {} of {} requests failed",
        failed.len(),
        seen.len()
    );
    versions
}

fn zero_manifest(s: &Scenario, api: &str, extra_env: &str) -> String {
    let f = &s.fleet;
    format!(
        "platform: {p}\nretain: 2\nservices:\n  api:\n    image: {g}\n    networks: [front]\n    update: {{order: start-first, drain: 2s}}\n  proxy:\n    image: {c}\n    ports: [\"18701:80\"]\n    networks: [front]\n    env: {{UPSTREAM_NAME: api, UPSTREAM_PORT: \"8080\"{extra_env}}}\nenvironments:\n  test:\n    hosts:\n      h1: {{endpoint: \"{h}\", insecure: true}}\n    versions:\n      api: \"{api}\"\n      proxy: \"{t}\"\n",
        p = s.platform,
        g = f.graceful_image,
        c = f.caddy_image.rsplit_once(':').unwrap().0,
        t = f.caddy_image.rsplit_once(':').unwrap().1,
        h = s.host("h1").tcp,
    )
}

#[test]
fn upgrade_rollback_and_a_refused_release_lose_no_request_through_the_proxy() {
    let fleet = require_fleet!();
    assert!(
        !fleet.caddy_image.is_empty() && !fleet.graceful_image.is_empty(),
        "the fleet has the proxy and graceful app images (tests/fleet/fleet.sh)"
    );
    let s = Scenario::new(&fleet, "zero");
    s.write(&zero_manifest(&s, "1.0.0", ""));
    s.apply_ok("test");
    let plan = s.run(&["plan", "test", "--format", "json"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    // The proxy is up and serves the app.
    let t = Instant::now();
    while s.version("h1", 18701).as_deref() != Some("1.0.0") {
        assert!(t.elapsed() < Duration::from_secs(15), "the proxy answers");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Upgrade, start-first.
    s.write(&zero_manifest(&s, "1.1.0", ""));
    let plan = s.run(&["plan", "test"]);
    assert!(plan.stdout.contains("upgrade  start-first"), "{plan:?}");
    let (out, seen, began, ended) = under_load(&s, 18701, &["apply", "test", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = no_request_lost("upgrade", &seen, began, ended);
    assert!(
        v.contains_key("1.0.0") && v.contains_key("1.1.0"),
        "both versions answered: {v:?}"
    );

    // Rollback: the retained 1.0.0 starts beside, takes the alias, 1.1.0 drains.
    let (out, seen, began, ended) =
        under_load(&s, 18701, &["rollback", "test", "-s", "api", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = no_request_lost("rollback", &seen, began, ended);
    assert!(
        v.contains_key("1.0.0") && v.contains_key("1.1.0"),
        "both versions answered: {v:?}"
    );

    // A release that never becomes healthy: refused, and it answers not one request.
    s.write(&zero_manifest(&s, "broken", ""));
    let (out, seen, began, ended) = under_load(&s, 18701, &["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("never interrupted") || out.stdout.contains("runs again"),
        "{out:?}"
    );
    let v = no_request_lost("refused release", &seen, began, ended);
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        ["1.0.0"],
        "only the serving version answered: {v:?}"
    );
}

#[test]
fn killed_at_each_start_first_step_a_rerun_leaves_one_serving_and_loses_no_request() {
    let (_, s) = fleet_scenario!("zerokill");
    let stable = format!("{}-test-api", s.platform);
    let manifest = |v: &str| zero_manifest(&s, v, "").replace("18701:80", "18702:80");
    s.write(&manifest("1.0.0"));
    s.apply_ok("test");
    let t = Instant::now();
    while s.version("h1", 18702).is_none() {
        assert!(t.elapsed() < Duration::from_secs(15), "the proxy answers");
        std::thread::sleep(Duration::from_millis(200));
    }
    let steps = [
        ("created", "1.1.0"),
        ("started", "2.0.0"),
        ("aliased", "1.1.0"),
        ("stopped", "2.0.0"),
        ("renamed-old", "1.0.0"),
        ("renamed-new", "1.1.0"),
    ];
    for (step, to) in steps {
        s.write(&manifest(to));
        let load = Load::start(&s.host("h1").addr, 18702);
        std::thread::sleep(Duration::from_millis(500));
        let began = Instant::now();
        let (mut child, _err) = support::spawn_paused(&s, &["apply", "test", "--yes"], step, 600);
        child.kill().unwrap();
        child.wait().unwrap();
        let rerun = s.run(&["apply", "test", "--yes"]);
        let ended = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let seen = load.stop();
        assert_eq!(rerun.code, 0, "killed at {step}: {rerun:?}");
        no_request_lost(&format!("killed at {step}"), &seen, began, ended);
        // Exactly one container serves under the stable name; the previous one is retained.
        let list = s.containers("h1");
        let api: Vec<_> = list
            .iter()
            .filter(|(n, _, _)| n.starts_with(&stable))
            .collect();
        let running: Vec<_> = api.iter().filter(|(_, st, _)| st == "running").collect();
        assert_eq!(running.len(), 1, "killed at {step}: {api:?}");
        assert_eq!(running[0].0, stable, "killed at {step}: {api:?}");
        assert_eq!(running[0].2, to, "killed at {step}");
        assert!(
            !api.iter().any(|(n, _, _)| n.contains(".new-")
                || n.contains(".old-")
                || n.contains(".failed-")),
            "killed at {step}: {api:?}"
        );
        assert!(
            api.iter().any(|(n, _, _)| n.contains(".prev-")),
            "killed at {step}: {api:?}"
        );
        assert_eq!(s.version("h1", 18702).as_deref(), Some(to));
    }
}

/// Makes `host`'s engine unable to reach the registry (or able again).
fn registry_reachable(host: &str, reachable: bool) {
    let ns = format!("fpfleet-{host}");
    let op = if reachable { "-D" } else { "-I" };
    let status = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "iptables",
            op,
            "OUTPUT",
            "-d",
            "10.213.7.2",
            "-j",
            "REJECT",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "iptables in {ns}");
}

fn rollout_manifest(s: &Scenario, hosts: &[&str], v: &str, on_failure: &str) -> String {
    s.manifest(hosts, &[("web", 18703, "")], &[("web", v)]).replace(
        "    versions:\n",
        &format!("    max_parallel: 1\n    rollout: {{canary: 1, on_failure: {on_failure}}}\n    versions:\n"),
    )
}

#[test]
fn a_rollout_whose_last_host_cannot_pull_ends_on_one_version_or_stops_there() {
    let fleet = require_fleet!();
    // The repository no other test uses, so h3 has to pull the new version (and cannot).
    let s = Scenario::new(&fleet, "rollout");
    let repo = format!("{}/fleetpin/rollout", fleet.registry);
    s.push_as("h1", &format!("{}:1.0.0", fleet.image), &repo, "1.0.0");
    s.push_as("h1", &format!("{}:1.1.0", fleet.image), &repo, "1.1.0");
    for h in ["h1", "h2", "h3"] {
        s.remove_image(h, &format!("{repo}:1.1.0"));
    }
    let m = |hosts: &[&str], v: &str, f: &str| {
        rollout_manifest(&s, hosts, v, f).replace(&fleet.image, &repo)
    };

    // on_failure: rollback — h1 (the canary) and h2 change, h3 cannot pull: all go back.
    let hosts = ["h1", "h2", "h3"];
    s.write(&m(&hosts, "1.0.0", "rollback"));
    s.apply_ok("test");
    s.write(&m(&hosts, "1.1.0", "rollback"));
    registry_reachable("h3", false);
    let out = s.run(&["apply", "test", "--yes", "--format", "json"]);
    registry_reachable("h3", true);
    assert_eq!(out.code, 1, "{out:?}");
    let doc = out.json();
    let status = |i: usize| doc["hosts"][i]["status"].as_str().unwrap().to_string();
    assert_eq!(
        [status(0), status(1), status(2)],
        ["rolled-back", "rolled-back", "failed"],
        "{doc}"
    );
    for h in hosts {
        assert_eq!(s.version(h, 18703).as_deref(), Some("1.0.0"), "{h} is back");
    }

    // on_failure: stop — h1 (canary) changes, h3 fails, h2 after it is untouched.
    let order = ["h1", "h3", "h2"];
    s.write(&m(&order, "1.1.0", "stop"));
    registry_reachable("h3", false);
    let out = s.run(&["apply", "test", "--yes"]);
    registry_reachable("h3", true);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("Hosts — changed: h1; failed: h3; untouched: h2."),
        "{out:?}"
    );
    assert_eq!(s.version("h1", 18703).as_deref(), Some("1.1.0"));
    assert_eq!(s.version("h3", 18703).as_deref(), Some("1.0.0"));
    assert_eq!(s.version("h2", 18703).as_deref(), Some("1.0.0"));
}
