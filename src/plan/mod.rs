//! The planner: a pure function from the desired state of one host (resolved services) and what
//! one list call showed on it, to the changes that would converge it. No I/O here, so it is
//! unit- and property-tested without a daemon, and `plan`, `apply` and `audit` agree by
//! construction.

pub mod doc;
pub mod labels;
pub mod moving;
pub mod rollback;
pub mod swarm;
pub mod view;
pub mod windows;

pub use view::{HostView, classify, prefix};

use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::ResolvedService;
use crate::observed::{ContainerSummary, Health, RunState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Create,
    Upgrade,
    Downgrade,
    Change,
    Reconfigure,
    Restart,
    RemoveOrphan,
    Conflict,
    /// A Swarm service whose replicas alone differ.
    Scale,
    Unchanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Upgrade => "upgrade",
            ChangeKind::Downgrade => "downgrade",
            ChangeKind::Change => "change",
            ChangeKind::Reconfigure => "reconfigure",
            ChangeKind::Restart => "restart",
            ChangeKind::RemoveOrphan => "remove-orphan",
            ChangeKind::Conflict => "conflict",
            ChangeKind::Scale => "scale",
            ChangeKind::Unchanged => "unchanged",
        }
    }

    /// Whether apply has something to do (orphans only with --prune; conflicts never).
    pub fn is_pending(self) -> bool {
        !matches!(self, ChangeKind::Unchanged | ChangeKind::Conflict)
    }

    /// Whether apply replaces the running container by a new one.
    pub fn replaces(self) -> bool {
        matches!(
            self,
            ChangeKind::Create
                | ChangeKind::Upgrade
                | ChangeKind::Downgrade
                | ChangeKind::Change
                | ChangeKind::Reconfigure
        )
    }
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub service: String,
    pub kind: ChangeKind,
    /// The version running now (`io.fleetpin.version`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version pinned, if the service is in the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The container concerned (the running one, the orphan or the foreign one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The desired spec hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A retained container with exactly the desired spec (same spec hash): it is started
    /// again — no pull, no new container ("relaunch, don't rebuild").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaunch: Option<String>,
    /// How a replacement is done: start-first (no interruption) or stop-first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<crate::manifest::Order>,
    /// A stop-first replacement of a service that publishes a host port: it does not answer
    /// between the old one's stop and the new one's start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interruption: bool,
    /// A `restart` done by a fresh container of the same spec, through the swap, never by
    /// starting the present one again in place: an engine crash left it unable to serve
    /// (`HostView::untrusted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub afresh: bool,
}

/// Why a container whose spec is current is replaced anyway (no value is ever named).
pub const STALE_SECRETS: &str =
    "secret values changed (its environment differs from the reference's secrets)";

/// Whether a container's environment lacks or differs from one of the secrets of `r` (compared
/// in memory; nothing of either side is kept or shown).
pub fn secrets_differ(r: &ResolvedService, env: &BTreeMap<String, crate::secrets::Secret>) -> bool {
    r.secret_env.iter().any(|(k, v)| env.get(k) != Some(v))
}

/// The kind of change from the running version `from` to the pin `to`.
pub fn compare(from: &str, to: &VersionPin) -> ChangeKind {
    match VersionPin::parse(from) {
        Ok(f) if f == *to => ChangeKind::Unchanged,
        Ok(f) => match f.compare(to) {
            Some(Ordering::Less) => ChangeKind::Upgrade,
            Some(Ordering::Greater) => ChangeKind::Downgrade,
            _ => ChangeKind::Change,
        },
        Err(_) => ChangeKind::Change,
    }
}

