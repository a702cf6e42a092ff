//! The console's pages in a real headless Chromium (tests/console/browser.py, selenium and
//! Debian's chromium-driver) against `fleetpin serve` on the private fleet, signing in through
//! the real OpenID provider (tests/oidc): the matrix agrees cell by cell and host by host with
//! `fleetpin audit --format json`, a container replaced by hand with another version shows as the
//! audit's drift (and its kind) within the refresh interval, the service page lists the retained
//! release and the last gate, a rollback from the page serves the previous version and writes a
//! commit authored by the person who clicked, its outcome links to that commit's history row, a
//! history row shows its diff, a `view` person sees no action, and axe-core finds no serious or
//! critical violation (matrix, service page, confirmation, history; laptop and phone sizes).
//! The matrix and a service page are then checked again in headless Firefox ESR
//! (tests/console/firefox.py, over Firefox's own Marionette protocol).
//! Platform `t-console`, ports 1952x. Under CI a missing browser, driver or selenium fails the
//! test.

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

    // The change the matrix must show: someone replaces api on h2 by hand with another version
    // (1.1.0, pinned 1.0.0), the labels copied and the version label saying what runs, the
    // way `docker run` from a copied command line would. The audit calls that a drift.
    let host = h2.trim_start_matches("tcp://");
    let name = format!("{}-test-api", s.platform);
    let inspect = s.inspect("h2", &name);
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get("io.fleetpin.version").map(String::as_str),
        Some("1.0.0")
    );
    let q = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let mut run = format!(
        "docker -H tcp://{host} rm -f {name} >/dev/null\ndocker -H tcp://{host} run -d --name {name} -p 19521:8080"
    );
    if let Some(net) = inspect.host_config.and_then(|h| h.network_mode) {
        run += &format!(" --network {}", q(&net));
    }
    for (k, v) in &labels {
        let v = if k == "io.fleetpin.version" {
            "1.1.0"
        } else {
            v
        };
        run += &format!(" --label {}", q(&format!("{k}={v}")));
    }
    run += &format!(" {}:1.1.0 >/dev/null\n", s.fleet.image);
    let drift_file = dir.join("drift.sh");
    std::fs::write(&drift_file, format!("set -e\n{run}")).unwrap();
    let drift = format!("sh {}", drift_file.display());
    // The audit after the change, as the CLI says it (the page must say the same).
    let audit_cmd = format!(
        "cd {} && env -u FLEETPIN_FILE NO_COLOR=1 {} audit --format json",
        q(&dir.display().to_string()),
        q(support::run::BIN)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/browser.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .env("CONSOLE_URL", &url)
        .env("AUDIT_JSON", &audit_file)
        .env("DRIFT_CMD", &drift)
        .env("AUDIT_CMD", &audit_cmd)
        .env("DRIFT_CELL", "test/api")
        .env("ROLLBACK_CELL", "test/web")
        .env("ROLLBACK_PLAN", "h1: 1.1.0 → 1.0.0")
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

    // The same pages in Firefox ESR (tests/console/firefox.py, over Marionette): the matrix agrees
    // with the audit of now (after the drift and the rollback above), and a service page with its
    // cell's rows. FLEETPIN_CONSOLE_SHOTS also takes the matrix's screenshot in Firefox.
    if !firefox_ready() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/firefox.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--service", "test/web"])
        .env("CONSOLE_URL", &url)
        .env("AUDIT_CMD", &audit_cmd)
        .env("FIREFOX", FIREFOX)
        .env("no_proxy", "*")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    if let Some(shots) = std::env::var_os("FLEETPIN_CONSOLE_SHOTS") {
        cmd.arg("--screenshot")
            .arg(Path::new(&shots).join("firefox-esr-matrix-laptop.png"));
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Firefox test failed:\n{stdout}\n{}\nserve said:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    eprintln!(
        "firefox ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        stdout.lines().last().unwrap_or("")
    );
}

const FIREFOX: &str = "/usr/bin/firefox-esr";

/// Firefox ESR (driven over its own Marionette protocol, no driver needed); `false` (loudly)
/// outside CI without it.
fn firefox_ready() -> bool {
    let ok = Path::new(FIREFOX).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the console's Firefox test needs firefox-esr (.ci/run installs it)"
        );
        eprintln!("\n*** SKIPPED: no firefox-esr ***\n");
    }
    ok
}
