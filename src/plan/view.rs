//! One host's containers sorted by role: the current one of each service, the retained previous
//! ones (`.prev-`, and `.rolled-back-` for those a rollback stepped away from), the failed one,
//! what an interrupted run left (`.new-`, `.old-`), retained containers the engine refused to
//! start and then to remove (`.broken-`: outside `retain`, never chosen), and foreign containers
//! on our names.
//!
//! Retained containers are ordered by the engine's `Created` (newest first), never by the
//! client-clock suffix in their names: "back" means created earlier on that engine, whatever the
//! clocks of the laptops that deployed them said.

use crate::observed::ContainerSummary;
use crate::plan::labels::{self, Role};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct HostView {
    pub current: BTreeMap<String, ContainerSummary>,
    /// `.prev-` containers, newest created first.
    pub retained: BTreeMap<String, Vec<ContainerSummary>>,
    /// `.rolled-back-` containers (a rollback stepped away from them), newest created first.
    pub rolled_back: BTreeMap<String, Vec<ContainerSummary>>,
    pub failed: BTreeMap<String, Vec<ContainerSummary>>,
    /// `.broken-` containers: never kept, relaunched or rolled back to; removed when the engine
    /// allows.
    pub broken: BTreeMap<String, Vec<ContainerSummary>>,
    /// `.new-` containers: created by a swap that did not finish.
    pub pending: Vec<ContainerSummary>,
    /// `.old-` containers: stepped aside by a swap not confirmed yet (the run may have been killed).
    pub unconfirmed: BTreeMap<String, Vec<ContainerSummary>>,
    /// Containers fleetpin did not create holding one of its stable names, by name.
    pub foreign: BTreeMap<String, ContainerSummary>,
    /// Containers whose secret values differ from the ones wanted now (their spec hash, which
    /// holds no value, cannot tell): filled by whoever read their environment.
    pub stale_secrets: std::collections::BTreeSet<String>,
    /// Containers an engine crash left unable to serve as they are, with why (stopped under the
    /// crash, or started again in place without their network): replaced, never started again
    /// in place nor relaunched. Filled by whoever asked the engine (`host::crashed`).
    pub untrusted: BTreeMap<String, String>,
}

pub fn prefix(platform: &str, environment: &str) -> String {
    format!("{platform}-{environment}-")
}

fn ours(c: &ContainerSummary, platform: &str, environment: &str, service: &str) -> bool {
    c.labels.get(labels::PLATFORM).map(String::as_str) == Some(platform)
        && c.labels.get(labels::ENVIRONMENT).map(String::as_str) == Some(environment)
        && c.labels.get(labels::SERVICE).map(String::as_str) == Some(service)
}

/// Newest created first; equal seconds fall back to the name's suffix, then the id.
pub fn newest_first(list: &mut [ContainerSummary]) {
    list.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| b.name.cmp(&a.name))
            .then_with(|| b.id.cmp(&a.id))
    });
}

/// Sorts a host's containers (as listed with the environment's name prefix) by role.
pub fn classify(platform: &str, environment: &str, containers: &[ContainerSummary]) -> HostView {
    classify_owned(platform, environment, containers.to_vec())
}

/// `classify`, keeping the list's containers rather than copies: over a fleet's lists, the copy
/// was the largest allocation of `plan` and `audit`.
pub fn classify_owned(
    platform: &str,
    environment: &str,
    containers: Vec<ContainerSummary>,
) -> HostView {
    let prefix = prefix(platform, environment);
    let mut v = HostView::default();
    for c in containers {
        let Some((service, role)) = labels::parse_name(&prefix, &c.name) else {
            continue;
        };
        if !ours(&c, platform, environment, service) {
            if role == Role::Current {
                v.foreign.insert(c.name.clone(), c);
            }
            continue;
        }
        let service = service.to_string();
        match role {
            Role::Current => {
                v.current.insert(service, c);
            }
            Role::Retained => v.retained.entry(service).or_default().push(c),
            Role::RolledBack => v.rolled_back.entry(service).or_default().push(c),
            Role::Failed => v.failed.entry(service).or_default().push(c),
            Role::Broken => v.broken.entry(service).or_default().push(c),
            Role::Pending => {
                // A kept container a killed start-first swap was starting: repair keeps it
                // again, so decisions (rollback's choice) count it as kept already.
                if c.name.contains(labels::NEW_KEPT_RB) {
                    v.rolled_back
                        .entry(service.clone())
                        .or_default()
                        .push(c.clone());
                } else if c.name.contains(labels::NEW_KEPT) {
                    v.retained
                        .entry(service.clone())
                        .or_default()
                        .push(c.clone());
                }
                v.pending.push(c)
            }
            Role::Unconfirmed => v.unconfirmed.entry(service).or_default().push(c),
        }
    }
    for list in v
        .retained
        .values_mut()
        .chain(v.rolled_back.values_mut())
        .chain(v.failed.values_mut())
        .chain(v.unconfirmed.values_mut())
    {
        newest_first(list);
    }
    v
}

