//! The Swarm planner, beside the host planner and as pure: from the resolved services of one
//! Swarm environment and the services its manager reports, the changes (judged against the
//! services' labels, `scale` when only the replicas differ), what a rollback goes back to
//! (fleetpin's own history in a service label: Swarm remembers one previous spec only), and the
//! small judgements the Swarm run makes (the history a new spec carries, which tasks serve). No
//! I/O here, so it is unit-tested without a cluster; `ops::swarm` fetches, `host::swarm` runs.

use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::{self, ResolvedService};
use crate::observed::{ServiceState, TaskInfo};
use crate::plan::ChangeKind;
use crate::plan::labels::{self, DeployStamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The service label holding fleetpin's version history: a JSON list, newest first.
pub const HISTORY: &str = "io.fleetpin.history";

/// One earlier version of a service, as recorded in its history label.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Past {
    pub version: String,
    pub spec_hash: String,
    pub image: String,
}

/// One line of a Swarm plan: a service, what changes, and its tasks.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmChange {
    pub service: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_from: Option<u64>,
    pub replicas: u64,
    #[serde(skip)]
    pub resolved: Arc<ResolvedService>,
    #[serde(skip)]
    pub current: Option<ServiceState>,
    /// Rollback: the exact image to run again (with its digest), and the history that remains
    /// (what it stepped away from is not in it: rollback walks back, never forward).
    #[serde(skip)]
    pub image: Option<String>,
    #[serde(skip)]
    pub history: Option<Vec<Past>>,
}

/// A plan for one Swarm environment: one target, per-service changes.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmPlan {
    pub platform: String,
    pub environment: String,
    pub endpoint: String,
    pub changes: Vec<SwarmChange>,
    /// Moving from plain hosts: what each host the environment ran on before gives up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<crate::plan::moving::Retirement>,
}

impl SwarmPlan {
    pub fn pending(&self) -> usize {
        self.changes.iter().filter(|c| c.kind.is_pending()).count()
    }
}

/// What converging `r` to `replicas` tasks takes, against the service the manager reports (if
/// any): the version and spec hash in its labels decide, the replicas alone make a `scale`.
pub fn kind(
    r: &ResolvedService,
    replicas: u64,
    current: Option<&ServiceState>,
) -> (ChangeKind, Option<String>) {
    let Some(s) = current else {
        return (ChangeKind::Create, None);
    };
    let to = r.pin.to_string();
    let from = s.labels.get(labels::VERSION).cloned();
    let hash = s.labels.get(labels::SPEC_HASH);
    let kind = match &from {
        Some(f)
            if *f == to
                && hash.is_some_and(|h| r.hash_matches(h))
                && !crate::plan::secrets_differ(r, &s.env) =>
        {
            if s.replicas == Some(replicas) {
                ChangeKind::Unchanged
            } else {
                ChangeKind::Scale
            }
        }
        Some(f) if *f == to => ChangeKind::Reconfigure,
        Some(f) => crate::plan::compare(f, &r.pin),
        None => ChangeKind::Change,
    };
    (kind, from)
}

/// The changes that converge the `desired` services, each with the replicas `replicas_of`
/// gives its service, against the services `running` (by name).
pub fn changes(
    desired: Vec<Arc<ResolvedService>>,
    running: &BTreeMap<String, ServiceState>,
    replicas_of: &dyn Fn(&str) -> u64,
) -> Vec<SwarmChange> {
    desired
        .into_iter()
        .map(|r| {
            let replicas = replicas_of(&r.service);
            let current = running.get(&r.container_name).cloned();
            let (kind, from) = kind(&r, replicas, current.as_ref());
            SwarmChange {
                service: r.service.clone(),
                kind,
                from,
                to: r.pin.to_string(),
                replicas_from: current.as_ref().and_then(|s| s.replicas),
                replicas,
                resolved: r,
                current,
                image: None,
                history: None,
            }
        })
        .collect()
}

/// The history recorded on a service, newest first.
pub fn history_of(s: &ServiceState) -> Vec<Past> {
    s.labels
        .get(HISTORY)
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default()
}

/// The history the service carries once `c` is applied, newest first and at most `retain`
/// long (at least one): the version being replaced joins it, unless it is the one deployed
/// again; a rollback's change brings its own (what it stepped away from is not in it).
pub fn next_history(c: &SwarmChange, retain: u32) -> Vec<Past> {
    let r = &c.resolved;
    let mut history = c.current.as_ref().map(history_of).unwrap_or_default();
    // A service an older fleetpin deployed carries scheme-1 hashes (they mix in digests of
    // secret values): none of them is written into the new label.
    let old_scheme = c
        .current
        .as_ref()
        .is_some_and(|s| !labels::current_scheme(&s.labels));
    if let Some(h) = &c.history {
        history = h.clone();
    } else if let Some(cur) = &c.current
        && let (Some(v), Some(h)) = (
            cur.labels.get(labels::VERSION),
            cur.labels.get(labels::SPEC_HASH),
        )
        && !r.hash_matches(h)
    {
        history.insert(
            0,
            Past {
                version: v.clone(),
                spec_hash: h.clone(),
                image: cur.image.clone(),
            },
        );
    }
    if old_scheme {
        history.iter_mut().for_each(|p| p.spec_hash.clear());
    }
    history.retain(|p| p.spec_hash != r.spec_hash || p.version != r.pin.to_string());
    history.truncate(retain.max(1) as usize);
    history
}

