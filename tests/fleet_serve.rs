//! `fleetpin serve` on the private fleet: the API over the very operations the CLI runs, behind
//! API tokens and rights per environment. A `view` token reads only its environment and gets 403
//! on every action; a `deploy` token applies exactly the plan it was shown (a plan that changed
//! since is refused) and rolls back, the commit authored by it with a `Fleetpin-Actor:` trailer;
//! a browser session (break-glass here) needs its CSRF token on every action; `/metrics` is
//! Prometheus text; no env_file value in any answer or event. Platform `t-srv`, ports 195xx.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::Scenario;

const SECRET: &str = "srv-S3cr3t-Value-6612";

/// A `fleetpin serve` process, killed on drop.
struct Server {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange (Connection: close): status, headers (lower-case names), body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let hs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = hs
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, hs, body)
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn token(s: &Scenario, name: &str, role: &str, env: &str) -> String {
    let o = s.run(&[
        "serve",
        "token",
        "create",
        "--name",
        name,
        "--role",
        role,
        "--env",
        env,
        "--config",
        "serve.yaml",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    o.stdout.trim().to_string()
}

fn start(s: &Scenario, port: u16) -> Server {
    let log = s.dir.path().join("serve.log");
    let child = support::run::wrapped(&[])
        .current_dir(s.dir.path())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            "serve.yaml",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(s.dir.path().join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Server { child, log }
}

/// Reads a server-sent event stream for `secs` seconds, then hangs up: what came.
fn sse_for(port: u16, path: &str, auth: &str, secs: u64) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&raw).to_string()
}

/// Waits for operation `id` to end; its snapshot.
fn wait(port: u16, auth: &str, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, _, body) = http(
            port,
            "GET",
            &format!("/api/v1/operations/{id}"),
            &[("Authorization", auth)],
            None,
        );
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["running"] == false {
            return v;
        }
        assert!(Instant::now() < deadline, "the operation ended: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `text` parsed by the Python `prometheus_client`'s OpenMetrics parser: each sample's name,
/// labels and value. None where python3 or the module is missing — which fails under CI, where
/// both must be there (the check must not pass by not running).
fn prometheus(text: &str) -> Option<Vec<(String, serde_json::Value, f64)>> {
    let script = "import sys, json\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nprint(json.dumps([[s.name, s.labels, s.value] for f in p(sys.stdin.read()) for s in f.samples]))";
    let ci = std::env::var_os("CI").is_some();
    let out = match Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        }) {
        Ok(out) => out,
        Err(e) => {
            assert!(!ci, "python3 could not be started, and CI needs it: {e}");
            return None;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named") {
        assert!(!ci, "prometheus_client is needed in CI: {err}");
        return None;
    }
    assert!(out.status.success(), "prometheus_client parses it: {err}");
    let samples: Vec<(String, serde_json::Value, f64)> =
        serde_json::from_slice(&out.stdout).expect("the samples as JSON");
    Some(samples)
}

/// The value of the sample `name` whose labels include `labels`, if there is one.
fn sample(
    samples: &[(String, serde_json::Value, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| *v)
}

#[test]
fn the_api_runs_the_operations_with_rights_per_environment() {
    let (_, s) = fleet_scenario!("srv");
    let (port, web_port, other_port) = (19501, 19502, 19503);
    let dir = s.dir.path();
    std::fs::write(dir.join("web.env"), format!("DB_PASSWORD={SECRET}\n")).unwrap();
    let manifest = |v: &str| {
        let m = s.manifest(
            &["h1"],
            &[("web", web_port, "env_file: web.env")],
            &[("web", v)],
        );
        m + &format!(
            "  other:\n    hosts:\n      h2: {{endpoint: \"{}\", insecure: true}}\n    versions:\n      web: \"1.0.0\"\n",
            s.host("h2").tcp
        )
    };
    let _ = other_port;
    std::fs::write(dir.join("serve.yaml"), "break_glass: true\n").unwrap();
    s.write(&manifest("1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    s.write(&manifest("1.1.0"));
    let viewer = token(&s, "viewer", "view", "test");
    let deployer = token(&s, "deployer", "deploy", "test");
    let srv = start(&s, port);
    let mut answers: Vec<String> = Vec::new();

    // Nothing but /healthz without a sign-in.
    assert_eq!(http(port, "GET", "/healthz", &[], None).0, 200);
    let (code, hs, _) = http(port, "GET", "/api/v1/audit", &[], None);
    assert_eq!(code, 401);
    assert!(
        hs.iter().any(|(k, v)| k == "content-security-policy"
            && v.contains("frame-ancestors 'none'")
            && !v.contains("unsafe-inline")),
        "{hs:?}"
    );

    // view: reads its environment only; every action 403.
    let v = bearer(&viewer);
    let (code, _, body) = http(port, "GET", "/api/v1/audit", &[("Authorization", &v)], None);
    assert_eq!(code, 200, "{body}");
    answers.push(body.clone());
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["hosts"]["environments"],
        serde_json::json!(["test"]),
        "{doc}"
    );
    assert!(doc["age_seconds"].is_number());
    for (method, path) in [
        ("POST", "/api/v1/environments/test/apply"),
        ("POST", "/api/v1/environments/test/rollback"),
        ("POST", "/api/v1/environments/test/unlock"),
    ] {
        let (code, _, body) = http(port, method, path, &[("Authorization", &v)], Some("{}"));
        assert_eq!(code, 403, "{path}: {body}");
    }
    let (code, _, _) = http(
        port,
        "GET",
        "/api/v1/environments/other/plan",
        &[("Authorization", &v)],
        None,
    );
    assert_eq!(code, 403, "view on test only");

    // deploy: the plan, then apply exactly it.
    let d = bearer(&deployer);
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/test/plan",
        &[("Authorization", &d)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    answers.push(body.clone());
    let plan: serde_json::Value = serde_json::from_str(&body).unwrap();
    let plan_id = plan["plan_id"].as_str().unwrap().to_string();
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/apply",
        &[("Authorization", &d)],
        Some(r#"{"plan_id": "0000000000000000"}"#),
    );
    assert_eq!(code, 409, "a plan that changed since is refused: {body}");
    // No plan named, nothing applied: an apply is always of the plan the person confirmed.
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/apply",
        &[("Authorization", &d)],
        Some("{}"),
    );
    assert_eq!(code, 400, "an apply without its plan_id: {body}");
    let error = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("plan_id"), "{body}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/apply",
        &[("Authorization", &d)],
        Some(&format!(r#"{{"plan_id": "{plan_id}"}}"#)),
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait(port, &d, &id);
    answers.push(done.to_string());
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));
    let (_, _, events) = http(
        port,
        "GET",
        &format!("/api/v1/operations/{id}/events"),
        &[("Authorization", &d)],
        None,
    );
    assert!(events.contains("event: end"), "{events}");
    answers.push(events);

    // Rollback through the API: the previous version serves, the commit is authored by the
    // token with the trailer.
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/rollback",
        &[("Authorization", &d)],
        Some("{}"),
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait(port, &d, &id);
    answers.push(done.to_string());
    assert_eq!(
        s.version("h1", web_port).as_deref(),
        Some("1.0.0"),
        "{done}"
    );
    let log = support::git::cli_as("ops", dir, &["log", "-1", "--format=%an <%ae>%n%B"], &[]);
    assert!(log.starts_with("token:deployer"), "{log}");
    assert!(
        log.contains("Fleetpin-Actor: token:deployer (tok_"),
        "{log}"
    );

    // A browser session (break-glass): every action needs its CSRF token.
    let (code, hs, body) = http(
        port,
        "POST",
        "/auth/break-glass",
        &[],
        Some(&format!(r#"{{"token": "{deployer}"}}"#)),
    );
    assert_eq!(code, 200, "{body}");
    let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = hs
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .unwrap();
    assert!(
        hs.iter()
            .any(|(k, v)| k == "set-cookie" && v.contains("HttpOnly") && v.contains("SameSite")),
        "{hs:?}"
    );
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/unlock",
        &[("Cookie", &cookie)],
        Some("{}"),
    );
    assert_eq!(code, 403, "no CSRF token: {body}");
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/unlock",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        Some("{}"),
    );
    assert_eq!(code, 200, "{body}");

    // /metrics: Prometheus text, the caller's environments only.
    let (code, _, metrics) = http(port, "GET", "/metrics", &[("Authorization", &v)], None);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("fleetpin_service_info{")
            && metrics.contains("environment=\"test\"")
            && !metrics.contains("environment=\"other\""),
        "{metrics}"
    );
    let _ = prometheus(&metrics);
    answers.push(metrics);

    // Logs of the environment, secret values masked (none in the answer).
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/test/logs?tail=20",
        &[("Authorization", &v)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.trim_start().starts_with('['), "{body}");
    answers.push(body);

    // The OpenAPI document is served and names the paths.
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/openapi.json",
        &[("Authorization", &v)],
        None,
    );
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["paths"]["/api/v1/environments/{env}/apply"].is_object());

    // History, as an answer like the others.
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/history?env=test",
        &[("Authorization", &v)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    answers.push(body);
    // The server's own output (stdout and stderr) is searched like its answers.
    answers.push(std::fs::read_to_string(&srv.log).unwrap_or_default());
    answers.push(std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default());
    for a in &answers {
        assert!(!a.contains(SECRET), "a secret value in an answer:\n{a}");
    }
}

/// `serve` started with `--repo` in a directory with no manifest: it follows a remote it clones
/// into its state directory, plans from the commit a teammate just pushed, applies it, and its
/// rollback commit reaches the remote, authored by the token with the trailer.
#[test]
fn serve_follows_a_remote_reference_and_pushes_what_it_commits() {
    let (_, s) = fleet_scenario!("srvrepo");
    let (port, web_port) = (19504, 19505);
    let dir = s.dir.path();
    let manifest = |v: &str| s.manifest(&["h1"], &[("web", web_port, "")], &[("web", v)]);
    s.write(&manifest("1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    let remote = dir.join("remote.git");
    support::git::cli_as(
        "ops",
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
        &[],
    );
    support::git::cli_as(
        "ops",
        dir,
        &[
            "push",
            "--quiet",
            remote.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
        &[],
    );

    // The console's home: serve.yaml alone.
    let home = dir.join("console");
    std::fs::create_dir(&home).unwrap();
    let url = format!("file://{}", remote.display());
    std::fs::write(home.join("serve.yaml"), "state_dir: state\n").unwrap();
    let created = support::run::output(support::run::fleetpin_in(&home).args([
        "serve", "token", "create", "--name", "deployer", "--role", "deploy", "--env", "test",
    ]));
    assert_eq!(created.code, 0, "{created:?}");
    let d = bearer(created.stdout.trim());
    let log = home.join("serve.log");
    let child = support::run::wrapped(&[])
        .current_dir(&home)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--repo",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(home.join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    let _srv = Server { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let err = std::fs::read_to_string(home.join("serve.err")).unwrap_or_default();
        assert!(Instant::now() < deadline, "serve did not listen: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A teammate pushes 1.1.0: the console's plan is made from that commit.
    s.write(&manifest("1.1.0"));
    let pushed = s.head();
    support::git::cli_as(
        "ops",
        dir,
        &[
            "push",
            "--quiet",
            remote.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
        &[],
    );
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/test/plan",
        &[("Authorization", &d)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let plan: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plan["commit"], pushed.as_str(), "{plan}");
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/apply",
        &[("Authorization", &d)],
        Some(&format!(
            r#"{{"plan_id": "{}", "commit": "{pushed}"}}"#,
            plan["plan_id"].as_str().unwrap()
        )),
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait(port, &d, &id);
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));

    // The rollback's plan before it: where h1 goes back to, from which kept container, on
    // which commit; a service the environment does not pin is refused in the CLI's words.
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/test/rollback?service=web",
        &[("Authorization", &d)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let rb: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rb["commit"].as_str(), Some(pushed.as_str()), "{body}");
    assert_eq!(rb["commits"], true, "{body}");
    let steps = rb["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{body}");
    assert_eq!(
        (
            steps[0]["host"].as_str(),
            steps[0]["from"].as_str(),
            steps[0]["to"].as_str(),
            steps[0]["how"].as_str()
        ),
        (Some("h1"), Some("1.1.0"), Some("1.0.0"), Some("relaunch")),
        "{body}"
    );
    assert!(
        steps[0]["container"]
            .as_str()
            .is_some_and(|c| c.contains("web")),
        "{body}"
    );
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/test/rollback?service=nope",
        &[("Authorization", &d)],
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nope"), "{body}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));

    // Rollback: its commit is on the remote, authored by the token, with the trailer.
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/rollback",
        &[("Authorization", &d)],
        Some("{}"),
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait(port, &d, &id);
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    let on_remote = support::git::cli_as(
        "ops",
        dir,
        &[
            "--git-dir",
            remote.to_str().unwrap(),
            "log",
            "-1",
            "--format=%P%n%an%n%B",
            "main",
        ],
        &[],
    );
    assert!(
        on_remote.starts_with(&pushed),
        "the rollback commit follows 1.1.0's: {on_remote}"
    );
    assert!(on_remote.contains("\ntoken:deployer\n"), "{on_remote}");
    assert!(
        on_remote.contains("Fleetpin-Actor: token:deployer (tok_"),
        "{on_remote}"
    );
    let pin = support::git::cli_as(
        "ops",
        dir,
        &[
            "--git-dir",
            remote.to_str().unwrap(),
            "show",
            "main:platform.yaml",
        ],
        &[],
    );
    assert!(
        pin.contains("web: \"1.0.0\"") || pin.contains("web: 1.0.0"),
        "{pin}"
    );
}

/// An environment whose SOPS files the console has no key for: listed with `secrets_unchecked`
/// and no right to act, its plan made without comparing secret values (the running container,
/// deployed with the key, is `unchanged`, not "secret values changed"), every action refused
/// with 409 naming `age_identities`. With its identity in serve.yaml, the same token may act.
/// No answer holds a secret value.
#[test]
fn without_the_environments_key_the_console_plans_unchecked_and_offers_no_action() {
    let (_, s) = fleet_scenario!("srvsops");
    let sops = require_sops!();
    let (port, web_port) = (19506, 19507);
    let dir = s.dir.path();
    // The answers beyond the ones asserted on, and the server's own output so far: searched for
    // the secret value like every other answer.
    let reads = |auth: &str, answers: &mut Vec<String>| {
        for path in ["/api/v1/audit", "/api/v1/history?env=test", "/metrics"] {
            let (code, _, body) = http(port, "GET", path, &[("Authorization", auth)], None);
            assert_eq!(code, 200, "{path}: {body}");
            answers.push(body);
        }
        for log in ["serve.log", "serve.err"] {
            answers.push(std::fs::read_to_string(dir.join(log)).unwrap_or_default());
        }
    };
    let key = sops.key(dir, "ops");
    std::fs::create_dir(dir.join("secrets")).unwrap();
    const VALUE: &str = "srv-sops-S3cr3t-3307";
    sops.encrypt(
        &dir.join("secrets"),
        "web.env",
        &format!("WEB_SECRET={VALUE}\n"),
        &[&key],
    );
    // `talker` prints its secret every second: its logs must show it masked, or not at all.
    let talker = "env_file: secrets/web.env\ncommand: [\"sh\", \"-c\", \"httpd -p 8080 -h /www; while true; do echo password=$WEB_SECRET; sleep 1; done\"]";
    let m = s.manifest(
        &["h1"],
        &[
            ("web", web_port, "env_file: secrets/web.env"),
            ("talker", web_port + 100, talker),
        ],
        &[("web", "1.0.0"), ("talker", "1.0.0")],
    );
    std::fs::write(s.path(), &m).unwrap();
    support::git::cli_as("ops", dir, &["add", "-A"], &[]);
    support::git::cli_as(
        "ops",
        dir,
        &["commit", "-q", "-m", "web with a SOPS env_file"],
        &[],
    );
    let with_key = [("SOPS_AGE_KEY_FILE", key.file.to_str().unwrap())];
    let o = s.run_with(&["apply", "test", "--yes"], &with_key);
    assert_eq!(o.code, 0, "{o:?}");
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let deployer = bearer(&token(&s, "deployer", "deploy", "test"));
    let mut answers = Vec::new();
    let get = |path: &str, answers: &mut Vec<String>| {
        let (code, _, body) = http(port, "GET", path, &[("Authorization", &deployer)], None);
        assert_eq!(code, 200, "{path}: {body}");
        answers.push(body.clone());
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };

    {
        // The console is started with the key in its environment: serve reads keys from
        // serve.yaml per environment, never from its own variables.
        let log = dir.join("serve.log");
        let child = support::run::wrapped(&[])
            .current_dir(dir)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
                "serve.yaml",
            ])
            .env("SOPS_AGE_KEY_FILE", &key.file)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("serve.err")).unwrap())
            .spawn()
            .unwrap();
        let _srv = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "serve did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let envs = get("/api/v1/environments", &mut answers);
        let test = &envs[0];
        assert_eq!(test["rights"], serde_json::json!(["view"]), "{envs}");
        assert!(
            test["secrets_unchecked"]
                .as_str()
                .unwrap()
                .contains("age_identities")
                && test["secrets_unchecked"]
                    .as_str()
                    .unwrap()
                    .contains("secrets/web.env"),
            "{envs}"
        );
        let plan = get("/api/v1/environments/test/plan", &mut answers);
        assert!(
            plan["secrets_unchecked"]
                .as_str()
                .unwrap()
                .contains("secrets not checked"),
            "{plan}"
        );
        assert!(
            plan["hosts"][0]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["kind"] == "unchanged"),
            "{plan}"
        );
        // Logs it could not mask: not shown.
        let (code, _, body) = http(
            port,
            "GET",
            "/api/v1/environments/test/logs?service=talker",
            &[("Authorization", &deployer)],
            None,
        );
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("talker") && body.contains("mask"), "{body}");
        answers.push(body);
        for (path, body) in [
            (
                "/api/v1/environments/test/apply",
                format!(r#"{{"plan_id": "{}"}}"#, plan["plan_id"].as_str().unwrap()),
            ),
            ("/api/v1/environments/test/rollback", "{}".to_string()),
            ("/api/v1/environments/test/unlock", "{}".to_string()),
        ] {
            let (code, _, body) = http(
                port,
                "POST",
                path,
                &[("Authorization", &deployer)],
                Some(&body),
            );
            assert_eq!(code, 409, "{path}: {body}");
            assert!(body.contains("age_identities"), "{body}");
            answers.push(body);
        }
        reads(&deployer, &mut answers);
    }

    // With the identity in serve.yaml: checked, and the token may act.
    std::fs::write(
        dir.join("serve.yaml"),
        format!("age_identities:\n  test: {}\n", key.file.display()),
    )
    .unwrap();
    let _srv = start(&s, port);
    let envs = get("/api/v1/environments", &mut answers);
    assert_eq!(
        envs[0]["rights"],
        serde_json::json!(["view", "deploy"]),
        "{envs}"
    );
    assert!(envs[0].get("secrets_unchecked").is_none(), "{envs}");
    let plan = get("/api/v1/environments/test/plan", &mut answers);
    assert!(plan.get("secrets_unchecked").is_none(), "{plan}");
    assert!(
        plan["hosts"][0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "unchanged"),
        "{plan}"
    );
    let (code, _, body) = http(
        port,
        "POST",
        "/api/v1/environments/test/apply",
        &[("Authorization", &deployer)],
        Some(&format!(
            r#"{{"plan_id": "{}"}}"#,
            plan["plan_id"].as_str().unwrap()
        )),
    );
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait(port, &deployer, &id);
    assert!(done["outcome"]["ok"] == true, "{done}");
    answers.push(done.to_string());
    // With the key: the lines come, the value masked, in the last lines and followed live.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _, body) = http(
            port,
            "GET",
            "/api/v1/environments/test/logs?service=talker&tail=5",
            &[("Authorization", &deployer)],
            None,
        );
        assert_eq!(code, 200, "{body}");
        answers.push(body.clone());
        if body.contains("password=***") {
            break;
        }
        assert!(Instant::now() < deadline, "no masked line: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let live = sse_for(
        port,
        "/api/v1/environments/test/logs/follow?service=talker&tail=0",
        &deployer,
        4,
    );
    assert!(
        live.contains("text/event-stream")
            && live.contains("event: line")
            && live.contains("password=***"),
        "{live}"
    );
    answers.push(live);
    reads(&deployer, &mut answers);
    for a in &answers {
        assert!(!a.contains(VALUE), "a secret value in an answer: {a}");
    }
}

