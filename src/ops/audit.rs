//! What runs where across the fleet, against the pins (`fleetpin audit`).
//!
//! Hosts are read a window at a time (`fleet::spread`: the connections in flight bounded for the
//! whole fleet, for file descriptors and memory): each is listed, then every current container
//! and image is inspected (start time, registry digest) a few requests at a time, its rows made,
//! and the host let go. An inspect that fails makes its row `unreachable`, never a silent gap.
//! The status of each row is a pure function of the pin, the resolved spec and what the host
//! shows; the formats live in `render::audit`.

use crate::engine::{ContainerSummary, Engine, Health, RunState, reference};
use crate::host::fleet;
use crate::manifest::Loaded;
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::ResolvedService;
use crate::ops::deploy::{self, Prepared, Selection};
use crate::ops::error::OpResult as Result;
use crate::ops::swarm::SwarmAuditRow;
use crate::plan::labels;
use crate::plan::view::{self, HostView};
use futures::StreamExt;
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
    if let Some(why) = view.untrusted.get(&cur.id) {
        // Its health check may pass: it runs, but an engine crash left it answering nowhere.
        let status = if cur.state == RunState::Running {
            Status::Unhealthy
        } else {
            Status::Stopped
        };
        return (
            status,
            Some(format!("not serving: {why}; plan shows restart")),
        );
    }
    if !settings_known {
        return (
            Status::Ok,
            Some("settings not checked: a secret file (env_file or SOPS) cannot be read or opened here".into()),
        );
    }
    if !cur
        .labels
        .get(labels::SPEC_HASH)
        .is_some_and(|h| want.hash_matches(h))
    {
        return (
            Status::Drift,
            Some("settings differ from the manifest (spec hash); plan shows reconfigure".into()),
        );
    }
    if view.stale_secrets.contains(&cur.id) {
        return (
            Status::Drift,
            Some(format!(
                "{}; plan shows reconfigure",
                crate::plan::STALE_SECRETS
            )),
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
    /// The pull agents: one per host that has one (or whose environment has `pull: true`).
    pub agents: Vec<AgentRow>,
    pub summary: BTreeMap<String, usize>,
    /// Environments whose changes a deploy window holds now: by which window, until when.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<String, String>,
}

/// A host's pull agent, from its status container (`host::agent`).
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    pub environment: String,
    pub host: String,
    /// `ok`, `behind` (synced another commit than the manifest's), `refused` (holds a release
    /// back that failed its gate there), `failed`, `error`, `locked`, `stale` (no sync for 3
    /// intervals, by the engine's clock), `none` (no agent on a `pull: true` environment's host),
    /// `unreachable`.
    pub state: String,
    pub commit: Option<String>,
    pub synced_at: Option<String>,
    pub result: Option<String>,
    pub reason: Option<String>,
    pub interval_secs: Option<u64>,
    /// What the agent follows (`git://…`, `oci://REGISTRY/PATH:TAG`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// Following `oci://`: the artifact (`sha256:…`) its commit came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl AgentRow {
    /// Whether the agent's state is something to look at (a host audit cannot reach is counted
    /// by its rows).
    pub fn drift(&self) -> bool {
        !matches!(self.state.as_str(), "ok" | "unreachable")
    }
}

/// The state of an agent (pure): `age` is the seconds since its last sync by the engine's clock,
/// `reference` the manifest's commit when it has one.
pub fn agent_state(sync: &crate::host::agent::Sync, age: i64, reference: Option<&str>) -> String {
    if age > 3 * sync.interval_secs.max(1) as i64 {
        return "stale".into();
    }
    // A commit refused by the trust checks (unsigned, a replay, a tampered artifact) is what
    // to look at, whatever the manifest's commit is: the agent will not follow it.
    if sync.result == "refused"
        && (sync.commit.is_none()
            || sync
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("refused:")))
    {
        return "refused".into();
    }
    match sync.result.as_str() {
        "in-sync" | "converged" | "refused" | "interrupted" => {}
        other => return other.to_string(),
    }
    if let Some(r) = reference
        && sync.commit.as_deref() != Some(r)
    {
        return "behind".into();
    }
    if sync.result == "refused" {
        "refused".into()
    } else {
        "ok".into()
    }
}

