//! Which container a rollback starts: a pure choice over a host's classified containers.
//!
//! Rollback walks back. Its default target is the newest `.prev-` container created (by the
//! engine's clock) before the one running now; a container a rollback stepped away from
//! (`.rolled-back-`) is never a default target, so two rollbacks go two releases back and never
//! forward again. `--to VERSION` may name any kept version, rolled back from or not; when none is
//! kept but the image is still on the host, a new container is made from it. A failed container
//! is never chosen. Across hosts, every host must go back to the same version: `agree` says so
//! before any host is touched.
//!
//! A rollback killed half-way left its target under the stable name and the container it stepped
//! away from as `.old-rb-`: run again, it finishes that rollback (repair confirms it) rather than
//! going one more step back — a re-run never goes two releases back.

use crate::manifest::pin::VersionPin;
use crate::observed::ContainerSummary;
use crate::plan::labels;
use crate::plan::view::HostView;
use std::collections::BTreeMap;

/// What rollback will start for one service on one host.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Start this kept container again.
    Retained(ContainerSummary),
    /// No container of that version is kept: create one from its image, if the host has it.
    Recreate(VersionPin),
    /// An interrupted rollback left this container under the stable name: finishing it is the
    /// rollback (repair does it under the lock).
    Finish(ContainerSummary),
}

impl Choice {
    /// The version the host will run, as its label or pin reads.
    pub fn version(&self) -> String {
        match self {
            Choice::Retained(c) | Choice::Finish(c) => version_of(c).to_string(),
            Choice::Recreate(p) => p.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("nothing to roll back to: no previous container created before the running one is retained{}", rolled_back_hint(.0))]
    NothingRetained(Vec<String>),
    #[error("`{0}` is not a version: {1}")]
    BadVersion(String, String),
}

fn rolled_back_hint(versions: &[String]) -> String {
    if versions.is_empty() {
        String::new()
    } else {
        format!(
            " (kept but rolled back from: {}; name one with --to)",
            versions.join(", ")
        )
    }
}

pub fn version_of(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::VERSION)
        .map(String::as_str)
        .unwrap_or("?")
}

/// Whether the kept container `c` is the version `wanted` names: the pin as written, or its tag
/// when `wanted` has no digest.
fn matches(c: &ContainerSummary, written: &str, wanted: &VersionPin) -> bool {
    let have = version_of(c);
    have == written
        || VersionPin::parse(have).is_ok_and(|p| {
            p.tag == wanted.tag && (wanted.digest.is_none() || p.digest == wanted.digest)
        })
}

/// The choice for one service on one host: back one step, or `to` a named version.
pub fn choose(view: &HostView, service: &str, to: Option<&str>) -> Result<Choice, ChoiceError> {
    let interrupted = view
        .unconfirmed
        .get(service)
        .and_then(|u| u.first())
        .is_some_and(|o| labels::by_rollback(&o.name));
    if interrupted && let Some(cur) = view.current.get(service) {
        let finishes = match to {
            None => true,
            Some(v) => VersionPin::parse(v).is_ok_and(|w| matches(cur, v, &w)),
        };
        if finishes {
            return Ok(Choice::Finish(cur.clone()));
        }
    }
    match to {
        None => {
            let current_created = view.current.get(service).map(|c| c.created);
            let back = view
                .retained
                .get(service)
                .into_iter()
                .flatten()
                .find(|c| current_created.is_none_or(|cur| c.created < cur));
            match back {
                Some(c) => Ok(Choice::Retained(c.clone())),
                None => Err(ChoiceError::NothingRetained(
                    view.rolled_back
                        .get(service)
                        .into_iter()
                        .flatten()
                        .map(|c| version_of(c).to_string())
                        .collect(),
                )),
            }
        }
        Some(v) => {
            let wanted = VersionPin::parse(v)
                .map_err(|e| ChoiceError::BadVersion(v.to_string(), e.to_string()))?;
            match view
                .kept(service)
                .into_iter()
                .find(|c| matches(c, v, &wanted))
            {
                Some(c) => Ok(Choice::Retained(c.clone())),
                None => Ok(Choice::Recreate(wanted)),
            }
        }
    }
}

/// Why the hosts cannot go back together, one problem of those `agree` found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    /// This host has nothing (or no such version) to go back to for this service.
    #[error("{host}: {service}: {error}")]
    NoChoice {
        host: String,
        service: String,
        error: ChoiceError,
    },
    /// The hosts would go back to different versions: name one with `--to`.
    #[error("{service}: the hosts would go back to different versions ({}); choose one with --to", by_version.iter().map(|(v, h)| format!("{v} on {}", h.join(", "))).collect::<Vec<_>>().join("; "))]
    Versions {
        service: String,
        /// version → the hosts that would go back to it.
        by_version: BTreeMap<String, Vec<String>>,
    },
}