/// The deploy stamp a service already carries: a change of replicas alone keeps the tasks' spec
/// as it is (the same labels), so Swarm starts or stops tasks and replaces none.
pub fn kept_stamp(current: &ServiceState) -> DeployStamp {
    let get = |k: &str| current.labels.get(k).cloned().unwrap_or_default();
    DeployStamp {
        commit: get(labels::COMMIT),
        deployed_at: get(labels::DEPLOYED_AT),
        deployed_by: get(labels::DEPLOYED_BY),
    }
}

/// Tasks that serve: desired and actually running with the spec of `spec_hash`.
pub fn serving(tasks: &[TaskInfo], spec_hash: &str) -> usize {
    tasks
        .iter()
        .filter(|t| t.desired == "running" && t.state == "running")
        .filter(|t| t.labels.get(labels::SPEC_HASH).map(String::as_str) == Some(spec_hash))
        .count()
}

/// Why a service cannot be rolled back; every one is found before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    #[error("{service}: no Swarm service {name} runs, so there is nothing to go back from")]
    NotRunning { service: String, name: String },
    #[error("{service}: {version} is not in its history (kept: {})", kept_list(.kept))]
    NotInHistory {
        service: String,
        version: String,
        kept: Vec<String>,
    },
    #[error("{service}: nothing to go back to (no earlier version kept)")]
    NothingKept { service: String },
    #[error("{service}: its history names `{version}`, which is not a version")]
    NotAVersion { service: String, version: String },
}

fn kept_list(kept: &[String]) -> String {
    if kept.is_empty() {
        "none".to_string()
    } else {
        kept.join(", ")
    }
}

