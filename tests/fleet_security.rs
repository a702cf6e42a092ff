//! Security on the private fleet: a host behind mutual TLS (certificates made by the fleet script
//! with openssl), a registry behind htpasswd basic auth, and secrets from `env_file` that must
//! never show in any output, log, label or saved plan.

mod support;

use support::Scenario;

fn tls_host(fleet: &support::Fleet) -> Option<support::FleetHost> {
    let h = fleet.hosts.iter().find(|h| !h.tls.is_empty()).cloned();
    if h.is_none() && std::env::var_os("CI").is_some() {
        panic!("the fleet has no TLS host: start it with FLEET_TLS_HOST=h4 (fleet.sh run does)");
    }
    h
}

/// A manifest whose only host is the TLS host, with the given client files (copied beside it).
fn tls_manifest(
    s: &Scenario,
    host: &support::FleetHost,
    ca: &str,
    cert: &str,
    key: &str,
) -> String {
    let certs = s.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for (from, to) in [(ca, "ca.pem"), (cert, "cert.pem"), (key, "key.pem")] {
        let src = std::path::Path::new(&s.fleet.tls_dir).join(from);
        if src.exists() {
            std::fs::copy(src, certs.join(to)).unwrap();
        } else {
            let _ = std::fs::remove_file(certs.join(to));
        }
    }
    format!(
        "platform: {p}\nservices:\n  web: {{image: {img}, ports: [\"18501:8080\"]}}\nenvironments:\n  test:\n    hosts:\n      secure: {{endpoint: \"{ep}\", tls: {{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}}}\n    versions: {{web: \"1.0.0\"}}\n",
        p = s.platform,
        img = s.fleet.image,
        ep = host.tls
    )
}

#[test]
fn a_tls_host_is_reached_with_the_manifests_certificates_and_refused_without_them() {
    let fleet = require_fleet!();
    let Some(host) = tls_host(&fleet) else { return };
    let s = Scenario::new(&fleet, "tls");

    s.write(&tls_manifest(&s, &host, "ca.pem", "cert.pem", "key.pem"));
    s.apply_ok("test");
    assert_eq!(s.version(&host.name, 18501).as_deref(), Some("1.0.0"));

    // The server's certificate is not signed by the CA we trust.
    s.write(&tls_manifest(
        &s,
        &host,
        "other-ca.pem",
        "cert.pem",
        "key.pem",
    ));
    let out = s.run(&["--connect-timeout", "3", "plan", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("unreachable"), "{out:?}");
    let msg = out.stdout.to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("tls") || msg.contains("issuer"),
        "a clear TLS message: {out:?}"
    );

    // Our client certificate is not one the host trusts.
    s.write(&tls_manifest(
        &s,
        &host,
        "ca.pem",
        "other-cert.pem",
        "other-key.pem",
    ));
    let out = s.run(&["--connect-timeout", "3", "plan", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("unreachable"), "{out:?}");

    // No client certificate file at all: said before any connection.
    s.write(&tls_manifest(&s, &host, "ca.pem", "missing.pem", "key.pem"));
    let out = s.run(&["plan", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("cert file") && out.stdout.contains("does not exist"),
        "{out:?}"
    );

    // Plain tcp without `insecure: true` is refused before any connection.
    let plain = format!(
        "platform: {}\nservices:\n  web: {{image: {}}}\nenvironments:\n  test:\n    hosts: {{h: {{endpoint: \"tcp://{}:2375\"}}}}\n    versions: {{web: \"1.0.0\"}}\n",
        s.platform, fleet.image, host.addr
    );
    s.write(&plain);
    let out = s.run(&["plan", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("plain tcp:// is refused"), "{out:?}");
}

#[test]
fn registry_credentials_come_from_the_operators_docker_config() {
    let fleet = require_fleet!();
    if fleet.auth_registry.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the fleet has no auth registry (FLEET_REGISTRY_AUTH=1)"
        );
        return;
    }
    let s = Scenario::new(&fleet, "auth");
    let image = format!("{}/fleetpin/app", fleet.auth_registry);
    s.write(
        &s.manifest(&["h2"], &[("web", 18511, "")], &[("web", "1.1.0")])
            .replace(&fleet.image, &image),
    );

    // No credentials: the pull fails clearly and the host is untouched. (An earlier run on the
    // same fleet may have left the image there: it must be pulled.)
    s.remove_image("h2", &format!("{image}:1.1.0"));
    let empty = tempfile::tempdir().unwrap();
    let out = support::run::fleetpin_in(s.dir.path())
        .args(["apply", "test", "--yes"])
        .env("DOCKER_CONFIG", empty.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("pull of"), "{stdout}");
    assert!(
        stdout.to_lowercase().contains("auth") || stdout.contains("401"),
        "says it is about credentials: {stdout}"
    );
    assert!(s.containers("h2").is_empty());

    // With `docker login`'s config: it pulls and runs.
    let config = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", fleet.auth_user, fleet.auth_password));
    std::fs::write(
        config.path().join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            fleet.auth_registry
        ),
    )
    .unwrap();
    let out = support::run::fleetpin_in(s.dir.path())
        .args(["apply", "test", "--yes"])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains(&fleet.auth_password),
        "the password is never printed"
    );
    assert_eq!(s.version("h2", 18511).as_deref(), Some("1.1.0"));
}

