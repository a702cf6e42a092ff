//! schemathesis (PyPI) against `fleetpin serve`'s `/api/v1/openapi.json` with a `view` token:
//! every generated request answered without a server error, every answer matching the document
//! (status codes, content types, bodies — error bodies included). Over the private fleet, with
//! an environment applied twice and pinned at a third version, so the audit, the plan, the
//! history, the logs and a service's releases answer real documents, not those of a fleet that
//! cannot be reached; the actions answer 403 to a `view` token, which is checked against its
//! error schema too. In CI a missing `st` or fleet fails the test (`.ci/run` installs `st`);
//! elsewhere it is skipped with a note. Platform `t-srvst`, ports 1964x. Named `fleet_*` because
//! it needs the fleet: tests/suites.sh runs such suites on the fleet, never beside the suites that
//! kill its hosts.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "schemathesis-S3cret-7731";

fn schemathesis() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("st"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis (`st`) is needed in CI: .ci/run installs it"
        );
        eprintln!("\n!!! SKIPPING: schemathesis (`st`) not on PATH\n");
    }
    found
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` with `auth` (Connection: close): the status and the body.
fn get(port: u16, auth: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let Some(st) = schemathesis() else { return };
    let (_, s) = fleet_scenario!("srvst");
    let (port, web_port) = (19640, 19641);
    let dir = s.dir.path();
    std::fs::write(dir.join("web.env"), format!("DB_PASSWORD={SECRET}\n")).unwrap();
    let manifest = |v: &str| {
        s.manifest(
            &["h1"],
            &[("web", web_port, "env_file: web.env")],
            &[("web", v)],
        ) + &format!(
            "  other:\n    hosts:\n      h2: {{endpoint: \"{}\", insecure: true}}\n    versions:\n      web: \"1.0.0\"\n",
            s.host("h2").tcp
        )
    };
    // Two applies (so a release is kept for rollback), then a pin the hosts do not run yet (so
    // the plan has a change and the audit a drift).
    s.write(&manifest("1.0.0"));
    s.apply_ok("test");
    s.write(&manifest("1.1.0"));
    s.apply_ok("test");
    s.write(&manifest("1.2.0"));
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let o = s.run(&[
        "serve",
        "token",
        "create",
        "--name",
        "v",
        "--role",
        "view",
        "--env",
        "test",
        "--config",
        "serve.yaml",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    let token = o.stdout.trim().to_string();
    let auth = format!("Bearer {token}");
    let _serve = Killed(
        support::run::fleetpin_in(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--config", "serve.yaml"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // What schemathesis will check is real: the fleet answers, the documents are not empty.
    let json = |path: &str| {
        let (code, body) = get(port, &auth, path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let audit = json("/api/v1/audit");
    assert!(
        audit.to_string().contains("1.1.0"),
        "the audit sees the fleet: {audit}"
    );
    let plan = json("/api/v1/environments/test/plan");
    assert!(plan["plan_id"].is_string(), "{plan}");
    assert!(plan.to_string().contains("1.2.0"), "a change: {plan}");
    let history = json("/api/v1/history?env=test");
    assert!(
        history.as_array().is_some_and(|h| h.len() >= 2),
        "{history}"
    );
    let releases = json("/api/v1/environments/test/services/web/releases");
    assert!(
        releases["hosts"][0]["retained"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "a kept release: {releases}"
    );
    let logs = json("/api/v1/environments/test/logs?tail=5");
    assert!(logs.is_array(), "{logs}");
    // A service the manifest does not have is not found, as for its releases (it was a 400,
    // which schemathesis reports as a schema-valid request rejected).
    for path in [
        "/api/v1/environments/test/logs?service=nope",
        "/api/v1/environments/test/logs/follow?service=nope",
        "/api/v1/environments/test/services/nope/releases",
        "/api/v1/environments/test/rollback?service=nope",
    ] {
        let (code, body) = get(port, &auth, path);
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
    }

    let out = Command::new(st)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/api/v1/openapi.json"))
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1"])
        .args(["--seed", "20261207"])
        .arg("-H")
        .arg(format!("Authorization: {auth}"))
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(SECRET), "{text}");
}