/// The changes that converge one host: one per desired service (in start order), then one per
/// orphan (a managed container whose service no longer runs there).
pub fn plan_host(desired: &[Arc<ResolvedService>], view: &HostView) -> Vec<Change> {
    let mut out = Vec::with_capacity(desired.len() + 1);
    for r in desired {
        let to = r.pin.to_string();
        // The common case on a large fleet: the running version is the pin, written the same.
        let kind_from = |running: &str| {
            if running == to {
                ChangeKind::Unchanged
            } else {
                compare(running, &r.pin)
            }
        };
        let base = Change {
            service: r.service.clone(),
            kind: ChangeKind::Unchanged,
            from: None,
            to: Some(to.clone()),
            container: None,
            spec_hash: Some(r.spec_hash.clone()),
            reason: None,
            relaunch: None,
            order: None,
            interruption: false,
            afresh: false,
        };
        if let Some(f) = view.foreign.get(&r.container_name) {
            out.push(Change {
                kind: ChangeKind::Conflict,
                container: Some(f.id.clone()),
                reason: Some(format!(
                    "a container fleetpin did not create holds the name {}; rename or remove it yourself",
                    r.container_name
                )),
                ..base
            });
            continue;
        }
        // Relaunch, don't rebuild: a kept container with the very spec wanted is started again
        // (looked up only for a replacement: most services of a large fleet are unchanged).
        let relaunch = || {
            view.relaunchable(&r.service, &[&r.spec_hash, r.legacy_hash.as_str()])
                .map(|k| k.id.clone())
        };
        let Some(cur) = view.current.get(&r.service) else {
            // Nothing serves yet: there is no order to choose.
            out.push(Change {
                kind: ChangeKind::Create,
                relaunch: relaunch(),
                ..base
            });
            continue;
        };
        let running = cur.labels.get(labels::VERSION).cloned().unwrap_or_default();
        let mut kind = kind_from(&running);
        let mut reason = None;
        if kind == ChangeKind::Unchanged
            && !cur
                .labels
                .get(labels::SPEC_HASH)
                .is_some_and(|h| r.hash_matches(h))
        {
            kind = ChangeKind::Reconfigure;
            reason = Some("the settings changed (spec hash differs)".into());
        } else if kind == ChangeKind::Unchanged && view.stale_secrets.contains(&cur.id) {
            kind = ChangeKind::Reconfigure;
            reason = Some(STALE_SECRETS.into());
        }
        let mut afresh = false;
        if kind == ChangeKind::Unchanged
            && let Some(why) = view.untrusted.get(&cur.id)
        {
            // Started again in place it would answer on no port: a fresh one of this spec.
            kind = ChangeKind::Restart;
            reason = Some(why.clone());
            afresh = true;
        }
        if kind == ChangeKind::Unchanged {
            if cur.state != RunState::Running {
                kind = ChangeKind::Restart;
                reason = Some(format!("{:?}", cur.state).to_lowercase());
            } else if cur.health == Health::Unhealthy {
                kind = ChangeKind::Restart;
                reason = Some("unhealthy".into());
            }
        }
        out.push(Change {
            kind,
            from: Some(running),
            container: Some(cur.id.clone()),
            reason,
            relaunch: if kind.replaces() { relaunch() } else { None },
            interruption: (kind.replaces() || afresh)
                && r.order == crate::manifest::Order::StopFirst
                && !r.ports.is_empty(),
            afresh,
            order: (kind.replaces() || afresh).then_some(r.order),
            ..base
        });
    }
    // Orphans: a set of the desired names, not a scan of them per running service.
    let wanted: std::collections::HashSet<&str> =
        desired.iter().map(|r| r.service.as_str()).collect();
    for (service, c) in &view.current {
        if !wanted.contains(service.as_str()) {
            out.push(Change {
                service: service.clone(),
                kind: ChangeKind::RemoveOrphan,
                from: c.labels.get(labels::VERSION).cloned(),
                to: None,
                container: Some(c.id.clone()),
                spec_hash: None,
                reason: Some("no longer in the manifest for this host".into()),
                relaunch: None,
                order: None,
                interruption: false,
                afresh: false,
            });
        }
    }
    out
}

/// A digest of what matters in a host's state, so `apply --plan` can refuse a host that changed
/// since the plan was made. Health is left out: it moves by itself.
pub fn fingerprint(containers: &[ContainerSummary]) -> String {
    let mut rows: Vec<String> = containers
        .iter()
        .map(|c| {
            format!(
                "{}|{}|{}|{:?}|{}|{}",
                c.name,
                c.id,
                c.image_id,
                c.state,
                c.labels
                    .get(labels::VERSION)
                    .map(String::as_str)
                    .unwrap_or(""),
                c.labels
                    .get(labels::SPEC_HASH)
                    .map(String::as_str)
                    .unwrap_or("")
            )
        })
        .collect();
    rows.sort();
    hex::encode(Sha256::digest(rows.join("\n").as_bytes()))
}

