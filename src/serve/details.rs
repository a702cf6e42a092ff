//! Read-only documents the console's pages show beyond the CLI's own `--format json` ones: a
//! service's releases on each host of an environment (the current container and its gate, the
//! retained ones, those that failed their gate) and the diff of one commit of the manifest. Both
//! need the right to view; neither holds a secret value (labels carry none, and the diff is of
//! the manifest alone, which names secret files but never holds their values).

use super::api::known;
use super::app::{App, Caller};
use super::error::{ApiError, json};
use super::rights::Right;
use crate::observed::{ContainerSummary, Health};
use crate::plan::labels;
use crate::plan::view;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ApiError>;

/// One container of a service on a host, from its labels and the engine's listing.
#[derive(Debug, Serialize)]
pub struct Release {
    pub name: String,
    /// `current`, `retained`, `rolled-back` (retained, stepped away from by a rollback) or
    /// `failed` (refused by its gate).
    pub role: &'static str,
    pub version: Option<String>,
    pub commit: Option<String>,
    pub deployed_at: Option<String>,
    pub deployed_by: Option<String>,
    pub state: String,
    pub health: &'static str,
    /// When the engine created it (RFC 3339).
    pub created: String,
}

/// A service on one host: its releases and the last gate judged there.
#[derive(Debug, Serialize)]
pub struct HostReleases {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub current: Option<Release>,
    /// `passed` (fleetpin makes a container current only once its gate passed), `failed` (a
    /// release newer than the current one was refused by its gate), `pending` (a swap is under
    /// way or was interrupted) or none when nothing runs.
    pub gate: Option<&'static str>,
    /// The release the gate judged (the failed one's version when it failed).
    pub gate_version: Option<String>,
    /// Kept for rollback, newest first (`retain`).
    pub retained: Vec<Release>,
    /// Refused by their gate, newest first.
    pub failed: Vec<Release>,
}

#[derive(Debug, Serialize)]
pub struct ServiceReleases {
    pub environment: String,
    pub service: String,
    pub read_at: String,
    /// A swarm environment has no per-host containers: its tasks are in the audit.
    pub swarm: bool,
    pub hosts: Vec<HostReleases>,
}

fn release(c: &ContainerSummary, role: &'static str) -> Release {
    let label = |k: &str| c.labels.get(k).cloned();
    Release {
        name: c.name.clone(),
        role,
        version: label(labels::VERSION),
        commit: label(labels::COMMIT),
        deployed_at: label(labels::DEPLOYED_AT),
        deployed_by: label(labels::DEPLOYED_BY),
        state: format!("{:?}", c.state).to_lowercase(),
        health: match c.health {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        },
        created: crate::clock::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.created.max(0) as u64),
        ),
    }
}

/// The releases of `service` on one host's classified containers (pure).
pub fn host_releases(host: &str, v: &view::HostView, service: &str) -> HostReleases {
    let current = v.current.get(service);
    let failed = v.failed.get(service).map(Vec::as_slice).unwrap_or_default();
    let pending = v.pending.iter().any(|c| {
        c.labels.get(labels::SERVICE).map(String::as_str) == Some(service)
            && !c.name.contains(labels::NEW_KEPT)
    });
    // The newest judged release: a failed one created after the current one means the last
    // gate there refused its release (the current one stayed).
    let newest_failed = failed.first();
    let (gate, gate_version) = if pending {
        (Some("pending"), None)
    } else {
        match (current, newest_failed) {
            (Some(c), Some(f)) if f.created > c.created => {
                (Some("failed"), f.labels.get(labels::VERSION).cloned())
            }
            // Stopped or unhealthy since is the audit's status, not the gate's.
            (Some(c), _) => (Some("passed"), c.labels.get(labels::VERSION).cloned()),
            (None, Some(f)) => (Some("failed"), f.labels.get(labels::VERSION).cloned()),
            (None, None) => (None, None),
        }
    };
    let retained = v
        .kept(service)
        .into_iter()
        .map(|c| {
            let role =
                if c.name.contains(labels::ROLLED_BACK) || c.name.contains(labels::NEW_KEPT_RB) {
                    "rolled-back"
                } else {
                    "retained"
                };
            release(c, role)
        })
        .collect();
    HostReleases {
        host: host.to_string(),
        error: None,
        current: current.map(|c| release(c, "current")),
        gate,
        gate_version,
        retained,
        failed: failed.iter().map(|c| release(c, "failed")).collect(),
    }
}