/// The console holds every environment's keys: it runs the manifest's hooks only from a commit
/// that passes the environment's signature check, and with a scrubbed environment. On an
/// environment without `trust: {signed: true}` an apply from the console is blocked before
/// anything changes (the pre hook was not run); once the environment takes signed commits and
/// HEAD is signed by an allowed signer, the hook runs — and sees none of the console's own
/// variables.
#[test]
fn the_console_runs_hooks_only_from_signed_commits_with_a_scrubbed_environment() {
    let (_, s) = fleet_scenario!("srvhook");
    let (port, web_port) = (19508, 19509);
    let dir = s.dir.path();
    let keys = tempfile::tempdir().unwrap();
    let ops = support::git::ssh_key(keys.path(), "ops");
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("ops@acme.example {}\n", support::git::public(&ops)),
    )
    .unwrap();
    let git = |args: &[&str]| {
        support::git::cli_as("ops", dir, args, &[]);
    };
    git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        allowed.to_str().unwrap(),
    ]);
    git(&["config", "gpg.format", "ssh"]);
    git(&["config", "user.signingkey", ops.to_str().unwrap()]);
    git(&["config", "user.email", "ops@acme.example"]);
    let hooks = "hooks:\n  pre_apply: 'env > pre-apply.env'\n";
    let manifest = |v: &str, signed: bool| {
        let m = s
            .manifest(&["h1"], &[("web", web_port, "")], &[("web", v)])
            .replace("retain: 2\n", &format!("retain: 2\n{hooks}"));
        if signed {
            m.replace(
                "  test:\n",
                "  test:\n    trust: {signed: true, signers: [ops@acme.example]}\n",
            )
        } else {
            m
        }
    };
    let commit = |m: &str, msg: &str| {
        std::fs::write(s.path(), m).unwrap();
        git(&["add", "platform.yaml"]);
        git(&["commit", "-q", "-S", "-m", msg]);
    };
    commit(&manifest("1.0.0", false), "1.0.0");
    std::fs::remove_file(dir.join("pre-apply.env")).ok();
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(dir.join("pre-apply.env").exists(), "the CLI runs the hook");
    std::fs::remove_file(dir.join("pre-apply.env")).unwrap();
    commit(&manifest("1.1.0", false), "1.1.0, unsigned environment");
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let deployer = bearer(&token(&s, "deployer", "deploy", "test"));

    let apply = |port: u16| {
        let (code, _, body) = http(
            port,
            "GET",
            "/api/v1/environments/test/plan",
            &[("Authorization", &deployer)],
            None,
        );
        assert_eq!(code, 200, "{body}");
        let plan: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (code, _, body) = http(
            port,
            "POST",
            "/api/v1/environments/test/apply",
            &[("Authorization", &deployer)],
            Some(&format!(
                r#"{{"plan_id": "{}"}}"#,
                plan["plan_id"].as_str().unwrap()
            )),
        );
        assert_eq!(code, 202, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["operation"]
            .as_str()
            .unwrap()
            .to_string();
        wait(port, &deployer, &id)
    };
    let log = dir.join("serve.log");
    let child = support::run::wrapped(&[])
        .current_dir(dir)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            "serve.yaml",
        ])
        .env("CONSOLE_ONLY_SECRET", "console-S3cr3t-0042")
        .env("FLEETPIN_OIDC_CLIENT_SECRET", "oidc-S3cr3t-0043")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("serve.err")).unwrap())
        .spawn()
        .unwrap();
    let _srv = Server { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Unsigned environment: blocked, the hook not run, nothing changed.
    let done = apply(port);
    let error = done["error"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("pre_apply hook was not run") && error.contains("trust: {signed: true}"),
        "{done}"
    );
    assert!(!dir.join("pre-apply.env").exists());
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));

    // Signed environment, HEAD signed by ops: the hook runs, scrubbed.
    commit(&manifest("1.1.0", true), "1.1.0, signed environment");
    let done = apply(port);
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));
    let env = std::fs::read_to_string(dir.join("pre-apply.env")).unwrap();
    assert!(env.contains("FLEETPIN_ENVIRONMENT=test"), "{env}");
    assert!(env.contains("PATH="), "{env}");
    for leaked in [
        "CONSOLE_ONLY_SECRET",
        "console-S3cr3t",
        "oidc-S3cr3t",
        "HOME=",
    ] {
        assert!(!env.contains(leaked), "{leaked} reached the hook:\n{env}");
    }
}

