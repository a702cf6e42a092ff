//! Prints the HTML audit report of a fixed, neutral fleet (example names, users and digests; no
//! machine's address, host name or user), from which `docs/audit-html.sh` makes the picture in
//! docs/audit.md. The real report comes from `fleetpin audit --format html`.

use fleetpin::ops::audit::{Audit, Row, Status};
use std::collections::BTreeMap;

const DIGEST_1_4: &str = "sha256:3b8d16830723a1b0c4f5e6d7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7";
const DIGEST_1_3: &str = "sha256:9f2c41e07b5d8a6c3e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d";
const DIGEST_2_4: &str = "sha256:51aa0c9e2f7b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";

#[allow(clippy::too_many_arguments)]
fn row(
    environment: &str,
    host: &str,
    service: &str,
    status: Status,
    pinned: &str,
    running: Option<&str>,
    digest: Option<&str>,
    by: Option<&str>,
    detail: Option<&str>,
) -> Row {
    let runs = running.is_some();
    Row {
        environment: environment.into(),
        host: host.into(),
        service: service.into(),
        status,
        pinned: Some(pinned.into()),
        running: running.map(Into::into),
        digest: digest.map(Into::into),
        state: runs.then(|| "running".into()),
        health: runs.then(|| "healthy".into()),
        since: runs.then(|| "2025-03-04T09:12:40Z".into()),
        deployed_by: by.map(Into::into),
        commit: runs.then(|| "3f1c2a9d7e4b5a6c8d9e0f1a2b3c4d5e6f7a8b9c".into()),
        detail: detail.map(Into::into),
    }
}

fn main() {
    let ops = Some("ops@acme.example");
    let alice = Some("alice@acme.example");
    let rows = vec![
        row(
            "recette",
            "r1",
            "api",
            Status::Ok,
            "1.4.0",
            Some("1.4.0"),
            Some(DIGEST_1_4),
            alice,
            None,
        ),
        row(
            "recette",
            "r1",
            "billing",
            Status::Ok,
            "2.4.1",
            Some("2.4.1"),
            Some(DIGEST_2_4),
            alice,
            None,
        ),
        row(
            "preprod",
            "p1",
            "api",
            Status::Ok,
            "1.4.0",
            Some("1.4.0"),
            Some(DIGEST_1_4),
            ops,
            None,
        ),
        row(
            "preprod",
            "p1",
            "billing",
            Status::Ok,
            "2.4.1",
            Some("2.4.1"),
            Some(DIGEST_2_4),
            ops,
            None,
        ),
        row(
            "prod",
            "q1",
            "api",
            Status::Ok,
            "1.3.2",
            Some("1.3.2"),
            Some(DIGEST_1_3),
            ops,
            None,
        ),
        row(
            "prod",
            "q2",
            "api",
            Status::Drift,
            "1.3.2",
            Some("1.4.0"),
            Some(DIGEST_1_4),
            alice,
            Some("runs 1.4.0, pinned 1.3.2"),
        ),
        row(
            "prod",
            "q1",
            "billing",
            Status::Ok,
            "2.4.1",
            Some("2.4.1"),
            Some(DIGEST_2_4),
            ops,
            None,
        ),
        row(
            "prod",
            "q2",
            "billing",
            Status::Missing,
            "2.4.1",
            None,
            None,
            None,
            Some("pinned but not running here"),
        ),
    ];
    let mut summary = BTreeMap::new();
    for r in &rows {
        *summary.entry(r.status.as_str().to_string()).or_insert(0) += 1;
    }
    let pins = |api: &str, billing: &str| {
        BTreeMap::from([
            ("api".to_string(), api.to_string()),
            ("billing".to_string(), billing.to_string()),
        ])
    };
    let audit = Audit {
        platform: "acme".into(),
        commit: "3f1c2a9d7e4b5a6c8d9e0f1a2b3c4d5e6f7a8b9c".into(),
        generated_at: "2025-03-04T10:00:00Z".into(),
        environments: vec!["recette".into(), "preprod".into(), "prod".into()],
        services: vec!["api".into(), "billing".into()],
        pins: BTreeMap::from([
            ("recette".to_string(), pins("1.4.0", "2.4.1")),
            ("preprod".to_string(), pins("1.4.0", "2.4.1")),
            ("prod".to_string(), pins("1.3.2", "2.4.1")),
        ]),
        rows,
        agents: vec![],
        summary,
        held: Default::default(),
    };
    print!("{}", fleetpin::render::audit::html(&audit));
}