/// `GET /api/v1/environments/{env}/services/{service}/releases`: the service's containers on
/// each host of the environment that runs it, read from the hosts now.
pub async fn service_releases(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((env, service)): Path<(String, String)>,
) -> Result<Response> {
    let loaded = app.load()?;
    // The right first: whether `env` exists is told only to whom may view it.
    known(&loaded, &caller, Right::View, &env)?;
    if !loaded.manifest.services.contains_key(&service) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no service `{service}` in the manifest"),
        ));
    }
    let read_at = crate::clock::rfc3339(std::time::SystemTime::now());
    if loaded.manifest.environments[&env].is_swarm() {
        let doc = ServiceReleases {
            environment: env,
            service,
            read_at,
            swarm: true,
            hosts: vec![],
        };
        return Ok(json(StatusCode::OK, &doc));
    }
    let hosts = crate::host::fleet::hosts(&loaded, &env, &[])
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let hosts: Vec<_> = hosts
        .into_iter()
        .filter(|h| {
            loaded
                .manifest
                .services_on(&env, &h.name)
                .iter()
                .any(|s| *s == service)
        })
        .collect();
    let platform = loaded.manifest.platform.clone();
    let timeout = app.connect_timeout;
    let (e2, s2) = (env.clone(), service.clone());
    // The engines' futures are not all `Send`: driven on a blocking thread, as the audit is.
    let handle = tokio::runtime::Handle::current();
    let rows = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let prefix = view::prefix(&platform, &e2);
            let observed = crate::host::fleet::observe_all(hosts, &prefix, timeout).await;
            observed
                .into_iter()
                .map(|o| match o.result {
                    Ok((_, list)) => {
                        let v = view::classify_owned(&platform, &e2, list);
                        host_releases(&o.host.name, &v, &s2)
                    }
                    Err(e) => HostReleases {
                        host: o.host.name.clone(),
                        error: Some(e.to_string()),
                        current: None,
                        gate: None,
                        gate_version: None,
                        retained: vec![],
                        failed: vec![],
                    },
                })
                .collect::<Vec<_>>()
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let doc = ServiceReleases {
        environment: env,
        service,
        read_at,
        swarm: false,
        hosts: rows,
    };
    Ok(json(StatusCode::OK, &doc))
}

#[derive(Debug, Serialize)]
pub struct CommitDiff {
    pub commit: String,
    /// The manifest's path in the repository, as the diff names it.
    pub path: String,
    /// The unified diff of the manifest against the commit's first parent (empty when the
    /// commit did not change it).
    pub diff: String,
    /// The environments whose section the commit changed.
    pub environments: Vec<String>,
}

/// Whether two YAML nodes say the same, wherever they stand in their files.
fn same(a: &crate::manifest::yaml::Node, b: &crate::manifest::yaml::Node) -> bool {
    use crate::manifest::yaml::Value;
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1.name == k2.name && same(v1, v2))
        }
        (x, y) => x == y && a.raw == b.raw,
    }
}

/// The environments whose section differs between two texts of the manifest (pure). A text
/// that does not parse counts as touching every environment the other names.
pub fn touched_environments(before: &str, after: &str) -> Vec<String> {
    use crate::manifest::yaml::{self, Node, Value};
    let envs = |text: &str| -> Option<Vec<(String, Node)>> {
        let root = yaml::parse(text).ok()?;
        let Value::Map(top) = root.value else {
            return Some(vec![]);
        };
        let Some((_, envs)) = top.into_iter().find(|(k, _)| k.name == "environments") else {
            return Some(vec![]);
        };
        match envs.value {
            Value::Map(m) => Some(m.into_iter().map(|(k, v)| (k.name, v)).collect()),
            _ => Some(vec![]),
        }
    };
    let (a, b) = (envs(before), envs(after));
    let names = |x: &Option<Vec<(String, Node)>>| -> Vec<String> {
        x.iter().flatten().map(|(n, _)| n.clone()).collect()
    };
    let (Some(a), Some(b)) = (&a, &b) else {
        let mut all = names(&a);
        all.extend(names(&b));
        all.sort();
        all.dedup();
        return all;
    };
    let mut out: Vec<String> = Vec::new();
    for (name, node) in a {
        match b.iter().find(|(n, _)| n == name) {
            Some((_, other)) if same(node, other) => {}
            _ => out.push(name.clone()),
        }
    }
    for (name, _) in b {
        if !a.iter().any(|(n, _)| n == name) {
            out.push(name.clone());
        }
    }
    out
}

