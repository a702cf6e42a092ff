//! schemathesis (PyPI) against `fleetpin serve`'s `/api/v1/openapi.json` with a `view` token:
//! every generated request answered without a server error, every answer matching the document
//! (status codes, content types, bodies). Fleet-free: the manifest's hosts are sockets that do not
//! exist, so the fleet answers "unreachable", as a real one sometimes does. In CI a missing `st`
//! fails the test (`.ci/run` installs it); elsewhere it is skipped with a note.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn schemathesis() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
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

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let Some(st) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock = d.join("none.sock");
    std::fs::write(
        d.join("platform.yaml"),
        format!(
            "platform: stt\nservices:\n  web: {{image: r/web, env_file: web.env}}\nenvironments:\n  test:\n    hosts: {{h1: {{endpoint: \"unix://{}\"}}}}\n    versions: {{web: \"1.0.0\"}}\n  prod:\n    hosts: {{p1: {{endpoint: \"unix://{}\"}}}}\n    versions: {{web: \"1.0.0\"}}\n",
            sock.display(),
            sock.display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("web.env"), "PW=schemathesis-S3cret\n").unwrap();
    std::fs::write(d.join("serve.yaml"), "").unwrap();
    support::git::cli_as("ops", d, &["init", "-q"], &[]);
    support::git::cli_as("ops", d, &["add", "platform.yaml"], &[]);
    support::git::cli_as("ops", d, &["commit", "-q", "-m", "m"], &[]);
    let o = support::run::run_in(
        d,
        &[
            "serve", "token", "create", "--name", "v", "--role", "view", "--env", "test",
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let token = o.stdout.trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _serve = Killed(
        support::run::fleetpin_in(d)
            .args(["--connect-timeout", "1", "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new(st)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/api/v1/openapi.json"))
        .args(["--checks", "all", "--max-examples", "25", "--workers", "1"])
        .args(["--seed", "20261207"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("schemathesis-S3cret"), "{text}");
}
