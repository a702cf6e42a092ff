//! What the pull agent (`fleetpin agent`) does on its one host beyond apply's work: its work
//! for the runner (`Follow`: apply's plan without the releases that already failed their gate
//! here, so a broken release is not tried again every interval), and its status container.
//!
//! The status container is, like the lock, a never-started container (the lock's image, no
//! network) named `{platform}-{environment}.agent`; its labels say the last sync: commit, time,
//! result, reason, interval, and the releases refused on this host, so a restarted agent does not
//! try them again either. Labels cannot change, so each sync replaces it (the one replaced steps
//! aside as `….agent.old` until its successor exists, so a reader always finds one). Its name is outside the
//! environment's `{platform}-{environment}-` prefix: the planner never sees it, so it is never an
//! orphan, and the engine's `Created` of the newest one is when the agent last synced, by the
//! engine's clock (what `audit` judges `stale` with).

use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::host::converge::execute;
use crate::host::report::{HostReport, Progress};
use crate::host::runner::{HostWork, OnHost, Target};
use crate::manifest::resolve::ResolvedService;
use crate::plan::labels;
use crate::plan::{self, Change};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The status container's name.
pub fn status_name(platform: &str, environment: &str) -> String {
    format!("{platform}-{environment}.agent")
}

/// Releases refused on a host: service → the release key (`release_keys`) that failed its gate.
pub type Refused = BTreeMap<String, String>;

/// What names a release in the agent's memory of refusals, per service: its spec hash, and when
/// it reads SOPS files, `+` and a digest of those files as committed (`tags`: ciphertext, never
/// a value) — secret values are not in the spec hash, and a corrected secret must be tried again.
pub fn release_keys(
    desired: &[Arc<ResolvedService>],
    tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .map(|r| {
            let key = match tags.get(&r.service) {
                Some(t) => format!("{}+{t}", r.spec_hash),
                None => r.spec_hash.clone(),
            };
            (r.service.clone(), key)
        })
        .collect()
}

/// The changes of `changes` the agent makes: not a release refused here (same service, same
/// release key), and never an orphan's removal (agents do not prune).
pub fn without_refused(
    changes: Vec<Change>,
    keys: &BTreeMap<String, String>,
    refused: &Refused,
) -> Vec<Change> {
    changes
        .into_iter()
        .filter(|c| c.kind != plan::ChangeKind::RemoveOrphan)
        .filter(|c| !is_refused(c, keys, refused))
        .collect()
}

/// Whether `c` would try again a release refused on this host.
pub fn is_refused(c: &Change, keys: &BTreeMap<String, String>, refused: &Refused) -> bool {
    c.kind.is_pending()
        && refused
            .get(&c.service)
            .is_some_and(|h| keys.get(&c.service) == Some(h))
}

/// The agent's work on its host, for the runner: apply's, planned under the lock, minus the
/// releases refused here.
pub struct Follow {
    pub refused: Refused,
    /// The release key of each desired service (`release_keys`).
    pub keys: BTreeMap<String, String>,
}

impl<E: Engine> HostWork<E> for Follow {
    async fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        on: OnHost<'_>,
        progress: Progress<'_>,
    ) -> HostReport {
        let changes = without_refused(
            plan::plan_host(&target.desired, on.view),
            &self.keys,
            &self.refused,
        );
        execute(engine, target, &changes, on, false, progress).await
    }
}

/// One sync of an agent, as its status container records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sync {
    pub host: String,
    /// The commit of the reference it synced to (none when the fetch failed before any).
    pub commit: Option<String>,
    /// When, by the agent's clock (RFC 3339).
    pub synced_at: String,
    /// `in-sync`, `converged`, `refused` (a release failed its gate here and is held back),
    /// `failed`, `locked`, `error`.
    pub result: String,
    pub reason: Option<String>,
    pub interval_secs: u64,
    pub refused: Refused,
    pub repo: String,
    /// The last commit this host converged to (in sync): what a new commit must descend from.
    pub applied: Option<String>,
    /// Following `oci://`: the artifact (`sha256:…`) the commit came from.
    pub digest: Option<String>,
}

