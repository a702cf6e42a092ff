//! `fleetpin audit` against a simulated fleet (benches/sim: Engine-API responders on loopback, in
//! Python's standard library): what only shows at a scale the Docker fleet cannot reach on one
//! machine. 1,000 hosts under `ulimit -n 4096` must all be read, every inspect done; and an
//! inspect that fails must show in its row, never leave a silent gap. Correctness only: the
//! timings are benches/sim/scale.sh's.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn sim(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/sim")
        .join(file)
}

/// The engines, killed when the test ends however it ends.
struct Engines(Child);

impl Drop for Engines {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes the manifest of `hosts` × `services` (with the spec hashes the engines must carry) and
/// starts the engines on ports `base`…
fn fleet(dir: &Path, hosts: usize, services: usize, base: u16, extra: &[&str]) -> Engines {
    let manifest = dir.join("sim.yaml");
    let hashes = dir.join("hashes.json");
    let out = Command::new("python3")
        .arg(sim("manifest.py"))
        .args([
            "--hosts",
            &hosts.to_string(),
            "--services",
            &services.to_string(),
        ])
        .args([
            "--base",
            &base.to_string(),
            "--stub-port",
            &(base - 1).to_string(),
        ])
        .arg("--bin")
        .arg(support::run::BIN)
        .arg("-o")
        .arg(&manifest)
        .arg("--spec-hashes")
        .arg(&hashes)
        .output()
        .expect("python3 runs benches/sim/manifest.py (CI installs python3)");
    assert!(
        out.status.success(),
        "manifest.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new("python3")
        .arg(sim("engines.py"))
        .args([
            "--hosts",
            &hosts.to_string(),
            "--services",
            &services.to_string(),
        ])
        .args(["--base", &base.to_string(), "--control-port", "0"])
        .args(["--latency-ms", "2"])
        .arg("--spec-hashes")
        .arg(&hashes)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs benches/sim/engines.py");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let engines = Engines(child);
    assert!(first.starts_with("ready"), "engines.py: {first:?}");
    engines
}

/// `fleetpin audit --format json` under `ulimit -n fds`: exit code and document.
fn audit(dir: &Path, fds: u32) -> (i32, Value) {
    let ulimit = format!("ulimit -n {fds} && exec \"$0\" \"$@\"");
    let out = support::run::wrapped(&["sh", "-c", &ulimit])
        .args(["-q", "--no-color", "-f"])
        .arg(dir.join("sim.yaml"))
        .args(["audit", "--format", "json"])
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit printed no JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().expect("rows")
}

#[test]
fn audit_reads_every_container_of_1000_hosts_under_4096_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let _engines = fleet(dir.path(), 1000, 5, 22000, &[]);
    let (code, doc) = audit(dir.path(), 4096);
    let rows = rows(&doc);
    assert_eq!(rows.len(), 5000, "one row per host and service");
    // Every container and image inspected: none dropped for want of descriptors.
    let incomplete: Vec<&Value> = rows
        .iter()
        .filter(|r| r["status"] != "ok" || r["since"].is_null() || r["digest"].is_null())
        .collect();
    assert!(
        incomplete.is_empty(),
        "{} of 5000 rows not ok or without since/digest, e.g. {}",
        incomplete.len(),
        incomplete[0]
    );
    assert_eq!(code, 0);
    assert_eq!(rows[0]["host"], "h0001");
    assert_eq!(rows[4999]["host"], "h1000", "rows in host order");
}

#[test]
fn an_image_inspect_that_fails_makes_its_rows_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // The first engine answers 500 to every image inspect; its list and container inspects work.
    let _engines = fleet(dir.path(), 3, 2, 23000, &["--fail-image-inspects", "1"]);
    let (code, doc) = audit(dir.path(), 1024);
    let rows = rows(&doc);
    assert_eq!(rows.len(), 6);
    for r in rows.iter().filter(|r| r["host"] == "h0001") {
        assert_eq!(r["status"], "unreachable", "{r}");
        let detail = r["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("could not inspect image sha256:")
                && detail.contains("simulated failure"),
            "{detail}"
        );
    }
    for r in rows.iter().filter(|r| r["host"] != "h0001") {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["digest"].as_str().unwrap().starts_with("sha256:"), "{r}");
    }
    assert_eq!(code, 1, "an audit that could not read everything fails");
}
