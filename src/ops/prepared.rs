//! One selected host as an operation prepared it: how to reach it, what is wanted there, what was
//! seen and planned. Its own module, below the operations' context, so that the webhook document
//! (`event`) can describe a prepared run without importing the operations that prepare it.

use crate::engine::docker::DockerEngine;
use crate::host::fleet::HostRef;
use crate::host::runner::{Target, Unreachable};
use crate::manifest::resolve::ResolvedService;
use crate::plan::Change;
use crate::plan::view::HostView;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One selected host: how to reach it, what is wanted there, and what was seen.
pub struct Prepared<E = DockerEngine> {
    pub host: HostRef,
    pub desired: Vec<Arc<ResolvedService>>,
    pub engine: Option<Arc<E>>,
    pub error: Option<String>,
    pub fingerprint: Option<String>,
    pub changes: Vec<Change>,
    /// The host's containers, sorted by role.
    pub view: HostView,
    /// Services whose env_file could not be read (audit only): their spec hash is not known.
    pub unchecked: BTreeSet<String>,
}

impl<E> Prepared<E> {
    /// Whether apply has anything to do here (or cannot tell: unreachable); orphans count only
    /// when they are to be removed.
    pub fn has_changes(&self, prune: bool) -> bool {
        self.engine.is_none()
            || self.view.needs_repair()
            || self.changes.iter().any(|c| {
                c.kind.is_pending() && (prune || c.kind != crate::plan::ChangeKind::RemoveOrphan)
            })
    }

    /// The runner's view of this host; `changes`: whether it can be a canary.
    pub fn target(&self, changes: bool) -> Target<E> {
        Target {
            name: self.host.name.clone(),
            endpoint: self.host.endpoint(),
            engine: match &self.engine {
                Some(e) => Ok(e.clone()),
                None => Err(Unreachable {
                    reason: self.error.clone().unwrap_or_else(|| "unreachable".into()),
                }),
            },
            desired: self.desired.clone(),
            changes,
        }
    }
}
