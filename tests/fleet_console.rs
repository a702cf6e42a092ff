//! The console's pages in a real headless Chromium (tests/console/browser.py, selenium and
//! Debian's chromium-driver) against `fleetpin serve` on the private fleet, signing in through
//! the real OpenID provider (tests/oidc): the matrix agrees with `fleetpin audit --format json`,
//! a container stopped by hand shows within the refresh interval, a rollback from the page serves
//! the previous version and writes a commit authored by the person who clicked, a `view` person
//! sees no action, and axe-core finds no serious or critical violation. Platform `t-console`,
//! ports 1952x. Under CI a missing browser, driver or selenium fails the test.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::oidc::{Running, free_port, oidc_dir, provider_ready};

const SECRET: &str = "console-client-secret-77a1";

/// python3 with selenium, chromium and chromedriver; `false` (loudly) outside CI without them.
fn browser_ready() -> bool {
    let python = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    let found = |p: &str| Path::new(p).exists();
    let ok = python && found("/usr/bin/chromium") && found("/usr/bin/chromedriver");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the console's browser test needs python3's selenium, chromium and chromium-driver (.ci/run installs them)"
        );
        eprintln!("\n*** SKIPPED: no selenium, chromium or chromedriver ***\n");
    }
    ok
}

#[test]
fn the_pages_show_the_fleet_and_roll_back_as_the_signed_in_person() {
    let (_, s) = fleet_scenario!("console");
    if !provider_ready() || !browser_ready() {
        return;
    }
    let dir = s.dir.path();
    let (h1, h2) = (s.host("h1").tcp.clone(), s.host("h2").tcp.clone());
    let manifest = |web: &str| {
        format!(
            "platform: {p}\nretain: 2\nservices:\n  web:\n    image: {i}\n    ports: [\"19520:8080\"]\n  api:\n    image: {i}\n    ports: [\"19521:8080\"]\nenvironments:\n  test:\n    hosts:\n      h1: {{endpoint: \"{h1}\", insecure: true, services: [web]}}\n      h2: {{endpoint: \"{h2}\", insecure: true, services: [api]}}\n    versions: {{web: \"{web}\", api: \"1.0.0\"}}\n",
            p = s.platform,
            i = s.fleet.image,
        )
    };
    s.write(&manifest("1.0.0"));
    assert_eq!(s.run(&["apply", "test", "--yes"]).code, 0);
    s.write(&manifest("1.1.0"));
    let o = s.run(&["apply", "test", "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(s.version("h1", 19520).as_deref(), Some("1.1.0"));
    let audit = s.run(&["audit", "--format", "json"]);
    let audit_file = dir.join("audit.json");
    std::fs::write(&audit_file, &audit.stdout).unwrap();

    // The provider and the console, as an operator sets them up.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let redirect = format!("{url}/auth/callback");
    let (issuer, _provider) = support::oidc::start_provider(&redirect, SECRET);
    std::fs::write(
        dir.join("serve.yaml"),
        format!(
            "oidc:\n  issuer: {issuer}\n  client_id: fleetpin\n  client_secret_env: TEST_OIDC_SECRET\n  redirect_url: {redirect}\n  scopes: [openid, email, profile, groups]\n  roles:\n    - {{group: ops, role: deploy, envs: [test]}}\n    - {{group: dev, role: view}}\n"
        ),
    )
    .unwrap();
    let log = dir.join("serve.err");
    let _serve = Running(
        support::run::wrapped(&[])
            .current_dir(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("TEST_OIDC_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not listen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Stopping api on h2 by hand is the change the matrix must show.
    let host = h2.trim_start_matches("tcp://");
    let drift = format!(
        "docker -H tcp://{host} stop -t 1 {}-test-api >/dev/null",
        s.platform
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/browser.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .env("CONSOLE_URL", &url)
        .env("AUDIT_JSON", &audit_file)
        .env("DRIFT_CMD", &drift)
        .env("DRIFT_CELL", "test/api")
        .env("ROLLBACK_CELL", "test/web")
        .env(
            "AXE_JS",
            oidc_dir().join("node_modules/axe-core/axe.min.js"),
        )
        .env("no_proxy", "*")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    if let Some(shots) = std::env::var_os("FLEETPIN_CONSOLE_SHOTS") {
        cmd.env("SHOTS_DIR", shots);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nserve said:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let said: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("browser: {said}");

    // The rollback serves the previous version, in a commit authored by alice with the trailer.
    assert_eq!(s.version("h1", 19520).as_deref(), Some("1.0.0"));
    let commit = said["commit"].as_str().unwrap();
    let head = s.head();
    assert!(
        !commit.is_empty() && head.starts_with(commit),
        "the page named {commit}, HEAD is {head}"
    );
    let message = support::git::cli_as("ops", dir, &["log", "-1", "--format=%ae%n%B"], &[]);
    assert!(
        message.starts_with("alice@acme.example\n")
            && message.contains("Fleetpin-Actor: alice@acme.example (alice)"),
        "{message}"
    );
}