/// Counts per kind, for summaries.
pub fn summary(changes: &[Change]) -> BTreeMap<ChangeKind, usize> {
    let mut m = BTreeMap::new();
    for c in changes {
        *m.entry(c.kind).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::resolve::resolve_host;

    const M: &str = r#"
platform: acme
services:
  db: {image: r/db}
  billing: {image: r/billing, depends_on: [db]}
environments:
  prod:
    hosts:
      p1: {endpoint: "unix:///var/run/docker.sock"}
    versions: {billing: "2.4.1", db: "15"}
"#;

    fn desired(text: &str) -> Vec<Arc<ResolvedService>> {
        let m = crate::manifest::parse_str(text).unwrap();
        resolve_host(&m, "prod", "p1", &|_: &str| Ok(String::new())).unwrap()
    }

    fn container(name: &str, service: &str, version: &str, hash: &str) -> ContainerSummary {
        ContainerSummary {
            id: format!("id-{name}"),
            name: name.into(),
            image: "r/x".into(),
            image_id: "sha256:1".into(),
            state: RunState::Running,
            health: Health::Healthy,
            labels: BTreeMap::from([
                (labels::PLATFORM.into(), "acme".into()),
                (labels::ENVIRONMENT.into(), "prod".into()),
                (labels::SERVICE.into(), service.into()),
                (labels::VERSION.into(), version.into()),
                (labels::SPEC_HASH.into(), hash.into()),
            ]),
            created: 0,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<(&str, ChangeKind)> {
        changes
            .iter()
            .map(|c| (c.service.as_str(), c.kind))
            .collect()
    }

    #[test]
    fn empty_host_creates_everything_in_start_order() {
        let d = desired(M);
        let p = plan_host(&d, &classify("acme", "prod", &[]));
        assert_eq!(
            kinds(&p),
            [("db", ChangeKind::Create), ("billing", ChangeKind::Create)]
        );
    }

    #[test]
    fn version_moves_are_upgrade_downgrade_or_change() {
        let d = desired(M);
        let db_hash = d[0].spec_hash.clone();
        for (running, kind) in [
            ("2.4.0", ChangeKind::Upgrade),
            ("2.10.0", ChangeKind::Downgrade),
            ("nightly", ChangeKind::Change),
            ("2.4.1", ChangeKind::Reconfigure),
        ] {
            let obs = [
                container("acme-prod-db", "db", "15", &db_hash),
                container("acme-prod-billing", "billing", running, "old-hash"),
            ];
            let p = plan_host(&d, &classify("acme", "prod", &obs));
            assert_eq!(p[0].kind, ChangeKind::Unchanged);
            assert_eq!(p[1].kind, kind, "running {running}");
        }
    }

    #[test]
    fn stopped_or_unhealthy_is_restart_and_orphans_and_conflicts_are_seen() {
        let d = desired(M);
        let mut db = container("acme-prod-db", "db", "15", &d[0].spec_hash);
        db.state = RunState::Exited;
        let mut foreign = container("acme-prod-billing", "billing", "1", "x");
        foreign.labels.clear();
        let orphan = container("acme-prod-old", "old", "1.0", "x");
        let retained = container("acme-prod-db.prev-0000000000001-abc", "db", "14", "y");
        let view = classify("acme", "prod", &[db, foreign, orphan, retained]);
        assert_eq!(view.retained["db"].len(), 1);
        let p = plan_host(&d, &view);
        assert_eq!(
            kinds(&p),
            [
                ("db", ChangeKind::Restart),
                ("billing", ChangeKind::Conflict),
                ("old", ChangeKind::RemoveOrphan)
            ]
        );
    }

    #[test]
    fn a_container_an_engine_crash_left_unable_to_serve_is_restarted_afresh_never_relaunched() {
        let d = desired(M);
        let db = container("acme-prod-db", "db", "15", &d[0].spec_hash);
        let billing = container("acme-prod-billing", "billing", "2.4.1", &d[1].spec_hash);
        let mut kept = container(
            "acme-prod-billing.prev-0000000000001-abc",
            "billing",
            "2.4.0",
            "h-old",
        );
        kept.state = RunState::Exited;
        let mut view = classify("acme", "prod", &[db.clone(), billing, kept.clone()]);
        view.untrusted
            .insert(db.id.clone(), "stopped under an engine crash".into());
        let p = plan_host(&d, &view);
        assert_eq!(p[0].kind, ChangeKind::Restart);
        assert!(p[0].afresh, "{:?}", p[0]);
        assert_eq!(
            p[0].reason.as_deref(),
            Some("stopped under an engine crash")
        );
        assert_eq!((p[1].kind, p[1].afresh), (ChangeKind::Unchanged, false));
        // A plain stopped one is restarted in place, as before.
        let mut stopped = db.clone();
        stopped.state = RunState::Exited;
        let p = plan_host(&d, &classify("acme", "prod", &[stopped]));
        assert_eq!((p[0].kind, p[0].afresh), (ChangeKind::Restart, false));
        // A kept container that stopped under a crash is never relaunched.
        let mut back = kept.clone();
        back.labels
            .insert(labels::SPEC_HASH.into(), d[1].spec_hash.clone());
        let mut view = classify("acme", "prod", &[db.clone(), back.clone()]);
        assert!(view.relaunchable("billing", &[&d[1].spec_hash]).is_some());
        view.untrusted.insert(back.id.clone(), "crashed".into());
        assert!(view.relaunchable("billing", &[&d[1].spec_hash]).is_none());
        let p = plan_host(&d, &view);
        assert_eq!(
            (p[1].kind, p[1].relaunch.clone()),
            (ChangeKind::Create, None)
        );
    }

    #[test]
    fn fingerprint_ignores_health_but_not_versions() {
        let a = container("acme-prod-db", "db", "15", "h");
        let mut b = a.clone();
        b.health = Health::Starting;
        assert_eq!(fingerprint(std::slice::from_ref(&a)), fingerprint(&[b]));
        let c = container("acme-prod-db", "db", "16", "h");
        assert_ne!(fingerprint(&[a]), fingerprint(&[c]));
    }
}
