//! What runs where across the fleet, against the pins (`fleetpin audit`).
//!
//! Every host of every selected environment is observed at once (one list call, then an inspect
//! of each running container for its start time and of each image for its registry digest), so
//! the fleet costs about its slowest host. The status of each row is a pure function of the pin,
//! the resolved spec and what the host shows; the formats live in `render::audit`.

use crate::engine::{ContainerSummary, Engine, Health, RunState, reference};
use crate::error::Result;
use crate::manifest::Loaded;
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::ResolvedService;
use crate::ops::deploy::{self, Prepared, Selection};
use crate::plan::labels;
use crate::plan::view::HostView;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Drift,
    Missing,
    Stopped,
    Unhealthy,
    RolledBack,
    Orphan,
    Conflict,
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Drift => "drift",
            Status::Missing => "missing",
            Status::Stopped => "stopped",
            Status::Unhealthy => "unhealthy",
            Status::RolledBack => "rolled-back",
            Status::Orphan => "orphan",
            Status::Conflict => "conflict",
            Status::Unreachable => "unreachable",
        }
    }
}

/// One (environment, host, service) of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub environment: String,
    pub host: String,
    pub service: String,
    pub status: Status,
    /// The pin, as written in the manifest.
    pub pinned: Option<String>,
    /// `io.fleetpin.version` of the running container.
    pub running: Option<String>,
    /// The registry digest of the image it runs (`sha256:…`).
    pub digest: Option<String>,
    /// `running`, `exited`, …
    pub state: Option<String>,
    /// `healthy`, `unhealthy`, `starting`, or `none` without a healthcheck.
    pub health: Option<String>,
    /// Docker's State.StartedAt (RFC 3339).
    pub since: Option<String>,
    pub deployed_by: Option<String>,
    pub commit: Option<String>,
    /// Why the status is not ok, in words.
    pub detail: Option<String>,
}

/// The status of a pinned service on a host (pure). `settings_known` is false when an env_file
/// could not be read here: the spec hash is then unknown, and settings are not judged.
pub fn status_of(
    want: &ResolvedService,
    view: &HostView,
    digest: Option<&str>,
    settings_known: bool,
) -> (Status, Option<String>) {
    let (pin, container_name, service) = (
        &want.pin,
        want.container_name.as_str(),
        want.service.as_str(),
    );
    if view.foreign.contains_key(container_name) {
        return (
            Status::Conflict,
            Some(format!(
                "a container fleetpin did not create holds {container_name}"
            )),
        );
    }
    let Some(cur) = view.current.get(service) else {
        return (Status::Missing, Some("pinned but not running here".into()));
    };
    let running = cur.labels.get(labels::VERSION).cloned().unwrap_or_default();
    let same = VersionPin::parse(&running).is_ok_and(|r| r == *pin);
    if !same {
        // The pinned version sits stopped among the kept ones: someone rolled back from it.
        let pinned = pin.to_string();
        if view
            .kept(service)
            .iter()
            .any(|c| c.labels.get(labels::VERSION) == Some(&pinned))
        {
            return (
                Status::RolledBack,
                Some(format!(
                    "runs the previous {running}; the pin still says {pinned}"
                )),
            );
        }
        return (Status::Drift, Some(format!("runs {running}, pinned {pin}")));
    }
    if let (Some(want), Some(have)) = (&pin.digest, digest)
        && want != have
    {
        return (
            Status::Drift,
            Some(format!("runs digest {have}, pinned {want}")),
        );
    }
    if cur.state != RunState::Running {
        return (
            Status::Stopped,
            Some(format!("{:?}", cur.state).to_lowercase()),
        );
    }
    if cur.health == Health::Unhealthy {
        return (Status::Unhealthy, Some("the health check fails".into()));
    }
    if !settings_known {
        return (
            Status::Ok,
            Some("settings not checked: an env_file is not readable here".into()),
        );
    }
    if cur.labels.get(labels::SPEC_HASH) != Some(&want.spec_hash) {
        return (
            Status::Drift,
            Some("settings differ from the manifest (spec hash); plan shows reconfigure".into()),
        );
    }
    (Status::Ok, None)
}

fn health_str(h: Health) -> &'static str {
    match h {
        Health::None => "none",
        Health::Starting => "starting",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
    }
}

fn state_str(s: RunState) -> String {
    format!("{s:?}").to_lowercase()
}

/// The whole audit: rows and, per environment, the hosts audited.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub platform: String,
    pub commit: String,
    pub generated_at: String,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    /// environment -> service -> pin as written.
    pub pins: BTreeMap<String, BTreeMap<String, String>>,
    pub rows: Vec<Row>,
    pub summary: BTreeMap<String, usize>,
}

impl Audit {
    pub fn drift(&self) -> bool {
        self.rows
            .iter()
            .any(|r| !matches!(r.status, Status::Ok | Status::Unreachable))
    }
    pub fn unreachable(&self) -> bool {
        self.rows.iter().any(|r| r.status == Status::Unreachable)
    }
    /// Whether any host of `env` differs from the pin of `service`.
    pub fn differs(&self, env: &str, service: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.environment == env && r.service == service && r.status != Status::Ok)
    }
}