#[test]
fn secret_values_never_appear_in_any_output_label_log_or_plan_file() {
    let (_, s) = fleet_scenario!("secret");
    const SECRET: &str = "s3cr3t-Value-4242";
    std::fs::write(
        s.dir.path().join("app.env"),
        format!("DB_PASSWORD={SECRET}\n# comment\nAPI_KEY=\"{SECRET}-2\"\n"),
    )
    .unwrap();
    let manifest = |v: &str| {
        s.manifest(
            &["h1"],
            &[("web", 18521, "env_file: app.env\nenv: {MODE: plain}")],
            &[("web", v)],
        )
    };
    s.write(&manifest("1.0.0"));
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let o = s.run(args);
        outputs.push(format!("{args:?}\n{}\n{}", o.stdout, o.stderr));
        o
    };
    assert_eq!(run(&["apply", "test", "--yes", "-vv"]).code, 0);
    run(&["validate", "--format", "json"]);
    run(&["plan", "test", "-vv"]);
    run(&["plan", "test", "--format", "json"]);
    let plan_file = s.dir.path().join("p.json");
    run(&["plan", "test", "-o", plan_file.to_str().unwrap()]);
    for f in ["table", "json", "markdown", "html"] {
        run(&["audit", "--format", f, "-vv"]);
    }
    // Errors too: a missing tag fails the apply after the secret was read.
    s.write(&manifest("9.9.9"));
    assert_eq!(
        run(&["apply", "test", "--yes", "-vv", "--format", "json"]).code,
        1
    );
    s.write(&manifest("1.1.0"));
    assert_eq!(run(&["apply", "test", "--yes", "-vv"]).code, 0);
    run(&["rollback", "test", "--yes", "-vv", "--format", "json"]);
    run(&["history", "-vv"]);
    // Every log level, every crate: the engine client logs request bodies at trace.
    for (i, level) in ["trace", "debug", "bollard=trace,hyper=trace,fleetpin=trace"]
        .iter()
        .enumerate()
    {
        // A new setting each time, so a container is created (and its spec logged) each time.
        s.write(&manifest("1.2.0").replace("MODE: plain", &format!("MODE: level{i}")));
        let o = s.run_with(&["apply", "test", "--yes"], &[("FLEETPIN_LOG", level)]);
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            o.stderr.contains("creating CreateSpec") && o.stderr.contains("DB_PASSWORD"),
            "FLEETPIN_LOG={level} logs the container spec (variable names only): {o:?}"
        );
        outputs.push(format!("FLEETPIN_LOG={level}\n{}\n{}", o.stdout, o.stderr));
    }

    outputs.push(std::fs::read_to_string(&plan_file).unwrap());
    for o in &outputs {
        assert!(!o.contains(SECRET), "the secret leaked into:\n{o}");
    }
    // Labels: never. (The container's environment holds it, as `docker inspect` shows to whoever
    // may talk to the engine; docs/manifest.md says so.)
    let c = s.inspect("h1", &format!("{}-test-web", s.platform));
    let config = c.config.unwrap();
    let labels = serde_json::to_string(&config.labels).unwrap();
    assert!(!labels.contains(SECRET), "{labels}");
    assert!(
        config
            .env
            .unwrap()
            .iter()
            .any(|e| e == &format!("DB_PASSWORD={SECRET}")),
        "the container gets the secret"
    );
}