/// A token valid on every environment (no `--env`).
fn token_everywhere(s: &Scenario, name: &str, role: &str) -> String {
    let o = s.run(&[
        "serve",
        "token",
        "create",
        "--name",
        name,
        "--role",
        role,
        "--config",
        "serve.yaml",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    o.stdout.trim().to_string()
}

/// POSTs `body` to `path` with `auth`; the status and the answer as JSON (`Null` if not JSON).
fn post(port: u16, auth: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (code, _, text) = http(port, "POST", path, &[("Authorization", auth)], Some(body));
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GETs the plan of `env` with `auth`: the plan document, its `plan_id` and `commit`.
fn plan_of(port: u16, auth: &str, env: &str) -> serde_json::Value {
    let (code, _, body) = http(
        port,
        "GET",
        &format!("/api/v1/environments/{env}/plan"),
        &[("Authorization", auth)],
        None,
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// An action answered 202: waits for its operation to end and returns its snapshot.
fn finished(port: u16, auth: &str, (code, answer): (u16, serde_json::Value)) -> serde_json::Value {
    assert_eq!(code, 202, "{answer}");
    wait(port, auth, answer["operation"].as_str().unwrap())
}

/// An action applies exactly the plan it was confirmed on: a plan shown before the reference
/// moved is refused (409) and nothing changes on the host; a rollback or a promote naming the
/// commit before is refused the same way. An environment the caller may not see is not named
/// to it, not even in the list of those there are.
#[test]
fn an_action_on_a_plan_or_commit_that_changed_since_is_refused() {
    let (_, s) = fleet_scenario!("srvstale");
    let (port, web_port) = (19510, 19511);
    let dir = s.dir.path();
    let manifest = |v: &str| {
        s.manifest(&["h1"], &[("web", web_port, "")], &[("web", v)])
            + &format!(
                "  other:\n    hosts:\n      h2: {{endpoint: \"{}\", insecure: true}}\n    versions:\n      web: \"1.0.0\"\n",
                s.host("h2").tcp
            )
    };
    s.write(&manifest("1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    s.write(&manifest("1.1.0"));
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let viewer = bearer(&token(&s, "viewer", "view", "test"));
    let admin = bearer(&token_everywhere(&s, "admin", "admin"));
    let _srv = start(&s, port);
    let stable = format!("{}-test-web", s.platform);
    let id_before = s.inspect("h1", &stable).id.unwrap();

    // The plan shown, then a teammate commits another pin: the reference moved.
    let shown = plan_of(port, &admin, "test");
    let (shown_id, shown_commit) = (
        shown["plan_id"].as_str().unwrap().to_string(),
        shown["commit"].as_str().unwrap().to_string(),
    );
    s.write(&manifest("2.0.0"));
    for body in [
        format!(r#"{{"plan_id": "{shown_id}"}}"#),
        format!(r#"{{"plan_id": "{shown_id}", "commit": "{shown_commit}"}}"#),
    ] {
        let (code, answer) = post(port, &admin, "/api/v1/environments/test/apply", &body);
        assert_eq!(code, 409, "{body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("plan again")
                || answer["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("changed"),
            "{answer}"
        );
    }
    assert_eq!(
        s.inspect("h1", &stable).id.unwrap(),
        id_before,
        "nothing changed on the host"
    );
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    // Rollback and promote naming the commit before: refused the same way.
    for (path, body) in [
        (
            "/api/v1/environments/test/rollback",
            format!(r#"{{"commit": "{shown_commit}"}}"#),
        ),
        (
            "/api/v1/environments/test/rollback",
            format!(r#"{{"commit": "{}"}}"#, &shown_commit[..7]),
        ),
        (
            "/api/v1/promote",
            format!(r#"{{"from": "test", "to": "other", "commit": "{shown_commit}"}}"#),
        ),
    ] {
        let (code, answer) = post(port, &admin, path, &body);
        assert_eq!(code, 409, "{path} {body}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("moved"),
            "{answer}"
        );
    }
    // An abbreviation too short to name one commit is not taken as the commit shown.
    let now = s.head();
    let (code, answer) = post(
        port,
        &admin,
        "/api/v1/environments/test/rollback",
        &format!(r#"{{"commit": "{}"}}"#, &now[..2]),
    );
    assert_eq!(code, 409, "{answer}");
    assert_eq!(s.inspect("h1", &stable).id.unwrap(), id_before);

    // The plan made now, confirmed with its id and commit: applied.
    let fresh = plan_of(port, &admin, "test");
    assert_eq!(fresh["commit"], now.as_str(), "{fresh}");
    assert_ne!(fresh["plan_id"], shown["plan_id"]);
    let done = finished(
        port,
        &admin,
        post(
            port,
            &admin,
            "/api/v1/environments/test/apply",
            &format!(
                r#"{{"plan_id": "{}", "commit": "{now}"}}"#,
                fresh["plan_id"].as_str().unwrap()
            ),
        ),
    );
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("2.0.0"));

    // An environment that does not exist, asked by a `view` token on `test`: the answer does
    // not name `other`, which the token may not see.
    for path in [
        "/api/v1/environments/nope/plan",
        "/api/v1/environments/nope/logs",
        "/api/v1/history?env=nope",
        "/api/v1/environments/nope/services/web/releases",
        "/api/v1/environments/nope/commits/0123456789ab/diff",
    ] {
        let (code, _, body) = http(port, "GET", path, &[("Authorization", &viewer)], None);
        assert!(code == 403 || code == 404, "{path}: {code} {body}");
        assert!(!body.contains("other"), "{path}: {body}");
    }
    for (path, body) in [
        ("/api/v1/environments/nope/apply", r#"{"plan_id": "x"}"#),
        ("/api/v1/environments/nope/unlock", "{}"),
        ("/api/v1/promote", r#"{"from": "test", "to": "nope"}"#),
    ] {
        let (code, answer) = post(port, &viewer, path, body);
        assert_eq!(code, 403, "{path}: {answer}");
        assert!(!answer.to_string().contains("other"), "{path}: {answer}");
    }
    // Who may see every environment is told which there are.
    let (code, _, body) = http(
        port,
        "GET",
        "/api/v1/environments/nope/plan",
        &[("Authorization", &admin)],
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("test, other"), "{body}");
}

/// The table of docs/console.md ("Who may do what"), route by route through HTTP, with a
/// `view`, a `deploy` and an `admin` token on `test` and none on `other`.
#[test]
fn every_route_answers_as_the_rights_table_says() {
    let (_, s) = fleet_scenario!("srvrights");
    let (port, web_port) = (19512, 19513);
    let dir = s.dir.path();
    let manifest = |v: &str| {
        s.manifest(&["h1"], &[("web", web_port, "")], &[("web", v)])
            + &format!(
                "  other:\n    hosts:\n      h2: {{endpoint: \"{}\", insecure: true}}\n    versions:\n      web: \"1.0.0\"\n",
                s.host("h2").tcp
            )
    };
    s.write(&manifest("1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    s.write(&manifest("1.1.0"));
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let tokens = [
        ("view", bearer(&token(&s, "viewer", "view", "test"))),
        ("deploy", bearer(&token(&s, "deployer", "deploy", "test"))),
        ("admin", bearer(&token(&s, "admin", "admin", "test"))),
    ];
    let _srv = start(&s, port);
    let get = |auth: &str, path: &str| {
        let (code, _, body) = http(port, "GET", path, &[("Authorization", auth)], None);
        (code, body)
    };

    // Reads: every role reads `test`, none reads `other` (403), and lists leave it out.
    for (role, auth) in &tokens {
        for path in [
            "/api/v1/whoami",
            "/api/v1/environments",
            "/api/v1/audit",
            "/api/v1/history",
            "/api/v1/history?env=test",
            "/api/v1/environments/test/plan",
            "/api/v1/environments/test/logs?tail=5",
            "/metrics",
        ] {
            let (code, body) = get(auth, path);
            assert_eq!(code, 200, "{role} {path}: {body}");
            assert!(
                !body.contains("\"other\"") && !body.contains("environment=\"other\""),
                "{role} {path} shows other: {body}"
            );
        }
        for path in [
            "/api/v1/history?env=other",
            "/api/v1/environments/other/plan",
            "/api/v1/environments/other/logs?tail=5",
            "/api/v1/environments/other/logs/follow?tail=0",
        ] {
            let (code, body) = get(auth, path);
            assert_eq!(code, 403, "{role} {path}: {body}");
        }
        let (_, body) = get(auth, "/api/v1/environments");
        let envs: serde_json::Value = serde_json::from_str(&body).unwrap();
        let want: &[&str] = match *role {
            "view" => &["view"],
            "deploy" => &["view", "deploy"],
            _ => &["view", "deploy", "override-window"],
        };
        assert_eq!(envs[0]["rights"], serde_json::json!(want), "{role}: {envs}");
        assert_eq!(envs.as_array().unwrap().len(), 1, "{role}: {envs}");
    }
    let [(_, view), (_, deploy), (_, admin)] = &tokens;
    let plan_id = |auth: &str| {
        plan_of(port, auth, "test")["plan_id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // view: 403 on every action, promote included, whichever way.
    let id = plan_id(view);
    for (path, body) in [
        (
            "/api/v1/environments/test/apply",
            format!(r#"{{"plan_id": "{id}"}}"#),
        ),
        ("/api/v1/environments/test/rollback", "{}".into()),
        ("/api/v1/environments/test/unlock", "{}".into()),
        (
            "/api/v1/environments/other/apply",
            format!(r#"{{"plan_id": "{id}"}}"#),
        ),
        ("/api/v1/environments/other/unlock", "{}".into()),
        (
            "/api/v1/promote",
            r#"{"from": "test", "to": "other"}"#.into(),
        ),
        (
            "/api/v1/promote",
            r#"{"from": "other", "to": "test"}"#.into(),
        ),
        (
            "/api/v1/promote",
            r#"{"from": "test", "to": "test"}"#.into(),
        ),
    ] {
        let (code, answer) = post(port, view, path, &body);
        assert_eq!(code, 403, "view {path} {body}: {answer}");
    }

    // deploy: no override of a window (403 as soon as it asks), nothing on `other`, promote
    // needs view on FROM and deploy on TO.
    let id = plan_id(deploy);
    for (path, body) in [
        (
            "/api/v1/environments/test/apply",
            format!(r#"{{"plan_id": "{id}", "override_window": "hotfix"}}"#),
        ),
        (
            "/api/v1/environments/test/rollback",
            r#"{"override_window": "hotfix"}"#.into(),
        ),
        (
            "/api/v1/environments/test/unlock",
            r#"{"override_window": "hotfix"}"#.into(),
        ),
        (
            "/api/v1/promote",
            r#"{"from": "test", "to": "test", "override_window": "hotfix"}"#.into(),
        ),
        (
            "/api/v1/environments/other/apply",
            format!(r#"{{"plan_id": "{id}"}}"#),
        ),
        ("/api/v1/environments/other/rollback", "{}".into()),
        ("/api/v1/environments/other/unlock", "{}".into()),
        (
            "/api/v1/promote",
            r#"{"from": "test", "to": "other"}"#.into(),
        ),
        (
            "/api/v1/promote",
            r#"{"from": "other", "to": "test"}"#.into(),
        ),
    ] {
        let (code, answer) = post(port, deploy, path, &body);
        assert_eq!(code, 403, "deploy {path} {body}: {answer}");
    }
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    // … and acts on `test`: apply, rollback, unlock; promote passes the rights (test to test
    // is then refused by the operation itself).
    let done = finished(
        port,
        deploy,
        post(
            port,
            deploy,
            "/api/v1/environments/test/apply",
            &format!(r#"{{"plan_id": "{id}"}}"#),
        ),
    );
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));
    // A `view` token follows the operations of its environment.
    let (code, body) = get(
        view,
        &format!("/api/v1/operations/{}", done["id"].as_str().unwrap()),
    );
    assert_eq!(code, 200, "{body}");
    let done = finished(
        port,
        deploy,
        post(port, deploy, "/api/v1/environments/test/rollback", "{}"),
    );
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    let (code, answer) = post(port, deploy, "/api/v1/environments/test/unlock", "{}");
    assert_eq!(code, 200, "{answer}");
    let same = |done: serde_json::Value| {
        let error = done["error"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains("same environment"), "{done}");
    };
    same(finished(
        port,
        deploy,
        post(
            port,
            deploy,
            "/api/v1/promote",
            r#"{"from": "test", "to": "test"}"#,
        ),
    ));

    // admin: everything on `test`, overriding a window included; still nothing on `other`.
    s.write(&manifest("1.1.0"));
    let id = plan_id(admin);
    let done = finished(
        port,
        admin,
        post(
            port,
            admin,
            "/api/v1/environments/test/apply",
            &format!(r#"{{"plan_id": "{id}", "override_window": "hotfix"}}"#),
        ),
    );
    assert!(done["outcome"]["ok"] == true, "{done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.1.0"));
    let done = finished(
        port,
        admin,
        post(
            port,
            admin,
            "/api/v1/environments/test/rollback",
            r#"{"override_window": "hotfix"}"#,
        ),
    );
    assert!(done["outcome"]["ok"] == true, "{done}");
    let (code, answer) = post(
        port,
        admin,
        "/api/v1/environments/test/unlock",
        r#"{"override_window": "hotfix"}"#,
    );
    assert_eq!(code, 200, "{answer}");
    same(finished(
        port,
        admin,
        post(
            port,
            admin,
            "/api/v1/promote",
            r#"{"from": "test", "to": "test", "override_window": "hotfix"}"#,
        ),
    ));
    for (path, body) in [
        (
            "/api/v1/environments/other/apply",
            format!(r#"{{"plan_id": "{id}"}}"#),
        ),
        ("/api/v1/environments/other/unlock", "{}".into()),
        (
            "/api/v1/promote",
            r#"{"from": "test", "to": "other"}"#.into(),
        ),
        (
            "/api/v1/promote",
            r#"{"from": "other", "to": "test"}"#.into(),
        ),
    ] {
        let (code, answer) = post(port, admin, path, &body);
        assert_eq!(code, 403, "admin {path} {body}: {answer}");
    }
}

/// An apply through the API whose release fails its gate (it never gets healthy) is counted
/// as failed in /metrics, not as done.
#[test]
fn a_failed_apply_is_counted_as_failed_in_metrics() {
    let (_, s) = fleet_scenario!("srvfail");
    let (port, web_port) = (19514, 19515);
    let dir = s.dir.path();
    s.write(&s.manifest(&["h1"], &[("web", web_port, "")], &[("web", "1.0.0")]));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    s.write(&s.manifest(&["h1"], &[("web", web_port, "")], &[("web", "broken")]));
    std::fs::write(dir.join("serve.yaml"), "{}\n").unwrap();
    let deploy = bearer(&token(&s, "deployer", "deploy", "test"));
    let _srv = start(&s, port);
    let id = plan_of(port, &deploy, "test")["plan_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = finished(
        port,
        &deploy,
        post(
            port,
            &deploy,
            "/api/v1/environments/test/apply",
            &format!(r#"{{"plan_id": "{id}"}}"#),
        ),
    );
    assert!(done["outcome"]["ok"] == false, "the gate failed: {done}");
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    let (code, _, text) = http(port, "GET", "/metrics", &[("Authorization", &deploy)], None);
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains(r#"fleetpin_operations_total{command="apply",outcome="failed"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"outcome="done""#), "{text}");
    if let Some(samples) = prometheus(&text) {
        assert_eq!(
            sample(
                &samples,
                "fleetpin_operations_total",
                &[("command", "apply"), ("outcome", "failed")]
            ),
            Some(1.0),
            "{samples:?}"
        );
    }
}

/// `fleetpin agent --metrics-listen`: after its syncs, the scrape says the last one's result
/// and when it was, and how long the sync itself took — not the time since the sync before,
/// which is the interval.
#[test]
fn the_agents_metrics_measure_the_sync_itself() {
    use support::agent::{Agent, bridge_address, wait_for};
    let (_, s) = fleet_scenario!("srvagent");
    let (web_port, metrics_port) = (19516, 19517);
    let interval = 6.0;
    let dir = s.dir.path();
    let bare = dir.join("served").join("platform.git");
    support::git::cli_as(
        "ops",
        std::path::Path::new("/"),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
        &[],
    );
    s.write(
        &s.manifest(&["h1"], &[("web", web_port, "")], &[("web", "1.0.0")])
            .replace("  test:\n", "  test:\n    pull: true\n"),
    );
    support::git::cli_as(
        "ops",
        dir,
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
        &[],
    );
    let _ = bridge_address;
    let args: Vec<String> = [
        "agent",
        "--repo",
        &format!("file://{}", bare.display()),
        "--branch",
        "main",
        "--env",
        "test",
        "--host",
        "h1",
        "--endpoint",
        &s.host("h1").unix,
        "--interval",
        &format!("{interval}s"),
        "--health-timeout",
        "20",
        "--cache-dir",
        dir.join("cache-h1").to_str().unwrap(),
        "--metrics-listen",
        &format!("0.0.0.0:{metrics_port}"),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let agent = Agent::start(&s.host("h1").netns, &args, &[], dir.join("agent-h1.log"));
    // The agent listens in h1's namespace: reached at h1's address.
    let addr = s.host("h1").addr.clone();
    let scrape = || -> Option<String> {
        let mut c = TcpStream::connect((addr.as_str(), metrics_port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut raw = String::new();
        c.read_to_string(&mut raw).ok()?;
        let (_, body) = raw.split_once("\r\n\r\n")?;
        Some(body.to_string())
    };
    // Two in-sync syncs after the first one converged: the last one was quick.
    let mut text = String::new();
    wait_for(
        Duration::from_secs(120),
        "two in-sync syncs",
        &[&agent],
        || {
            text = scrape().unwrap_or_default();
            text.lines().any(|l| {
                l.starts_with(r#"fleetpin_agent_syncs_total{result="in-sync"}"#)
                    && l.split_whitespace()
                        .last()
                        .and_then(|v| v.parse::<f64>().ok())
                        >= Some(2.0)
            })
        },
    );
    assert_eq!(s.version("h1", web_port).as_deref(), Some("1.0.0"));
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let took = value("fleetpin_agent_sync_duration_seconds");
    assert!(
        took < interval / 2.0,
        "an in-sync sync took {took} s, with syncs every {interval} s:\n{text}"
    );
    assert_eq!(value("fleetpin_agent_in_sync"), 1.0, "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = value("fleetpin_agent_last_sync_timestamp_seconds");
    assert!(now - last < 3.0 * interval, "last sync {last}, now {now}");
    if let Some(samples) = prometheus(&text) {
        assert!(
            sample(
                &samples,
                "fleetpin_agent_syncs_total",
                &[("result", "in-sync")]
            ) >= Some(2.0),
            "{samples:?}"
        );
        assert_eq!(
            sample(&samples, "fleetpin_agent_sync_duration_seconds", &[]),
            Some(took)
        );
    }
}
