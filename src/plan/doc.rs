//! A plan as a document: what `plan --format json` prints and `plan -o` saves for
//! `apply --plan`, with each host's state fingerprint; and which services and hosts a command
//! selects. Secrets never appear: specs are referenced by their hash.

use crate::plan::{Change, ChangeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PLAN_FORMAT: &str = "fleetpin-plan/1";

/// Which services and hosts a command works on (empty: all).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub services: Vec<String>,
    pub hosts: Vec<String>,
}

/// Why a saved plan no longer describes a host, so `apply --plan` refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StalePlan {
    #[error("not in the saved plan")]
    HostNotInPlan,
    #[error("the host changed since the plan was made; run `fleetpin plan` again")]
    HostChanged,
    #[error(
        "the manifest changed since the plan was made ({service} differs); run `fleetpin plan` again"
    )]
    ManifestChanged { service: String },
}

/// A plan as printed with `--format json` and saved with `-o`. Secrets never appear: specs are
/// referenced by their hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDoc {
    pub format: String,
    pub platform: String,
    pub environment: String,
    pub commit: String,
    pub created_at: String,
    pub hosts: Vec<PlanHost>,
    pub summary: BTreeMap<String, usize>,
    /// A deploy window holds changes now: by which window, until when (apply would refuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The secrets were not opened for this plan (a console without the environment's key):
    /// why. Values are not compared, and nothing may be applied from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_unchecked: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanHost {
    pub host: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub changes: Vec<Change>,
    /// An interrupted run left unfinished work here (`.new-` or `.old-` containers), which
    /// apply repairs before anything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repair: bool,
}

impl PlanDoc {
    pub fn pending(&self) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.changes)
            .filter(|c| c.kind.is_pending())
            .count()
            + self.hosts.iter().filter(|h| h.repair).count()
    }

    pub fn has_errors(&self) -> bool {
        self.hosts.iter().any(|h| h.error.is_some())
            || self
                .hosts
                .iter()
                .flat_map(|h| &h.changes)
                .any(|c| c.kind == ChangeKind::Conflict)
    }
}

/// The selected services' orphans only, when services are selected.
pub fn filter_orphans(changes: Vec<Change>, select: &Selection) -> Vec<Change> {
    changes
        .into_iter()
        .filter(|c| {
            c.kind != ChangeKind::RemoveOrphan
                || select.services.is_empty()
                || select.services.contains(&c.service)
        })
        .collect()
}