/// The agent row of one host, if it has an agent (or should: `pull`).
async fn agent_row(
    loaded: &Loaded,
    p: &Prepared,
    reference: Option<&str>,
    pull: bool,
) -> Option<AgentRow> {
    let env = p.host.environment.as_str();
    let mut row = AgentRow {
        environment: env.to_string(),
        host: p.host.name.clone(),
        state: "none".into(),
        commit: None,
        synced_at: None,
        result: None,
        reason: None,
        interval_secs: None,
        follows: None,
        digest: None,
    };
    let Some(engine) = &p.engine else {
        row.state = "unreachable".into();
        return pull.then_some(row);
    };
    let found = crate::host::agent::read_status(&**engine, &loaded.manifest.platform, env).await;
    let c = match found {
        Ok(Some(c)) => c,
        Ok(None) => return pull.then_some(row),
        Err(e) => {
            row.state = "unreachable".into();
            row.reason = Some(e.to_string());
            return Some(row);
        }
    };
    let sync = crate::host::agent::Sync::from_labels(&c.labels);
    let now = match engine.clock().await {
        Ok(t) => crate::clock::unix(t),
        Err(e) => {
            row.state = "unreachable".into();
            row.reason = Some(e.to_string());
            return Some(row);
        }
    };
    row.state = agent_state(&sync, now - c.created, reference);
    row.commit = sync.commit;
    row.synced_at = Some(sync.synced_at);
    row.result = Some(sync.result);
    row.reason = sync.reason;
    row.interval_secs = Some(sync.interval_secs);
    row.follows = Some(sync.repo).filter(|r| !r.is_empty());
    row.digest = sync.digest;
    Some(row)
}

