//! fleetpin on a Podman host: rootful Podman 4.3 (`podman system service`, the fleet's p1,
//! FLEET_PODMAN_TCP) serving its Docker-compatible API. apply, upgrade, rollback, audit and
//! promote work there; what 4.3 cannot do is detected and reported: its healthchecks never run
//! without systemd timers (the gate falls back to `update.monitor`), and it has no endpoint to
//! change a restart policy (retained containers keep theirs). Network aliases go through
//! Podman's own networking (netavark + aardvark-dns). Platforms `pm*`, host ports 19000–19099.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::Scenario;

/// The fleet's Podman host, from the fleet's env file. Under CI a fleet without it fails.
struct Podman {
    addr: String,
    tcp: String,
    version: String,
}

fn podman() -> Option<Podman> {
    let path = std::env::var("FLEETPIN_FLEET_ENV")
        .unwrap_or_else(|_| support::DEFAULT_ENV_FILE.to_string());
    let vars: BTreeMap<String, String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    match (
        vars.get("FLEET_PODMAN_ADDR"),
        vars.get("FLEET_PODMAN_TCP"),
        vars.get("FLEET_PODMAN_VERSION"),
    ) {
        (Some(a), Some(t), Some(v)) if !t.is_empty() => Some(Podman {
            addr: a.clone(),
            tcp: t.clone(),
            version: v.clone(),
        }),
        _ => {
            let msg = format!(
                "the fleet's Podman host is not up (no FLEET_PODMAN_* in {path}): \
                 `sudo tests/fleet/fleet.sh up` starts it"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!! SKIPPING Podman test: {msg}\n");
            None
        }
    }
}

macro_rules! require_podman {
    () => {{
        let fleet = require_fleet!();
        match podman() {
            Some(p) => (fleet, p),
            None => return,
        }
    }};
}

/// One request to the Podman service's Docker-compatible API; the JSON answer (or Null).
fn api(p: &Podman, method: &str, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(format!("{}:2375", p.addr)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: podman\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// This platform's containers on the Podman host: (name, state, version label, id).
fn containers(p: &Podman, platform: &str) -> Vec<(String, String, String, String)> {
    let (_, list) = api(p, "GET", "/containers/json?all=1");
    let mut out: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let name = c["Names"][0].as_str()?.trim_start_matches('/').to_string();
            name.starts_with(&format!("{platform}-")).then(|| {
                (
                    name,
                    c["State"].as_str().unwrap_or("").to_string(),
                    c["Labels"]["io.fleetpin.version"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    c["Id"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn inspect(p: &Podman, name: &str) -> Value {
    let (code, v) = api(p, "GET", &format!("/containers/{}/json", enc(name)));
    assert_eq!(code, 200, "inspect {name}: {v}");
    v
}

/// Removes this platform's containers, locks and networks from the Podman host.
fn cleanup(p: &Podman, platform: &str) {
    let (_, list) = api(p, "GET", "/containers/json?all=1");
    for c in list.as_array().into_iter().flatten() {
        let name = c["Names"][0].as_str().unwrap_or("").trim_start_matches('/');
        if name.starts_with(&format!("{platform}-"))
            || name.starts_with(&format!("fleetpin-lock-{platform}-"))
        {
            api(
                p,
                "DELETE",
                &format!("/containers/{}?force=1&t=0", enc(name)),
            );
        }
    }
    let (_, nets) = api(p, "GET", "/networks");
    for n in nets.as_array().into_iter().flatten() {
        let name = n["Name"].as_str().unwrap_or("");
        if name.starts_with(&format!("{platform}-")) {
            api(p, "DELETE", &format!("/networks/{}", enc(name)));
        }
    }
}

/// A scenario whose hosts are the Podman host only; cleaned before and after.
struct PodmanScenario {
    s: Scenario,
    p: Podman,
}

impl PodmanScenario {
    fn new(fleet: &support::Fleet, p: Podman, name: &str) -> PodmanScenario {
        let s = Scenario::new(fleet, name);
        let mut platform = s.platform.clone();
        platform.replace_range(..2, "pm");
        let mut s = s;
        s.platform = platform;
        cleanup(&p, &s.platform);
        PodmanScenario { s, p }
    }

    /// `services` is YAML under `services:`; one environment `test` on p1 with `versions`.
    fn manifest(&self, services: &str, versions: &[(&str, &str)]) -> String {
        let mut m = format!(
            "platform: {}\nretain: 2\nservices:\n{services}environments:\n  test:\n    hosts:\n      \
             p1: {{endpoint: \"{}\", insecure: true}}\n    versions:\n",
            self.s.platform, self.p.tcp
        );
        for (s, v) in versions {
            m.push_str(&format!("      {s}: \"{v}\"\n"));
        }
        m
    }

    fn get(&self, port: u16, path: &str) -> Option<String> {
        support::http_get(&self.p.addr, port, path)
    }
}

impl Drop for PodmanScenario {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            cleanup(&self.p, &self.s.platform);
        }
    }
}

fn web(image: &str, port: u16, extra: &str) -> String {
    format!(
        "  web:\n    image: {image}\n    ports: [\"{port}:8080\"]\n    update: {{monitor: 2s}}\n{extra}"
    )
}

#[test]
fn apply_upgrade_rollback_and_audit_on_podman() {
    let (fleet, p) = require_podman!();
    let version = p.version.clone();
    let t = PodmanScenario::new(&fleet, p, "cycle");
    let s = &t.s;
    let services = web(&fleet.image, 19001, "");
    s.write(&t.manifest(&services, &[("web", "1.0.0")]));

    let plan = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(plan.stdout.contains("+ web  -> 1.0.0  create"), "{plan:?}");

    // The first step on a fresh host is the lock (its image imported once per host).
    let out = s.apply_ok("test");
    assert_eq!(t.get(19001, "/version").as_deref(), Some("1.0.0"));
    // The image's HEALTHCHECK never runs on Podman without systemd: said, and gated by monitor.
    assert!(
        out.stderr.contains(&format!(
            "{}: {}-test-web has a healthcheck, but this engine (Podman) runs healthchecks only \
             from systemd timers: gated by `update.monitor` (2s) while it reports `starting`",
            t.p.tcp, s.platform
        )),
        "{out:?}"
    );
    let stable = format!("{}-test-web", s.platform);
    let c = inspect(&t.p, &stable);
    assert_eq!(c["State"]["Health"]["Status"], "starting", "{c}");
    assert_eq!(
        c["Config"]["Labels"]["io.fleetpin.commit"],
        s.head().as_str()
    );

    // The listing finds what it deployed: nothing to do.
    let again = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again:?}");

    // Upgrade: the previous container is retained, stopped; its restart policy could not be
    // changed to `no` (Podman 4.3 has no update endpoint): reported once, the deploy goes on.
    s.write(&t.manifest(&services, &[("web", "1.1.0")]));
    let plan = s.run(&["plan", "test"]);
    assert!(plan.stdout.contains("1.0.0 -> 1.1.0  upgrade"), "{plan:?}");
    let out = s.apply_ok("test");
    assert_eq!(t.get(19001, "/version").as_deref(), Some("1.1.0"));
    let warning = format!(
        "{}: Podman {version} cannot change a container's restart policy (no container-update \
         endpoint): retained containers keep theirs (`no` was asked); see docs/podman.md",
        t.p.tcp
    );
    assert_eq!(out.stderr.matches(&warning).count(), 1, "{out:?}");
    let list = containers(&t.p, &s.platform);
    let prev: Vec<_> = list.iter().filter(|c| c.0.contains(".prev-")).collect();
    assert_eq!(prev.len(), 1, "{list:?}");
    assert_eq!(
        (prev[0].1.as_str(), prev[0].2.as_str()),
        ("exited", "1.0.0")
    );
    let retained_id = prev[0].3.clone();
    let policy = inspect(&t.p, &prev[0].0)["HostConfig"]["RestartPolicy"]["Name"].clone();
    assert_eq!(policy, "unless-stopped", "kept as it was created");

    // Rollback starts the retained container itself (same id), not a new one.
    let out = s.run(&["rollback", "test", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.get(19001, "/version").as_deref(), Some("1.0.0"));
    let now = inspect(&t.p, &stable);
    assert_eq!(now["Id"], retained_id.as_str(), "{now}");
    assert_eq!(now["State"]["Status"], "running");

    // Audit reads the host as it is.
    let out = s.run(&["audit", "test", "--format", "json", "--exit-code"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = out.json();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{doc}");
    assert_eq!(rows[0]["host"], "p1");
    assert_eq!(rows[0]["status"], "ok", "{doc}");
    assert_eq!(rows[0]["running"], "1.0.0", "{doc}");
}

#[test]
fn without_healthcheck_the_monitor_gates_on_podman() {
    let (fleet, p) = require_podman!();
    let t = PodmanScenario::new(&fleet, p, "monitor");
    let s = &t.s;
    let services = web(&fleet.image, 19011, "    healthcheck: {test: [\"NONE\"]}\n");
    s.write(&t.manifest(&services, &[("web", "1.0.0")]));
    let out = s.apply_ok("test");
    assert!(!out.stderr.contains("has a healthcheck"), "{out:?}");
    assert_eq!(t.get(19011, "/version").as_deref(), Some("1.0.0"));

    // A release whose process exits inside the monitor window fails its gate; 1.0.0 is back.
    let crash = web(
        &fleet.image,
        19011,
        "    healthcheck: {test: [\"NONE\"]}\n    command: [\"sh\", \"-c\", \"sleep 1; exit 3\"]\n",
    );
    s.write(&t.manifest(&crash, &[("web", "1.1.0")]));
    let out = s.run(&["apply", "test", "--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    // Podman restarts it by its policy (`unless-stopped`) before it is seen exited: the gate
    // sees the restart.
    assert!(
        out.stdout
            .contains("      the container restarted (restart count ")
            && out.stdout.contains("): its process exits\n"),
        "{out:?}"
    );
    assert_eq!(t.get(19011, "/version").as_deref(), Some("1.0.0"));
    let list = containers(&t.p, &s.platform);
    let running: Vec<_> = list.iter().filter(|c| c.1 == "running").collect();
    assert_eq!(running.len(), 1, "{list:?}");
    assert_eq!(running[0].0, format!("{}-test-web", s.platform));
    assert_eq!(running[0].2, "1.0.0");
}

#[test]
fn service_aliases_through_podman_networking() {
    let (fleet, p) = require_podman!();
    let t = PodmanScenario::new(&fleet, p, "alias");
    let s = &t.s;
    // `client` asks `http://api:8080/version` every 200 ms through the network alias and serves
    // the last answer at /upstream.
    let services = |order: &str| {
        format!(
            "  api:\n    image: {img}\n    networks: [front]\n    update: {{order: {order}, monitor: 2s, drain: 1s}}\n\
             \x20 client:\n    image: {img}\n    ports: [\"19021:8080\"]\n    networks: [front]\n    update: {{monitor: 2s}}\n\
             \x20   command: [\"sh\", \"-c\", \"(while :; do wget -q -O /www/up.tmp http://api:8080/version && mv /www/up.tmp /www/upstream; sleep 0.2; done) & exec httpd -f -p 8080 -h /www\"]\n",
            img = fleet.image
        )
    };
    s.write(&t.manifest(
        &services("start-first"),
        &[("api", "1.0.0"), ("client", "1.0.0")],
    ));
    s.apply_ok("test");
    let upstream = |want: &str| {
        // The client polls every 200 ms; 150 looks (30 s) bound a DNS that never answers.
        for _ in 0..150 {
            if t.get(19021, "/upstream").as_deref() == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    assert!(upstream("1.0.0"), "api reached by its alias");
    let net = format!("{}-test-front", s.platform);
    let api = inspect(&t.p, &format!("{}-test-api", s.platform));
    let aliases = api["NetworkSettings"]["Networks"][&net]["Aliases"].clone();
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "api")),
        "{aliases}"
    );

    // A start-first upgrade moves the alias to the new container.
    s.write(&t.manifest(
        &services("start-first"),
        &[("api", "1.1.0"), ("client", "1.0.0")],
    ));
    s.apply_ok("test");
    assert!(upstream("1.1.0"), "the alias follows the new api");
}

#[test]
fn promote_by_digest_on_podman() {
    let (fleet, p) = require_podman!();
    let t = PodmanScenario::new(&fleet, p, "promote");
    let s = &t.s;
    let m = format!(
        "platform: {pf}\nretain: 1\nservices:\n  web:\n    image: {img}\n    update: {{monitor: 1s}}\n\
         environments:\n  recette:\n    hosts:\n      p1: {{endpoint: \"{tcp}\", insecure: true}}\n    versions:\n      web: '1.1.0'\n\
         \x20 prod:\n    hosts:\n      p1: {{endpoint: \"{tcp}\", insecure: true}}\n    versions:\n      web: '1.0.0'\n",
        pf = s.platform,
        img = fleet.image,
        tcp = t.p.tcp
    );
    s.write(&m);
    s.apply_ok("recette");
    let digest = {
        let c = inspect(&t.p, &format!("{}-recette-web", s.platform));
        let image = c["Image"].as_str().unwrap().to_string();
        let (_, img) = api(&t.p, "GET", &format!("/images/{}/json", enc(&image)));
        img["RepoDigests"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|d| {
                d.as_str()?
                    .strip_prefix(&format!("{}@", fleet.image))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("a registry digest: {img}"))
    };
    let out = s.run(&["promote", "recette", "prod"]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = std::fs::read_to_string(s.path()).unwrap();
    assert!(
        after.contains(&format!("      web: '1.1.0@{digest}'")),
        "{after}"
    );
    s.apply_ok("prod");
    let c = inspect(&t.p, &format!("{}-prod-web", s.platform));
    assert_eq!(
        c["Config"]["Labels"]["io.fleetpin.version"],
        format!("1.1.0@{digest}").as_str()
    );
    assert_eq!(
        c["Image"],
        inspect(&t.p, &format!("{}-recette-web", s.platform))["Image"],
        "prod runs the image recette tested"
    );
    let out = s.run(&["audit", "--format", "json", "--exit-code"]);
    assert_eq!(out.code, 0, "{out:?}");
}