async fn host_rows(loaded: &Loaded, env: &str, p: &Prepared) -> Vec<Row> {
    let m = &loaded.manifest;
    let e = &m.environments[env];
    let base = |service: &str| Row {
        environment: env.to_string(),
        host: p.host.name.clone(),
        service: service.to_string(),
        status: Status::Ok,
        pinned: e.versions.get(service).map(|v| v.value.to_string()),
        running: None,
        digest: None,
        state: None,
        health: None,
        since: None,
        deployed_by: None,
        commit: None,
        detail: None,
    };
    let Some(engine) = &p.engine else {
        return p
            .desired
            .iter()
            .map(|r| Row {
                status: Status::Unreachable,
                detail: p.error.clone(),
                ..base(&r.service)
            })
            .collect();
    };
    // Start times and digests: one inspect per running container and per image, concurrently.
    let currents: Vec<&ContainerSummary> = p.view.current.values().collect();
    let details =
        futures::future::join_all(currents.iter().map(|c| engine.inspect_container(&c.id))).await;
    let mut images: Vec<&str> = currents.iter().map(|c| c.image_id.as_str()).collect();
    images.sort();
    images.dedup();
    let infos = futures::future::join_all(images.iter().map(|i| engine.inspect_image(i))).await;
    let digest_of: BTreeMap<&str, Vec<String>> = images
        .iter()
        .zip(infos)
        .map(|(i, info)| {
            (
                *i,
                info.ok()
                    .flatten()
                    .map(|x| x.repo_digests)
                    .unwrap_or_default(),
            )
        })
        .collect();
    let since: BTreeMap<&str, Option<String>> = currents
        .iter()
        .zip(details)
        .map(|(c, d)| (c.id.as_str(), d.ok().and_then(|d| d.started_at)))
        .collect();

    let fill = |row: &mut Row, c: &ContainerSummary, repo: &str| {
        row.running = c.labels.get(labels::VERSION).cloned();
        row.digest = digest_of
            .get(c.image_id.as_str())
            .and_then(|ds| reference::digest_for(ds, repo));
        row.state = Some(state_str(c.state));
        row.health = Some(health_str(c.health).to_string());
        row.since = since.get(c.id.as_str()).cloned().flatten();
        row.deployed_by = c.labels.get(labels::DEPLOYED_BY).cloned();
        row.commit = c.labels.get(labels::COMMIT).cloned();
    };
    let mut rows = Vec::new();
    for r in &p.desired {
        let mut row = base(&r.service);
        if let Some(c) = p.view.current.get(&r.service) {
            fill(&mut row, c, &r.repository);
        }
        let (status, detail) = status_of(
            r,
            &p.view,
            row.digest.as_deref(),
            !p.unchecked.contains(&r.service),
        );
        if let (Status::Conflict, Some(f)) = (status, p.view.foreign.get(&r.container_name)) {
            row.state = Some(state_str(f.state));
            row.running = Some(f.image.clone());
        }
        row.status = status;
        row.detail = detail;
        rows.push(row);
    }
    for (service, c) in &p.view.current {
        if p.desired.iter().any(|r| &r.service == service) {
            continue;
        }
        let repo = m
            .services
            .get(service)
            .map(|s| s.image.as_str())
            .unwrap_or("");
        let mut row = base(service);
        fill(&mut row, c, repo);
        row.status = Status::Orphan;
        row.detail = Some("a fleetpin container no longer in the manifest for this host (apply --prune removes it)".into());
        rows.push(row);
    }
    rows
}

pub async fn collect(loaded: &Loaded, envs: &[String], connect_timeout: Duration) -> Result<Audit> {
    let select = Selection::default();
    let mut rows = Vec::new();
    // All environments' hosts at once: the fleet costs its slowest host.
    let prepared = futures::future::join_all(
        envs.iter()
            .map(|e| deploy::prepare_lenient(loaded, e, &select, connect_timeout)),
    )
    .await;
    for (env, p) in envs.iter().zip(prepared) {
        let p = p?;
        let per_host = futures::future::join_all(p.iter().map(|h| host_rows(loaded, env, h))).await;
        rows.extend(per_host.into_iter().flatten());
    }
    let m = &loaded.manifest;
    let mut summary = BTreeMap::new();
    for r in &rows {
        *summary.entry(r.status.as_str().to_string()).or_insert(0) += 1;
    }
    Ok(Audit {
        platform: m.platform.clone(),
        commit: deploy::source_commit(loaded).unwrap_or_else(|| "uncommitted".into()),
        generated_at: crate::clock::rfc3339(std::time::SystemTime::now()),
        environments: envs.to_vec(),
        services: m.services.keys().cloned().collect(),
        pins: envs
            .iter()
            .map(|e| {
                (
                    e.clone(),
                    m.environments[e]
                        .versions
                        .iter()
                        .map(|(s, p)| (s.clone(), p.value.to_string()))
                        .collect(),
                )
            })
            .collect(),
        rows,
        summary,
    })
}