/// Labels hold at most this much of a reason.
const MAX_REASON: usize = 1000;

impl Sync {
    pub fn labels(&self, platform: &str, environment: &str) -> BTreeMap<String, String> {
        let mut l = labels::for_resource(platform, environment);
        l.insert(labels::AGENT_HOST.into(), self.host.clone());
        l.insert(
            labels::AGENT_COMMIT.into(),
            self.commit.clone().unwrap_or_default(),
        );
        l.insert(labels::AGENT_SYNCED_AT.into(), self.synced_at.clone());
        l.insert(labels::AGENT_RESULT.into(), self.result.clone());
        let mut reason = self.reason.clone().unwrap_or_default();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        l.insert(labels::AGENT_REASON.into(), reason);
        l.insert(
            labels::AGENT_INTERVAL.into(),
            self.interval_secs.to_string(),
        );
        l.insert(
            labels::AGENT_FAILED.into(),
            self.refused
                .iter()
                .map(|(s, h)| format!("{s}={h}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        l.insert(labels::AGENT_REPO.into(), self.repo.clone());
        l.insert(
            labels::AGENT_APPLIED.into(),
            self.applied.clone().unwrap_or_default(),
        );
        if let Some(d) = &self.digest {
            l.insert(labels::AGENT_DIGEST.into(), d.clone());
        }
        l
    }

    /// Reads a status container's labels back.
    pub fn from_labels(l: &BTreeMap<String, String>) -> Sync {
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        let some = |k: &str| l.get(k).filter(|v| !v.is_empty()).cloned();
        Sync {
            host: get(labels::AGENT_HOST),
            commit: some(labels::AGENT_COMMIT),
            synced_at: get(labels::AGENT_SYNCED_AT),
            result: get(labels::AGENT_RESULT),
            reason: some(labels::AGENT_REASON),
            interval_secs: get(labels::AGENT_INTERVAL).parse().unwrap_or(0),
            refused: get(labels::AGENT_FAILED)
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(s, h)| (s.to_string(), h.to_string()))
                .collect(),
            repo: get(labels::AGENT_REPO),
            applied: some(labels::AGENT_APPLIED),
            digest: some(labels::AGENT_DIGEST),
        }
    }
}

/// The name a status container takes while its successor is created: a reader that comes in
/// between finds the sync before, never nothing.
fn outgoing_name(platform: &str, environment: &str) -> String {
    format!("{}.old", status_name(platform, environment))
}

/// The status container of `platform`/`environment` on a host, if there is one: the current
/// one, or during a replacement the one being replaced.
pub async fn read_status<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
) -> Result<Option<ContainerSummary>, EngineError> {
    let name = status_name(platform, environment);
    let outgoing = outgoing_name(platform, environment);
    let mut found = engine.list_containers(&name).await?;
    let current = found.iter().position(|c| c.name == name);
    let previous = found.iter().position(|c| c.name == outgoing);
    Ok(current.or(previous).map(|i| found.swap_remove(i)))
}

/// Replaces the status container by one recording `sync`; returns the new one's id.
///
/// The current one steps aside under a second name before its successor takes the name, and
/// is removed only then, so `audit` reading meanwhile sees a sync, not "no agent". A second
/// name left by a sync killed halfway is removed first.
pub async fn write_status<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
    sync: &Sync,
) -> Result<String, EngineError> {
    let name = status_name(platform, environment);
    let outgoing = outgoing_name(platform, environment);
    let labels = sync.labels(platform, environment);
    let found = engine.list_containers(&name).await?;
    let gone = |r: Result<(), EngineError>| match r {
        Ok(()) | Err(EngineError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    };
    let mut current = None;
    for c in found {
        if c.name == outgoing {
            gone(engine.remove_lock(&c.id).await)?;
        } else if c.name == name {
            current = Some(c.id);
        }
    }
    if let Some(id) = &current {
        gone(engine.rename(id, &outgoing).await)?;
    }
    let id = match engine.create_lock(&name, &labels).await {
        Ok(id) => id,
        Err(EngineError::Conflict { .. }) => {
            // Created meanwhile by another run of the agent on this host: the newest wins.
            if let Some(other) = engine
                .list_containers(&name)
                .await?
                .into_iter()
                .find(|c| c.name == name)
            {
                gone(engine.remove_lock(&other.id).await)?;
            }
            engine.create_lock(&name, &labels).await?
        }
        Err(e) => return Err(e),
    };
    if let Some(old) = &current {
        gone(engine.remove_lock(old).await)?;
    }
    Ok(id)
}

/// What one sync of a pull agent did: the sync recorded on the host, and its run there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub sync: Sync,
    /// The run on the host, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<HostReport>,
    /// Whether the result or the commit differs from the sync before.
    #[serde(skip)]
    pub changed: bool,
    /// Whether this sync is news for the webhooks: it changed the host, or its result differs
    /// from the sync before.
    #[serde(skip)]
    pub news: bool,
    /// How long the sync itself took (fetch, checks, the run on the host), for its metric.
    #[serde(skip)]
    pub took: std::time::Duration,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(self.sync.result.as_str(), "in-sync" | "converged")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_survives_its_labels() {
        let s = Sync {
            host: "h1".into(),
            commit: Some("abc".into()),
            synced_at: "2026-01-01T00:00:00Z".into(),
            result: "refused".into(),
            reason: Some("web: unhealthy".into()),
            interval_secs: 30,
            refused: BTreeMap::from([
                ("web".into(), "sha256:1".into()),
                ("api".into(), "sha256:2".into()),
            ]),
            repo: "git://x/r.git".into(),
            applied: Some("abb".into()),
            digest: Some("sha256:42".into()),
        };
        let l = s.labels("p", "prod");
        assert_eq!(l[labels::PLATFORM], "p");
        assert_eq!(l[labels::ENVIRONMENT], "prod");
        assert_eq!(Sync::from_labels(&l), s);
    }

    #[test]
    fn the_status_name_is_outside_the_environment_prefix() {
        let name = status_name("shop", "prod");
        assert!(!name.starts_with(&crate::plan::view::prefix("shop", "prod")));
    }

    #[test]
    fn a_reader_finds_the_last_sync_even_when_its_successor_fails_halfway() {
        use crate::engine::memory::MemoryEngine;
        use futures::executor::block_on;
        let e = MemoryEngine::new(vec![]);
        let sync = |commit: &str| Sync {
            host: "h1".into(),
            commit: Some(commit.into()),
            synced_at: "2026-01-01T00:00:00Z".into(),
            result: "in-sync".into(),
            reason: None,
            interval_secs: 30,
            refused: Refused::new(),
            repo: "git://x/r.git".into(),
            applied: Some(commit.into()),
            digest: None,
        };
        let read = || {
            block_on(read_status(&e, "shop", "prod"))
                .unwrap()
                .map(|c| Sync::from_labels(&c.labels).commit.unwrap_or_default())
        };
        block_on(write_status(&e, "shop", "prod", &sync("a"))).unwrap();
        assert_eq!(read().as_deref(), Some("a"));
        // The engine fails the successor's creation: the sync before stays readable, where
        // removing it first left the host with no status at all.
        e.fail_next("create_lock", "shop-prod.agent");
        assert!(block_on(write_status(&e, "shop", "prod", &sync("b"))).is_err());
        assert_eq!(read().as_deref(), Some("a"));
        // The next sync replaces it and leaves exactly one status container, its own.
        let id = block_on(write_status(&e, "shop", "prod", &sync("c"))).unwrap();
        assert_eq!(read().as_deref(), Some("c"));
        let all = block_on(e.list_containers("shop-prod.agent")).unwrap();
        let all: Vec<_> = all
            .iter()
            .map(|c| (c.name.as_str(), c.id.as_str()))
            .collect();
        assert_eq!(all, vec![("shop-prod.agent", id.as_str())]);
    }
}
