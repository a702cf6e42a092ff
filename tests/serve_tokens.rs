//! `fleetpin serve token create|list|revoke` through the binary, in a temp dir holding a
//! serve.yaml: the secret shown once and stored nowhere, listings without secrets, revocation,
//! expiry, and the usage errors; and `serve` over HTTPS with its own certificate. Fleet-free.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use support::Out;
use support::run::fleetpin_in;

fn console() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("serve.yaml"), "# defaults\n").unwrap();
    d
}

fn token(dir: &Path, args: &[&str]) -> Out {
    fleetpin_in(dir)
        .args(["serve", "token"])
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn store(dir: &Path) -> std::path::PathBuf {
    dir.join("fleetpin-serve").join("tokens.json")
}

/// Creates a token and returns its secret.
fn create(dir: &Path, args: &[&str]) -> String {
    let out = token(dir, &[&["create"], args].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim_end().to_string()
}

#[test]
fn create_prints_the_secret_once_and_stores_only_its_hash() {
    let d = console();
    let out = token(
        d.path(),
        &[
            "create", "--name", "ci", "--role", "deploy", "--env", "recette",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // stdout is the secret alone, for `$(…)`.
    let secret = out.stdout.strip_suffix('\n').unwrap();
    assert!(!secret.contains('\n'), "{:?}", out.stdout);
    let body = secret.strip_prefix("fpt_").expect("the secret starts fpt_");
    assert_eq!(body.len(), 43, "32 bytes in base64url without padding");
    assert!(
        out.stderr.contains("cannot be shown again"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(body), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    let file = store(d.path());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(body), "the store holds the secret:\n{text}");
    assert!(text.contains("\"sha256\""), "{text}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    // Nothing shows it again.
    for args in [&["list"][..], &["list", "--format", "json"]] {
        let out = token(d.path(), args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stdout.contains(body) && !out.stderr.contains(body));
    }
}

#[test]
fn list_shows_every_token_without_secret_or_hash() {
    let d = console();
    let a = create(
        d.path(),
        &[
            "--name", "ci", "--role", "deploy", "--env", "recette", "--env", "preprod",
        ],
    );
    let b = create(
        d.path(),
        &["--name", "grafana", "--role", "view", "--expires", "90d"],
    );

    let out = token(d.path(), &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for word in [
        "ci",
        "deploy",
        "recette, preprod",
        "grafana",
        "view",
        "all environments",
        "never",
    ] {
        assert!(out.stdout.contains(word), "{word} missing:\n{}", out.stdout);
    }
    let text = std::fs::read_to_string(store(d.path())).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hashes: Vec<String> = file["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 2);

    let json = token(d.path(), &["list", "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v = json.json();
    let list = v.as_array().expect("a JSON array of tokens");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(list[0]["role"], "deploy");
    assert_eq!(list[0]["envs"], serde_json::json!(["recette", "preprod"]));
    assert!(list[0]["expires_at"].is_null());
    assert!(list[0]["id"].as_str().unwrap().starts_with("tok_"));
    assert_eq!(list[1]["name"], "grafana");
    assert!(list[1]["envs"].is_null(), "null: every environment");
    assert!(list[1]["expires_at"].is_string());
    for t in list {
        assert!(
            t.get("sha256").is_none() && t.get("secret").is_none(),
            "{t}"
        );
    }
    for shown in [&out.stdout, &json.stdout] {
        for secret in [&a, &b] {
            assert!(!shown.contains(&secret[4..]));
        }
        for h in &hashes {
            assert!(!shown.contains(h.as_str()), "a hash is listed:\n{shown}");
        }
    }
}

#[test]
fn expires_takes_days_and_create_can_answer_json() {
    let d = console();
    let out = fleetpin_in(d.path())
        .args([
            "--format",
            "json",
            "serve",
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "admin",
            "--expires",
            "90d",
        ])
        .output()
        .unwrap();
    let out = Out::from(out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["name"], "ci");
    assert_eq!(v["role"], "admin");
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("fpt_"));
    let time = |k: &str| humantime::parse_rfc3339(v[k].as_str().unwrap()).unwrap();
    assert_eq!(
        time("expires_at")
            .duration_since(time("created_at"))
            .unwrap(),
        std::time::Duration::from_secs(90 * 86_400)
    );
    assert!(
        !std::fs::read_to_string(store(d.path()))
            .unwrap()
            .contains(&secret[4..])
    );
}

#[test]
fn expired_tokens_are_marked_in_the_list() {
    let d = console();
    create(
        d.path(),
        &["--name", "brief", "--role", "view", "--expires", "1s"],
    );
    create(
        d.path(),
        &["--name", "long", "--role", "view", "--expires", "1h"],
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = token(d.path(), &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", out.stdout))
            .to_string()
    };
    assert!(line("brief").contains("(expired)"), "{}", out.stdout);
    assert!(!line("long").contains("(expired)"), "{}", out.stdout);
}

#[test]
fn revoke_removes_a_token_and_an_unknown_name_fails() {
    let d = console();
    create(d.path(), &["--name", "ci", "--role", "view"]);
    create(d.path(), &["--name", "keep", "--role", "view"]);
    let out = token(d.path(), &["revoke", "ci"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("revoked token `ci`"), "{}", out.stderr);
    let v = token(d.path(), &["list", "--format", "json"]).json();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep"]);

    let again = token(d.path(), &["revoke", "ci"]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("no token named `ci` (fleetpin serve token list shows them)"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_wrong_role_fails_clearly_and_creates_nothing() {
    let d = console();
    let out = token(d.path(), &["create", "--name", "ci", "--role", "owner"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("unknown role `owner`: a role is view, deploy or admin"),
        "{}",
        out.stderr
    );
    assert!(!d.path().join("fleetpin-serve").exists());
}

#[test]
fn usage_errors_exit_1_with_a_clear_message() {
    let d = console();
    create(d.path(), &["--name", "ci", "--role", "view"]);
    let taken = token(d.path(), &["create", "--name", "ci", "--role", "admin"]);
    assert_eq!(taken.code, 1);
    assert!(taken.stdout.is_empty());
    assert!(
        taken.stderr.contains("a token named `ci` exists already"),
        "{}",
        taken.stderr
    );

    let bad_name = token(d.path(), &["create", "--name", "a b", "--role", "view"]);
    assert_eq!(bad_name.code, 1);
    assert!(
        bad_name.stderr.contains("cannot name a token"),
        "{}",
        bad_name.stderr
    );

    let bad_expiry = token(
        d.path(),
        &["create", "--name", "x", "--role", "view", "--expires", "90"],
    );
    assert_eq!(bad_expiry.code, 1);
    assert!(
        bad_expiry.stderr.contains("not a duration"),
        "{}",
        bad_expiry.stderr
    );

    let markdown = token(d.path(), &["list", "--format", "markdown"]);
    assert_eq!(markdown.code, 1);

    // Still only the first token.
    let v = token(d.path(), &["list", "--format", "json"]).json();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn serve_yaml_is_required_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let out = token(d.path(), &["list"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("serve.yaml") && out.stderr.contains("no such file"),
        "{}",
        out.stderr
    );

    std::fs::write(d.path().join("serve.yaml"), "state_dirr: x\n").unwrap();
    let out = token(d.path(), &["list"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("state_dirr"), "{}", out.stderr);

    // --config elsewhere, with its own state_dir.
    std::fs::create_dir(d.path().join("conf")).unwrap();
    std::fs::write(d.path().join("conf/console.yaml"), "state_dir: state\n").unwrap();
    let out = token(
        d.path(),
        &[
            "create",
            "--config",
            "conf/console.yaml",
            "--name",
            "ci",
            "--role",
            "view",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(d.path().join("conf/state/tokens.json").is_file());
}

/// `serve --tls-cert/--tls-key`: HTTPS with a certificate made by openssl, the session cookie
/// `Secure`, plain HTTP on that port answered by nothing, a client that never finishes its
/// handshake holding up nobody; a key that does not load stops the start, naming the file.
#[test]
fn serve_speaks_https_with_its_certificate_and_key() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("serve.yaml"), "break_glass: true\n").unwrap();
    let secret = create(dir, &["--name", "ops", "--role", "deploy"]);
    let openssl = std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=console.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "2",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .output()
        .expect("openssl (Debian's openssl) makes the test certificate");
    assert!(openssl.status.success(), "{openssl:?}");

    // A key that is not a key: refused at start, naming the file.
    std::fs::write(dir.join("junk.pem"), "not a key\n").unwrap();
    let bad: Out = fleetpin_in(dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:19598",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "junk.pem",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("junk.pem"), "{bad:?}");

    let port = 19599;
    let mut child = fleetpin_in(dir)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ = child.stdin.take();
    let _serve = Kill(child);
    let curl = |args: &[&str]| {
        let o = std::process::Command::new("curl")
            .current_dir(dir)
            .args([
                "--noproxy",
                "*",
                "-sS",
                "--max-time",
                "5",
                "--cacert",
                "cert.pem",
            ])
            .args(args)
            .output()
            .expect("curl");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !curl(&[&url("/healthz")]).0 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not answer over HTTPS"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A client that connects and says nothing: the others are served meanwhile.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (ok, body, err) = curl(&["-i", &url("/healthz")]);
    assert!(ok && body.starts_with("HTTP/1.1 200"), "{body}{err}");
    // Break-glass sign-in: the session cookie is Secure under TLS.
    let (ok, head, err) = curl(&[
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &format!(r#"{{"token": "{secret}"}}"#),
        &url("/auth/break-glass"),
    ]);
    assert!(ok, "{err}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP on the TLS port: no answer a browser would take.
    let (ok, body, _) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(!ok || !body.contains("ok"), "plain HTTP answered: {body}");
}

/// The session cookie of a break-glass sign-in over plain HTTP: `Secure` when a proxy in a
/// trusted CIDR block says the browser spoke https (the whole block is trusted, not only its
/// first address), not when nobody says so, and always when `public_url` is https.
#[test]
fn break_glass_cookies_are_secure_behind_a_trusted_block_or_an_https_public_url() {
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // The Set-Cookie line of a break-glass sign-in on `port`, with `headers`.
    let cookie = |dir: &Path, port: u16, secret: &str, headers: &[&str]| -> String {
        let mut args: Vec<String> = [
            "--noproxy",
            "*",
            "-sS",
            "-i",
            "--max-time",
            "5",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        for h in headers {
            args.extend(["-H".to_string(), h.to_string()]);
        }
        args.push("--data".into());
        args.push(format!(r#"{{"token": "{secret}"}}"#));
        args.push(format!("http://127.0.0.1:{port}/auth/break-glass"));
        let o = std::process::Command::new("curl")
            .current_dir(dir)
            .args(&args)
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&o.stdout).to_string();
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .unwrap_or_else(|| panic!("no cookie: {head}"))
            .to_string()
    };
    let serve = |dir: &Path, port: u16| {
        let child = fleetpin_in(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "serve did not listen");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Kill(child)
    };

    // Behind a proxy in 127.0.0.0/8 (this test's 127.0.0.1 is in the block, not its address).
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("serve.yaml"),
        "break_glass: true\ntrusted_proxies: [127.0.0.0/8]\n",
    )
    .unwrap();
    let secret = create(d.path(), &["--name", "ops", "--role", "deploy"]);
    let port = 19596;
    let _serve = serve(d.path(), port);
    let https = cookie(d.path(), port, &secret, &["X-Forwarded-Proto: https"]);
    assert!(https.contains("; Secure"), "{https}");
    let forwarded = cookie(
        d.path(),
        port,
        &secret,
        &["Forwarded: for=1.2.3.4;proto=https"],
    );
    assert!(forwarded.contains("; Secure"), "{forwarded}");
    let plain = cookie(d.path(), port, &secret, &[]);
    assert!(!plain.contains("Secure"), "{plain}");
    drop(_serve);

    // A proxy's word from outside the trusted blocks is not believed.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("serve.yaml"),
        "break_glass: true\ntrusted_proxies: [10.0.0.0/8]\n",
    )
    .unwrap();
    let secret = create(d.path(), &["--name", "ops", "--role", "deploy"]);
    let port = 19595;
    let _serve = serve(d.path(), port);
    let untrusted = cookie(d.path(), port, &secret, &["X-Forwarded-Proto: https"]);
    assert!(!untrusted.contains("Secure"), "{untrusted}");
    drop(_serve);

    // public_url in https: browsers reach the console over TLS, whoever ends it.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("serve.yaml"),
        "break_glass: true\npublic_url: https://fleet.acme.example\n",
    )
    .unwrap();
    let secret = create(d.path(), &["--name", "ops", "--role", "deploy"]);
    let port = 19594;
    let _serve = serve(d.path(), port);
    let public = cookie(d.path(), port, &secret, &[]);
    assert!(public.contains("; Secure"), "{public}");
}