/// What `rollback` does to each selected service: go back to the newest version in its history
/// (or the one `to` names), dropping it and everything newer from the history, so a second
/// rollback goes further back and never forward. Every refusal comes before any change.
pub fn rollback_plan(
    plan: &SwarmPlan,
    to: Option<&str>,
) -> Result<Vec<SwarmChange>, Vec<RollbackRefusal>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for c in &plan.changes {
        let Some(cur) = &c.current else {
            problems.push(RollbackRefusal::NotRunning {
                service: c.service.clone(),
                name: c.resolved.container_name.clone(),
            });
            continue;
        };
        let history = history_of(cur);
        let at = match to {
            Some(v) => history.iter().position(|p| p.version == v),
            None => (!history.is_empty()).then_some(0),
        };
        let Some(at) = at else {
            problems.push(match to {
                Some(v) => RollbackRefusal::NotInHistory {
                    service: c.service.clone(),
                    version: v.to_string(),
                    kept: history.iter().map(|p| p.version.clone()).collect(),
                },
                None => RollbackRefusal::NothingKept {
                    service: c.service.clone(),
                },
            });
            continue;
        };
        let past = &history[at];
        let Ok(pin) = VersionPin::parse(&past.version) else {
            problems.push(RollbackRefusal::NotAVersion {
                service: c.service.clone(),
                version: past.version.clone(),
            });
            continue;
        };
        let mut r = (*c.resolved).clone();
        r.image_ref = pin.image_ref(&r.repository);
        r.pin = pin;
        r.spec_hash = resolve::spec_hash(&r);
        out.push(SwarmChange {
            service: c.service.clone(),
            kind: ChangeKind::Downgrade,
            from: cur.labels.get(labels::VERSION).cloned(),
            to: past.version.clone(),
            replicas_from: cur.replicas,
            replicas: cur.replicas.unwrap_or(c.replicas),
            resolved: Arc::new(r),
            current: Some(cur.clone()),
            image: Some(past.image.clone()),
            history: Some(history[at + 1..].to_vec()),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "platform: acme\nservices:\n  api: {image: r/api}\n  web: {image: r/web, replicas: 2}\nenvironments:\n  prod:\n    swarm: {endpoint: \"unix:///var/run/docker.sock\"}\n    versions: {api: \"1.2.0\", web: \"3.0\"}\n";

    fn desired() -> Vec<Arc<ResolvedService>> {
        let m = crate::manifest::parse_str(M).unwrap();
        resolve::resolve_swarm(&m, "prod", &|_: &str| Ok(String::new())).unwrap()
    }

    fn api() -> Arc<ResolvedService> {
        desired().into_iter().find(|r| r.service == "api").unwrap()
    }

    fn service(version: &str, hash: &str, replicas: u64, history: &[Past]) -> ServiceState {
        ServiceState {
            id: "svc-api".into(),
            name: "acme-prod-api".into(),
            version: 7,
            labels: BTreeMap::from([
                (labels::VERSION.into(), version.into()),
                (labels::SPEC_HASH.into(), hash.into()),
                (
                    labels::SPEC_HASH_SCHEME_LABEL.into(),
                    resolve::SPEC_HASH_SCHEME.to_string(),
                ),
                (HISTORY.into(), serde_json::to_string(history).unwrap()),
            ]),
            image: format!("r/api:{version}@sha256:{version}"),
            replicas: Some(replicas),
            ..Default::default()
        }
    }

    fn past(version: &str) -> Past {
        Past {
            version: version.into(),
            spec_hash: format!("h{version}"),
            image: format!("r/api:{version}@sha256:{version}"),
        }
    }

    fn plan_with(current: Option<ServiceState>) -> SwarmPlan {
        let running: BTreeMap<String, ServiceState> =
            current.into_iter().map(|s| (s.name.clone(), s)).collect();
        let desired = desired()
            .into_iter()
            .filter(|r| r.service == "api")
            .collect();
        SwarmPlan {
            platform: "acme".into(),
            environment: "prod".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
            changes: changes(desired, &running, &|_| 1),
            retire: vec![],
        }
    }

    #[test]
    fn kinds_are_judged_against_the_services_labels() {
        let r = api();
        let h = r.spec_hash.clone();
        let k = |s: Option<&ServiceState>, n| kind(&r, n, s).0;
        assert_eq!(k(None, 1), ChangeKind::Create);
        assert_eq!(
            k(Some(&service("1.2.0", &h, 1, &[])), 1),
            ChangeKind::Unchanged
        );
        assert_eq!(k(Some(&service("1.2.0", &h, 3, &[])), 1), ChangeKind::Scale);
        assert_eq!(
            k(Some(&service("1.2.0", "other", 1, &[])), 1),
            ChangeKind::Reconfigure
        );
        assert_eq!(
            k(Some(&service("1.1.0", &h, 1, &[])), 1),
            ChangeKind::Upgrade
        );
        assert_eq!(
            k(Some(&service("1.3.0", &h, 1, &[])), 1),
            ChangeKind::Downgrade
        );
        let mut unlabelled = service("1.2.0", &h, 1, &[]);
        unlabelled.labels.remove(labels::VERSION);
        assert_eq!(k(Some(&unlabelled), 1), ChangeKind::Change);
    }

    #[test]
    fn changes_carry_the_replicas_and_what_runs() {
        let m = crate::manifest::parse_str(M).unwrap();
        let running =
            BTreeMap::from([("acme-prod-api".to_string(), service("1.1.0", "old", 1, &[]))]);
        let replicas = |s: &str| m.replicas_in("prod", s) as u64;
        let cs = changes(desired(), &running, &replicas);
        let by = |s: &str| cs.iter().find(|c| c.service == s).unwrap();
        let (a, w) = (by("api"), by("web"));
        assert_eq!(
            (a.kind, a.from.as_deref(), a.to.as_str(), a.replicas_from),
            (ChangeKind::Upgrade, Some("1.1.0"), "1.2.0", Some(1))
        );
        assert_eq!(
            (w.kind, w.from.clone(), w.replicas, w.replicas_from),
            (ChangeKind::Create, None, 2, None)
        );
        let p = SwarmPlan {
            platform: "acme".into(),
            environment: "prod".into(),
            endpoint: "e".into(),
            changes: cs,
            retire: vec![],
        };
        assert_eq!(p.pending(), 2);
    }

    #[test]
    fn the_replaced_version_joins_the_history_newest_first_and_retain_long() {
        let p = plan_with(Some(service("1.1.0", "h1.1.0", 1, &[past("1.0.0")])));
        let h = next_history(&p.changes[0], 5);
        assert_eq!(
            h.iter().map(|p| p.version.as_str()).collect::<Vec<_>>(),
            ["1.1.0", "1.0.0"]
        );
        assert_eq!(h[0].image, "r/api:1.1.0@sha256:1.1.0");
        assert_eq!(next_history(&p.changes[0], 1).len(), 1);
        assert_eq!(
            next_history(&p.changes[0], 0).len(),
            1,
            "at least one is kept"
        );
    }

    #[test]
    fn a_service_an_older_fleetpin_deployed_passes_no_scheme_1_hash_into_the_new_history() {
        let mut old = service("1.1.0", "scheme-1-current", 1, &[past("1.0.0")]);
        old.labels.remove(labels::SPEC_HASH_SCHEME_LABEL);
        let p = plan_with(Some(old));
        let h = next_history(&p.changes[0], 5);
        assert_eq!(
            h.iter().map(|p| p.version.as_str()).collect::<Vec<_>>(),
            ["1.1.0", "1.0.0"]
        );
        let text = serde_json::to_string(&h).unwrap();
        assert!(
            !text.contains("scheme-1-current") && !text.contains("h1.0.0"),
            "{text}"
        );
    }

    #[test]
    fn deploying_a_kept_version_again_takes_it_out_of_the_history() {
        let r = api();
        let mine = Past {
            version: "1.2.0".into(),
            spec_hash: r.spec_hash.clone(),
            image: "r/api:1.2.0".into(),
        };
        let p = plan_with(Some(service("1.3.0", "h1.3.0", 1, &[mine, past("1.1.0")])));
        let h = next_history(&p.changes[0], 5);
        assert_eq!(
            h.iter().map(|p| p.version.as_str()).collect::<Vec<_>>(),
            ["1.3.0", "1.1.0"]
        );
    }

    #[test]
    fn rollback_walks_back_through_the_history_never_forward() {
        let p = plan_with(Some(service(
            "1.2.0",
            "h1.2.0",
            2,
            &[past("1.1.0"), past("1.0.0")],
        )));
        let back = rollback_plan(&p, None).unwrap();
        let c = &back[0];
        assert_eq!(
            (c.kind, c.from.as_deref(), c.to.as_str()),
            (ChangeKind::Downgrade, Some("1.2.0"), "1.1.0")
        );
        assert_eq!((c.replicas_from, c.replicas), (Some(2), 2));
        assert_eq!(c.image.as_deref(), Some("r/api:1.1.0@sha256:1.1.0"));
        assert_eq!(c.history.as_deref(), Some(&[past("1.0.0")][..]));
        assert_eq!(c.resolved.pin.to_string(), "1.1.0");
        assert_eq!(c.resolved.spec_hash, resolve::spec_hash(&c.resolved));
        // What it steps away from is not kept: the next rollback goes further back.
        assert_eq!(next_history(c, 5), vec![past("1.0.0")]);
        let to = rollback_plan(&p, Some("1.0.0")).unwrap();
        assert_eq!(
            (to[0].to.as_str(), to[0].history.as_deref()),
            ("1.0.0", Some(&[][..]))
        );
    }

    #[test]
    fn rollback_refusals_name_the_service_and_what_is_kept() {
        let none = plan_with(None);
        let e = rollback_plan(&none, None).unwrap_err();
        assert_eq!(
            e.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["api: no Swarm service acme-prod-api runs, so there is nothing to go back from"]
        );
        let bare = plan_with(Some(service("1.2.0", "h", 1, &[])));
        let msg = |p: &SwarmPlan, to| rollback_plan(p, to).unwrap_err()[0].to_string();
        assert_eq!(
            msg(&bare, None),
            "api: nothing to go back to (no earlier version kept)"
        );
        assert_eq!(
            msg(&bare, Some("0.9.0")),
            "api: 0.9.0 is not in its history (kept: none)"
        );
        let kept = plan_with(Some(service(
            "1.2.0",
            "h",
            1,
            &[past("1.1.0"), past("1.0.0")],
        )));
        assert_eq!(
            msg(&kept, Some("0.9.0")),
            "api: 0.9.0 is not in its history (kept: 1.1.0, 1.0.0)"
        );
        let odd = plan_with(Some(service("1.2.0", "h", 1, &[past("not a version!")])));
        assert_eq!(
            msg(&odd, None),
            "api: its history names `not a version!`, which is not a version"
        );
    }

    #[test]
    fn only_running_tasks_of_the_spec_serve() {
        let task = |desired: &str, state: &str, hash: &str| TaskInfo {
            desired: desired.into(),
            state: state.into(),
            labels: BTreeMap::from([(labels::SPEC_HASH.into(), hash.into())]),
            ..Default::default()
        };
        let tasks = [
            task("running", "running", "new"),
            task("running", "running", "old"),
            task("running", "starting", "new"),
            task("shutdown", "running", "new"),
            task("running", "running", "new"),
        ];
        assert_eq!(serving(&tasks, "new"), 2);
        assert_eq!(serving(&tasks, "old"), 1);
    }

    #[test]
    fn a_scale_keeps_the_stamp_the_service_carries() {
        let mut s = service("1.2.0", "h", 1, &[]);
        s.labels.insert(labels::COMMIT.into(), "abc".into());
        s.labels.insert(labels::DEPLOYED_BY.into(), "ann".into());
        let st = kept_stamp(&s);
        assert_eq!(
            (
                st.commit.as_str(),
                st.deployed_at.as_str(),
                st.deployed_by.as_str()
            ),
            ("abc", "", "ann")
        );
    }
}