impl HostView {
    /// Whether an interrupted run left work that `apply` (or `rollback`) repairs first.
    pub fn needs_repair(&self) -> bool {
        !self.pending.is_empty() || !self.unconfirmed.is_empty()
    }

    /// Every kept previous container of a service (both retained roles), newest created first:
    /// what `retain` counts and what `--to` and a relaunch may pick.
    pub fn kept(&self, service: &str) -> Vec<&ContainerSummary> {
        let mut all: Vec<&ContainerSummary> = self
            .retained
            .get(service)
            .into_iter()
            .flatten()
            .chain(self.rolled_back.get(service).into_iter().flatten())
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
        all
    }

    /// The newest kept container of a service whose spec hash is one of `hashes` and whose
    /// secrets are current: the one `apply` starts again rather than creating a new one. The same
    /// pick as the first match in `kept` (names are unique on a host, so the order has no ties),
    /// without building the list.
    pub fn relaunchable(&self, service: &str, hashes: &[&str]) -> Option<&ContainerSummary> {
        self.retained
            .get(service)
            .into_iter()
            .flatten()
            .chain(self.rolled_back.get(service).into_iter().flatten())
            .filter(|k| {
                k.labels
                    .get(labels::SPEC_HASH)
                    .is_some_and(|h| hashes.contains(&h.as_str()))
                    && !self.stale_secrets.contains(&k.id)
                    && !self.untrusted.contains_key(&k.id)
            })
            .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)))
    }

    /// Every container of a service fleetpin manages on this host, in any role.
    pub fn all_of(&self, service: &str) -> Vec<&ContainerSummary> {
        self.current
            .get(service)
            .into_iter()
            .chain(self.kept(service))
            .chain(self.failed.get(service).into_iter().flatten())
            .chain(self.broken.get(service).into_iter().flatten())
            .chain(self.unconfirmed.get(service).into_iter().flatten())
            .collect()
    }
}

/// A stopped container of acme's prod (of `version`, when given), for the planner's unit tests.
#[cfg(test)]
pub(crate) fn fixture(
    id: &str,
    name: &str,
    service: &str,
    version: Option<&str>,
    created: i64,
) -> ContainerSummary {
    use crate::observed::{Health, RunState};
    let mut labels = BTreeMap::from([
        (labels::PLATFORM.to_string(), "acme".to_string()),
        (labels::ENVIRONMENT.into(), "prod".into()),
        (labels::SERVICE.into(), service.into()),
    ]);
    if let Some(v) = version {
        labels.insert(labels::VERSION.into(), v.into());
    }
    ContainerSummary {
        id: id.into(),
        name: name.into(),
        image: "r".into(),
        image_id: "i".into(),
        state: RunState::Exited,
        health: Health::None,
        labels,
        created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, service: &str, created: i64) -> ContainerSummary {
        fixture(&format!("id-{name}"), name, service, None, created)
    }

    #[test]
    fn retained_are_ordered_by_the_engines_created_not_the_name() {
        // The second laptop's clock was behind: its suffix sorts first, its container is newer.
        let list = [
            c("acme-prod-web.prev-9999999999999-a", "web", 100),
            c("acme-prod-web.prev-0000000000001-b", "web", 200),
            c("acme-prod-web.rolled-back-0000000000002-c", "web", 300),
        ];
        let v = classify("acme", "prod", &list);
        assert_eq!(v.retained["web"][0].created, 200);
        assert_eq!(v.rolled_back["web"].len(), 1);
        let kept: Vec<i64> = v.kept("web").iter().map(|c| c.created).collect();
        assert_eq!(kept, [300, 200, 100]);
    }

    #[test]
    fn the_relaunchable_one_is_the_newest_kept_with_that_spec_across_both_roles() {
        let with = |name: &str, created: i64, hash: &str| {
            let mut k = c(name, "web", created);
            k.labels.insert(labels::SPEC_HASH.into(), hash.into());
            k
        };
        let list = [
            with("acme-prod-web.prev-9999999999999-a", 100, "h1"),
            with("acme-prod-web.prev-0000000000001-b", 200, "h1"),
            with("acme-prod-web.rolled-back-0000000000002-c", 300, "h2"),
            with("acme-prod-web.rolled-back-0000000000003-d", 150, "h1"),
        ];
        let v = classify("acme", "prod", &list);
        for hash in ["h1", "h2", "h3"] {
            let first_in_kept = v
                .kept("web")
                .into_iter()
                .find(|k| k.labels.get(labels::SPEC_HASH).map(String::as_str) == Some(hash))
                .map(|k| k.name.clone());
            let picked = v.relaunchable("web", &[hash]).map(|k| k.name.clone());
            assert_eq!(picked, first_in_kept, "{hash}");
        }
        assert_eq!(
            v.relaunchable("web", &["h1"]).unwrap().name,
            "acme-prod-web.prev-0000000000001-b"
        );
    }
}