/// For each service, the one version every host would go back to, or why not: a host with
/// nothing to go back to, or hosts that would go to different versions. `hosts` pairs each
/// reachable host's name with its view and the services that run there.
pub fn agree(
    hosts: &[(String, &HostView, Vec<String>)],
    services: &[String],
    to: Option<&str>,
) -> Result<BTreeMap<String, String>, Vec<Disagreement>> {
    let mut targets = BTreeMap::new();
    let mut problems = Vec::new();
    for service in services {
        let mut by_version: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (host, view, on_host) in hosts {
            if !on_host.contains(service) {
                continue;
            }
            match choose(view, service, to) {
                Ok(choice) => by_version
                    .entry(choice.version())
                    .or_default()
                    .push(host.clone()),
                Err(error) => problems.push(Disagreement::NoChoice {
                    host: host.clone(),
                    service: service.clone(),
                    error,
                }),
            }
        }
        match by_version.len() {
            0 => {}
            1 => {
                let (v, _) = by_version.into_iter().next().expect("one entry");
                targets.insert(service.clone(), v);
            }
            _ => problems.push(Disagreement::Versions {
                service: service.clone(),
                by_version,
            }),
        }
    }
    if problems.is_empty() {
        Ok(targets)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::view::classify;

    fn c(name: &str, version: &str, created: i64) -> ContainerSummary {
        crate::plan::view::fixture(name, name, "billing", Some(version), created)
    }

    /// acme prod's containers of billing as (name, version, created).
    fn view(cs: &[(&str, &str, i64)]) -> HostView {
        let list: Vec<ContainerSummary> = cs.iter().map(|(n, v, t)| c(n, v, *t)).collect();
        classify("acme", "prod", &list)
    }

    fn target(view: &HostView, to: Option<&str>) -> Result<String, ChoiceError> {
        choose(view, "billing", to).map(|c| c.version())
    }

    #[test]
    fn back_means_the_newest_prev_created_before_the_running_one() {
        let view = view(&[
            ("acme-prod-billing", "2.4.1", 40),
            ("acme-prod-billing.prev-0000000000001-a", "2.3.0", 10),
            ("acme-prod-billing.prev-0000000000002-b", "2.4.0", 20),
            ("acme-prod-billing.failed-0000000000003-c", "2.4.2", 30),
        ]);
        assert_eq!(target(&view, None).unwrap(), "2.4.0");
        assert_eq!(target(&view, Some("2.3.0")).unwrap(), "2.3.0");
        assert_eq!(
            choose(&view, "billing", Some("2.4.2")).unwrap(),
            Choice::Recreate(VersionPin::parse("2.4.2").unwrap()),
            "a failed container is never started again"
        );
        assert_eq!(
            choose(&view, "crm", None),
            Err(ChoiceError::NothingRetained(vec![]))
        );
    }

    #[test]
    fn two_rollbacks_go_two_steps_back_never_forward() {
        // 1.0.0 -> 1.1.0 -> 2.0.0, then one rollback: 1.1.0 runs, 2.0.0 was rolled back from.
        let after_one = view(&[
            ("acme-prod-billing", "1.1.0", 20),
            ("acme-prod-billing.prev-1-a", "1.0.0", 10),
            ("acme-prod-billing.rolled-back-3-b", "2.0.0", 30),
        ]);
        assert_eq!(target(&after_one, None).unwrap(), "1.0.0");
        // After the second one nothing is older: an error, naming what --to could pick.
        let after_two = view(&[
            ("acme-prod-billing", "1.0.0", 10),
            ("acme-prod-billing.rolled-back-4-a", "1.1.0", 20),
            ("acme-prod-billing.rolled-back-3-b", "2.0.0", 30),
        ]);
        assert_eq!(
            target(&after_two, None),
            Err(ChoiceError::NothingRetained(vec![
                "2.0.0".into(),
                "1.1.0".into()
            ]))
        );
        assert_eq!(target(&after_two, Some("2.0.0")).unwrap(), "2.0.0");
    }

    #[test]
    fn after_to_an_older_version_back_never_picks_a_newer_one() {
        // `--to 1.0.0` from 2.0.0: 1.1.0 is a .prev- but created after 1.0.0.
        let view = view(&[
            ("acme-prod-billing", "1.0.0", 10),
            ("acme-prod-billing.prev-2-a", "1.1.0", 20),
            ("acme-prod-billing.rolled-back-3-b", "2.0.0", 30),
        ]);
        assert!(matches!(
            target(&view, None),
            Err(ChoiceError::NothingRetained(_))
        ));
    }

    #[test]
    fn a_rollback_killed_half_way_is_finished_not_repeated() {
        // Killed after the kept 1.1.0 took the name: 2.0.0 is stepped aside, unconfirmed.
        let view = view(&[
            ("acme-prod-billing", "1.1.0", 20),
            ("acme-prod-billing.prev-1-a", "1.0.0", 10),
            ("acme-prod-billing.old-rb-3-b", "2.0.0", 30),
        ]);
        assert_eq!(target(&view, None).unwrap(), "1.1.0");
        assert!(matches!(
            choose(&view, "billing", None),
            Ok(Choice::Finish(_))
        ));
        assert_eq!(target(&view, Some("1.0.0")).unwrap(), "1.0.0");
    }

    #[test]
    fn hosts_must_agree_before_any_is_touched() {
        let a = view(&[
            ("acme-prod-billing", "2.0.0", 30),
            ("acme-prod-billing.prev-1-a", "1.1.0", 20),
        ]);
        let b = view(&[
            ("acme-prod-billing", "2.0.0", 30),
            ("acme-prod-billing.prev-1-a", "1.0.0", 10),
        ]);
        let s = vec!["billing".to_string()];
        let hosts = vec![
            ("h1".to_string(), &a, s.clone()),
            ("h2".to_string(), &b, s.clone()),
        ];
        let err = agree(&hosts, &s, None).unwrap_err();
        assert!(
            err[0].to_string().contains("1.0.0 on h2; 1.1.0 on h1"),
            "{err:?}"
        );
        assert_eq!(
            agree(&hosts, &s, Some("1.0.0")).unwrap()["billing"],
            "1.0.0",
            "--to settles it"
        );
        let one = vec![("h1".to_string(), &a, s.clone())];
        assert_eq!(agree(&one, &s, None).unwrap()["billing"], "1.1.0");
    }
}