/// `GET /api/v1/environments/{env}/commits/{commit}/diff`: what a commit changed in the manifest.
/// The caller must be allowed to view `env` and every environment whose section the commit
/// changed; `commit` is a commit id (hexadecimal, 7 to 40 digits), nothing else git would read.
pub async fn commit_diff(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((env, commit)): Path<(String, String)>,
) -> Result<Response> {
    let loaded = app.load()?;
    // The right first: whether `env` exists is told only to whom may view it.
    known(&loaded, &caller, Right::View, &env)?;
    if !(7..=40).contains(&commit.len()) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a commit is named by its id: 7 to 40 hexadecimal digits",
        ));
    }
    let manifest = loaded.path.clone();
    let (after, full) = crate::git::read_at_rev(&manifest, &commit)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    // The first parent's text; none before the first commit or the file's creation.
    let before = crate::git::read_at_rev(&manifest, &format!("{full}^"))
        .map(|(t, _)| t)
        .unwrap_or_default();
    let environments = touched_environments(&before, &after);
    for e in &environments {
        if !caller.principal.allows(Right::View, e) {
            return Err(ApiError::forbidden(Right::View, e));
        }
    }
    let path = manifest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "manifest".into());
    let rel = std::path::Path::new(&path);
    let mut opts = git2::DiffOptions::new();
    opts.context_lines(3);
    let diff = git2::Patch::from_buffers(
        before.as_bytes(),
        Some(rel),
        after.as_bytes(),
        Some(rel),
        Some(&mut opts),
    )
    .and_then(|mut p| p.to_buf())
    .map(|b| String::from_utf8_lossy(&b).to_string())
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()))?;
    let doc = CommitDiff {
        commit: full,
        path,
        diff,
        environments,
    };
    Ok(json(StatusCode::OK, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::RunState;

    #[test]
    fn only_the_environments_whose_section_changed_are_touched() {
        let a = "platform: p\nenvironments:\n  test:\n    versions: {web: \"1.0.0\"}\n  prod:\n    versions: {web: \"0.9.0\"}\n";
        let b = "platform: p\n# moved down a line\nenvironments:\n  test:\n    versions: {web: \"1.1.0\"}\n  prod:\n    versions: {web: \"0.9.0\"}\n  new: {}\n";
        assert_eq!(touched_environments(a, b), ["test", "new"]);
        assert!(touched_environments(a, a).is_empty());
        assert_eq!(touched_environments("", a), ["prod", "test"]);
        assert_eq!(touched_environments("not: [yaml", a), ["prod", "test"]);
    }

    #[test]
    fn a_failed_release_newer_than_the_current_one_is_the_last_gate() {
        let mk = |name: &str, version: &str, created: i64| {
            let mut c = view::fixture(name, name, "web", Some(version), created);
            c.state = RunState::Running;
            c
        };
        let list = vec![
            mk("acme-prod-web", "2.0.0", 200),
            mk("acme-prod-web.prev-1-a", "1.0.0", 100),
            mk("acme-prod-web.failed-3-a", "3.0.0", 300),
        ];
        let v = view::classify("acme", "prod", &list);
        let r = host_releases("h1", &v, "web");
        assert_eq!(r.gate, Some("failed"));
        assert_eq!(r.gate_version.as_deref(), Some("3.0.0"));
        assert_eq!(
            r.current.as_ref().unwrap().version.as_deref(),
            Some("2.0.0")
        );
        assert_eq!(r.retained.len(), 1);
        assert_eq!(r.retained[0].version.as_deref(), Some("1.0.0"));
        let v = view::classify("acme", "prod", &list[..2]);
        let r = host_releases("h1", &v, "web");
        assert_eq!(r.gate, Some("passed"));
        assert_eq!(r.gate_version.as_deref(), Some("2.0.0"));
    }
}