impl Audit {
    pub fn drift(&self) -> bool {
        self.rows
            .iter()
            .any(|r| !matches!(r.status, Status::Ok | Status::Unreachable))
            || self.agents.iter().any(AgentRow::drift)
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

enum Inspect<'a> {
    Container(&'a str),
    Image(&'a str),
}

/// An inspect that failed; the rows it would have filled say so.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not inspect {what} {id}: {reason}")]
struct InspectFailed {
    what: &'static str,
    id: String,
    reason: String,
}

enum Answer<'a> {
    Container(&'a str, std::result::Result<Option<String>, InspectFailed>),
    Image(&'a str, std::result::Result<Vec<String>, InspectFailed>),
}

async fn host_rows(loaded: &Loaded, p: &Prepared, per_host: usize) -> Vec<Row> {
    let m = &loaded.manifest;
    let env = p.host.environment.as_str();
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
    // Start times and digests: one inspect per current container and per image, `per_host` at a
    // time (the fleet's descriptor budget shared by its hosts). An inspect that fails is not
    // dropped: the rows it would have filled say so and count as unreachable.
    let currents: Vec<&ContainerSummary> = p.view.current.values().collect();
    let mut images: Vec<&str> = currents.iter().map(|c| c.image_id.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    let mut since: BTreeMap<&str, std::result::Result<Option<String>, InspectFailed>> =
        BTreeMap::new();
    let mut digest_of: BTreeMap<&str, std::result::Result<Vec<String>, InspectFailed>> =
        BTreeMap::new();
    let inspects = currents
        .iter()
        .map(|c| Inspect::Container(c.id.as_str()))
        .chain(images.iter().map(|i| Inspect::Image(i)));
    let mut answers = futures::stream::iter(inspects)
        .map(|what| async move {
            match what {
                Inspect::Container(id) => Answer::Container(
                    id,
                    engine
                        .inspect_container(id)
                        .await
                        .map(|d| d.started_at)
                        .map_err(|e| InspectFailed {
                            what: "container",
                            id: id.to_string(),
                            reason: e.to_string(),
                        }),
                ),
                Inspect::Image(id) => Answer::Image(
                    id,
                    engine
                        .inspect_image(id)
                        .await
                        .map(|i| i.map(|i| i.repo_digests).unwrap_or_default())
                        .map_err(|e| InspectFailed {
                            what: "image",
                            id: id.to_string(),
                            reason: e.to_string(),
                        }),
                ),
            }
        })
        .buffer_unordered(per_host.max(1));
    while let Some(answer) = answers.next().await {
        match answer {
            Answer::Container(id, r) => {
                since.insert(id, r);
            }
            Answer::Image(id, r) => {
                digest_of.insert(id, r);
            }
        }
    }
    drop(answers);

    // Fills what the host shows; the first failed inspect behind the row, if any.
    let fill = |row: &mut Row, c: &ContainerSummary, repo: &str| -> Option<String> {
        row.running = c.labels.get(labels::VERSION).cloned();
        row.state = Some(state_str(c.state));
        row.health = Some(health_str(c.health).to_string());
        row.deployed_by = c.labels.get(labels::DEPLOYED_BY).cloned();
        row.commit = c.labels.get(labels::COMMIT).cloned();
        let mut failed = None;
        match digest_of.get(c.image_id.as_str()) {
            Some(Ok(ds)) => row.digest = reference::digest_for(ds, repo),
            Some(Err(e)) => failed = Some(e.to_string()),
            None => {}
        }
        match since.get(c.id.as_str()) {
            Some(Ok(t)) => row.since = t.clone(),
            Some(Err(e)) => failed = failed.or_else(|| Some(e.to_string())),
            None => {}
        }
        failed
    };
    let mut rows = Vec::new();
    for r in &p.desired {
        let mut row = base(&r.service);
        let failed = p
            .view
            .current
            .get(&r.service)
            .and_then(|c| fill(&mut row, c, &r.repository));
        if let Some(e) = failed {
            row.status = Status::Unreachable;
            row.detail = Some(e);
            rows.push(row);
            continue;
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
        let failed = fill(&mut row, c, repo);
        row.status = Status::Orphan;
        row.detail = Some(failed.unwrap_or_else(|| "a fleetpin container no longer in the manifest for this host (apply --prune removes it)".into()));
        rows.push(row);
    }
    rows
}

pub async fn collect(
    loaded: &Loaded,
    envs: &[String],
    connect_timeout: Duration,
    keys: &crate::secrets::Keys,
) -> Result<Audit> {
    let select = Selection::default();
    // Every host resolved first: a bad manifest stops here, before any host is contacted.
    let mut wanted = Vec::new();
    for env in envs {
        wanted.extend(deploy::wanted(loaded, env, &select, true, keys)?);
    }
    // Hosts a window at a time, each observed, inspected and turned into rows, then let go (its
    // connections closed, its containers dropped): memory and descriptors follow the window, not
    // the fleet. Rows in host order, whoever answers first.
    let spread = fleet::spread(wanted.len());
    let platform = &loaded.manifest.platform;
    let commit = deploy::source_commit(loaded);
    let reference = commit.as_deref();
    let mut per_host: Vec<(usize, Vec<Row>, Option<AgentRow>)> =
        futures::stream::iter(wanted.into_iter().enumerate())
            .map(|(i, w)| {
                let select = &select;
                async move {
                    let prefix = view::prefix(platform, &w.host.environment);
                    let observed = fleet::observe(w.host.clone(), &prefix, connect_timeout).await;
                    let p = deploy::prepared(loaded, select, w, observed.result, false).await;
                    let pull = loaded.manifest.environments[&p.host.environment].pull;
                    let agent = agent_row(loaded, &p, reference, pull).await;
                    (i, host_rows(loaded, &p, spread.per_host).await, agent)
                }
            })
            // Unordered: a dead host holds its slot for the connect timeout, never the queue.
            .buffer_unordered(spread.window)
            .collect()
            .await;
    per_host.sort_unstable_by_key(|(i, _, _)| *i);
    let mut rows: Vec<Row> = Vec::new();
    let mut agents: Vec<AgentRow> = Vec::new();
    for (_, r, a) in per_host {
        rows.extend(r);
        agents.extend(a);
    }
    let m = &loaded.manifest;
    let mut summary = BTreeMap::new();
    for r in &rows {
        *summary.entry(r.status.as_str().to_string()).or_insert(0) += 1;
    }
    Ok(Audit {
        platform: m.platform.clone(),
        commit: commit.clone().unwrap_or_else(|| "uncommitted".into()),
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
        agents,
        summary,
        held: envs
            .iter()
            .filter_map(|e| {
                crate::ops::windows::hold_at(loaded, e, std::time::SystemTime::now())
                    .map(|h| (e.clone(), h.message))
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::agent::Sync;

    fn sync(result: &str, commit: &str) -> Sync {
        Sync {
            host: "h1".into(),
            commit: Some(commit.into()),
            synced_at: "2026-01-01T00:00:00Z".into(),
            result: result.into(),
            reason: None,
            interval_secs: 30,
            refused: Default::default(),
            repo: "git://x/r.git".into(),
            applied: None,
            digest: None,
        }
    }

    #[test]
    fn an_agents_state_is_judged_stale_first_then_by_result_then_by_commit() {
        assert_eq!(agent_state(&sync("in-sync", "a"), 10, Some("a")), "ok");
        assert_eq!(agent_state(&sync("converged", "a"), 90, Some("a")), "ok");
        // No sync for 3 intervals.
        assert_eq!(agent_state(&sync("in-sync", "a"), 91, Some("a")), "stale");
        assert_eq!(agent_state(&sync("in-sync", "b"), 10, Some("a")), "behind");
        assert_eq!(agent_state(&sync("refused", "a"), 10, Some("a")), "refused");
        assert_eq!(agent_state(&sync("refused", "b"), 10, Some("a")), "behind");
        assert_eq!(agent_state(&sync("error", "a"), 10, Some("a")), "error");
        assert_eq!(agent_state(&sync("locked", "b"), 10, Some("a")), "locked");
        // An uncommitted manifest has no commit to be behind of.
        assert_eq!(agent_state(&sync("in-sync", "b"), 10, None), "ok");
    }

    #[test]
    fn an_older_fleetpins_hash_is_in_sync_and_stale_secrets_are_drift() {
        let m = crate::manifest::parse_str(
            "platform: acme\nservices:\n  web: {image: r/web, env_file: web.env}\nenvironments:\n  prod:\n    hosts: {h: {endpoint: \"unix:///x.sock\"}}\n    versions: {web: \"1.0\"}\n",
        )
        .unwrap();
        let want = crate::manifest::resolve::resolve_host(&m, "prod", "h", &|_: &str| {
            Ok("PASSWORD=hunter2\n".to_string())
        })
        .unwrap()
        .remove(0);
        let running = |hash: &str| {
            let stamp = crate::plan::labels::DeployStamp {
                commit: "c".into(),
                deployed_at: "t".into(),
                deployed_by: "me".into(),
            };
            let mut labels = crate::plan::labels::for_service(&want, &stamp);
            labels.insert(labels::SPEC_HASH.into(), hash.into());
            crate::observed::ContainerSummary {
                id: "c1".into(),
                name: "acme-prod-web".into(),
                image: "r/web:1.0".into(),
                image_id: "sha256:1".into(),
                state: RunState::Running,
                health: Health::None,
                labels,
                created: 1,
            }
        };
        let view =
            |hash: &str| crate::plan::view::classify_owned("acme", "prod", vec![running(hash)]);
        assert_eq!(
            status_of(&want, &view(&want.spec_hash), None, true).0,
            Status::Ok
        );
        assert_eq!(
            status_of(&want, &view(want.legacy_hash.as_str()), None, true).0,
            Status::Ok,
            "a container an older fleetpin deployed is in sync"
        );
        assert_eq!(
            status_of(&want, &view("other"), None, true).0,
            Status::Drift
        );
        let mut stale = view(&want.spec_hash);
        stale.stale_secrets.insert("c1".into());
        let (status, detail) = status_of(&want, &stale, None, true);
        assert_eq!(status, Status::Drift);
        assert!(detail.unwrap().starts_with(crate::plan::STALE_SECRETS));
    }
}

/// What `audit` found: the plain-host environments' matrix (none when only Swarm environments
/// were asked and the page needs no matrix) and each Swarm environment's services, or why its
/// manager could not be read.
pub struct AuditOutcome {
    pub hosts: Option<Audit>,
    pub swarms: Vec<(
        String,
        std::result::Result<Vec<SwarmAuditRow>, SwarmUnreachable>,
    )>,
}

/// Why a Swarm environment's manager could not be audited.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SwarmUnreachable(pub String);

impl AuditOutcome {
    pub fn unreachable(&self) -> bool {
        self.swarms.iter().any(|(_, r)| r.is_err())
            || self.hosts.as_ref().is_some_and(|a| a.unreachable())
    }

    pub fn drift(&self) -> bool {
        self.swarms.iter().any(|(_, r)| {
            r.as_ref()
                .is_ok_and(|rows| rows.iter().any(|r| r.status != "ok"))
        }) || self.hosts.as_ref().is_some_and(|a| a.drift())
    }
}

/// Audits one environment (`env`) or all of them; `matrix`: the host matrix is wanted even when
/// only Swarm environments are audited (a report page always has its header and matrix).
pub async fn audit(
    ctx: &crate::ops::context::Ctx,
    loaded: &Loaded,
    env: Option<&str>,
    matrix: bool,
) -> Result<AuditOutcome> {
    let envs: Vec<String> = match env {
        Some(e) => {
            deploy::environment(loaded, e)?;
            vec![e.to_string()]
        }
        None => loaded.manifest.environments.keys().cloned().collect(),
    };
    // Plain-host environments go through the host matrix; Swarm environments are audited
    // through their manager (services, tasks per node).
    let (swarm_envs, envs): (Vec<String>, Vec<String>) = envs
        .into_iter()
        .partition(|e| loaded.manifest.environments[e].is_swarm());
    let hosts = if envs.is_empty() && !swarm_envs.is_empty() && !matrix {
        None
    } else {
        Some(collect(loaded, &envs, ctx.connect_timeout, &ctx.keys).await?)
    };
    let mut swarms = Vec::new();
    for env in swarm_envs {
        let rows = async {
            let engine = crate::ops::swarm::connect(loaded, &env, ctx.connect_timeout).await?;
            crate::ops::swarm::audit(loaded, &env, &Default::default(), &engine, &ctx.keys).await
        }
        .await
        .map_err(|e| SwarmUnreachable(e.to_string()));
        swarms.push((env, rows));
    }
    Ok(AuditOutcome { hosts, swarms })
}
