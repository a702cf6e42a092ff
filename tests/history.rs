//! `fleetpin history` over a real git repository in a temp dir: one row per pin change, newest
//! first, filtered by environment and service, limited with -n; commits that do not touch the
//! manifest are skipped.

mod support;

use std::path::Path;
use support::run::fleetpin_in;

fn commit(dir: &Path, file: &str, text: &str, who: &str, message: &str) {
    std::fs::write(dir.join(file), text).unwrap();
    let email = format!("{who}@acme.example");
    support::git::commit(dir, &[file], who, &email, message);
}

fn manifest(prod_billing: &str, prod_crm: &str, recette_billing: &str) -> String {
    format!(
        "platform: acme\nservices:\n  billing: {{image: r/billing}}\n  crm: {{image: r/crm}}\nenvironments:\n  recette:\n    hosts: {{r1: {{endpoint: \"unix:///x.sock\"}}}}\n    versions: {{billing: \"{recette_billing}\", crm: \"1.9.0\"}}\n  prod:\n    hosts: {{p1: {{endpoint: \"unix:///y.sock\"}}}}\n    versions: {{billing: \"{prod_billing}\", crm: \"{prod_crm}\"}}\n"
    )
}

fn history(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = fleetpin_in(dir)
        .arg("history")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn one_row_per_pin_change_newest_first() {
    let d = tempfile::tempdir().unwrap();
    git2::Repository::init(d.path()).unwrap();
    commit(
        d.path(),
        "platform.yaml",
        &manifest("2.4.0", "1.8.2", "2.4.1"),
        "alice",
        "initial platform",
    );
    commit(d.path(), "README", "unrelated", "bob", "docs only");
    commit(
        d.path(),
        "platform.yaml",
        &manifest("2.4.1", "1.8.2", "2.4.1"),
        "bob",
        "prod: billing 2.4.1",
    );
    commit(
        d.path(),
        "platform.yaml",
        &manifest("2.4.1", "1.9.0", "2.5.0"),
        "carol",
        "promote and bump",
    );

    let rows = history(d.path(), &["prod"]);
    let rows = rows.as_array().unwrap();
    let summary: Vec<(String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["author"].as_str().unwrap().to_string(),
                r["service"].as_str().unwrap().to_string(),
                r["from"].as_str().unwrap_or("-").to_string(),
                r["to"].as_str().unwrap_or("-").to_string(),
                r["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |a: &str, s: &str, f: &str, t: &str, m: &str| {
        (a.into(), s.into(), f.into(), t.into(), m.into())
    };
    assert_eq!(
        summary,
        vec![
            row(
                "carol@acme.example",
                "crm",
                "1.8.2",
                "1.9.0",
                "promote and bump"
            ),
            row(
                "bob@acme.example",
                "billing",
                "2.4.0",
                "2.4.1",
                "prod: billing 2.4.1"
            ),
            row(
                "alice@acme.example",
                "billing",
                "-",
                "2.4.0",
                "initial platform"
            ),
            row(
                "alice@acme.example",
                "crm",
                "-",
                "1.8.2",
                "initial platform"
            ),
        ]
    );
    assert_eq!(rows[0]["environment"], "prod");
    assert_eq!(rows[0]["commit"].as_str().unwrap().len(), 12);

    let billing = history(d.path(), &["-s", "billing"]);
    assert_eq!(billing.as_array().unwrap().len(), 4, "{billing}");
    let limited = history(d.path(), &["-n", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);

    let table = fleetpin_in(d.path())
        .args(["history", "prod", "-s", "billing"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("2.4.0 -> 2.4.1") && text.contains("bob@acme.example"),
        "{text}"
    );
}

#[test]
fn a_swarm_environments_pins_have_a_history_too() {
    // The history is read from git alone: a Swarm environment's pins are lines like any other.
    let d = tempfile::tempdir().unwrap();
    git2::Repository::init(d.path()).unwrap();
    let swarm = |v: &str| {
        format!(
            "platform: acme\nservices:\n  api: {{image: r/api}}\nenvironments:\n  prod:\n    swarm: {{endpoint: \"unix:///var/run/docker.sock\"}}\n    versions: {{api: \"{v}\"}}\n"
        )
    };
    commit(
        d.path(),
        "platform.yaml",
        &swarm("1.0.0"),
        "alice",
        "api on the swarm",
    );
    commit(
        d.path(),
        "platform.yaml",
        &swarm("1.1.0"),
        "bob",
        "api 1.1.0",
    );
    let rows = history(d.path(), &["prod"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["environment"], "prod", "{rows:?}");
    assert_eq!(rows[0]["service"], "api", "{rows:?}");
    assert_eq!(rows[0]["from"], "1.0.0", "{rows:?}");
    assert_eq!(rows[0]["to"], "1.1.0", "{rows:?}");
    assert_eq!(rows[0]["author"], "bob@acme.example", "{rows:?}");
}
