//! What a run did on one host, in one shape for apply, rollback, repair and (later) the agent:
//! the host's status, one action per service touched, the failure that stopped it with the logs
//! that explain it, and what was repaired first; and how a host's steps are written into it
//! (`HostReport::record`), the same for apply's and rollback's waves.

use crate::host::waves;
use crate::plan::{Change, ChangeKind};
use serde::Serialize;
use std::time::SystemTime;

/// Progress lines for one host (`pulling billing 2.4.1`, …).
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Makes the progress reporter of each host.
pub type ProgressFor<'a> = &'a (dyn Fn(&str) -> Box<dyn Fn(&str) + Send + Sync> + Sync);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    Done,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub service: String,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub status: ActionStatus,
    /// A kept container was started again (no pull, no new container).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub relaunched: bool,
    /// The container that served before this action (stepped aside by it), if any: what a
    /// rollout rolled back starts again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Wall time of the step, health wait included.
    pub seconds: f64,
    /// Of which waiting for the health gate.
    pub health_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The kept container this action was to start again, which the engine refused to start:
    /// a fresh container of the same spec was created instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unstartable: Option<Unstartable>,
}

/// A kept container the engine refused to start (its containerd task outlived a daemon crash,
/// say), and what became of it: the swap created a fresh container of the same spec instead,
/// and, once that one passed its gate, removed the refused one — or renamed it `.broken-…`
/// when the engine refused that too, so it is never kept, relaunched or rolled back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unstartable {
    /// Its name when it was picked (`….prev-…`), and its id.
    pub container: String,
    pub id: String,
    /// What the engine said when asked to start it.
    pub reason: String,
    /// Whether the fresh container was made from the very spec of the refused one (false: a
    /// rollback to it made it from today's manifest at its version, whose settings differ).
    pub same_spec: bool,
    /// Once the fresh one passed its gate: it was removed.
    pub removed: bool,
    /// Else the name it is left under (`….broken-…`, or its kept name when the engine refused
    /// the rename as well), and why it could not be removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_error: Option<String>,
}

impl Unstartable {
    /// One line for the report, the events and the logs.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "retained container {} could not be started (engine: {}): created afresh{}",
            self.container,
            self.reason,
            if self.same_spec {
                ""
            } else {
                " from the manifest's settings at its version"
            }
        );
        match (&self.left_as, &self.removal_error) {
            _ if self.removed => s.push_str("; the old one removed"),
            (Some(name), Some(e)) if name.contains(crate::plan::labels::BROKEN) => {
                s.push_str(&format!("; the old one kept as {name} (the engine refused to remove it: {e}); a later run removes it when the engine allows"))
            }
            (Some(name), e) => s.push_str(&format!(
                "; the old one is still {name}: the engine refused to remove or rename it{}; remove it by hand (`docker rm -f {name}`)",
                e.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            )),
            (None, _) => {}
        }
        s
    }
}

impl Action {
    pub fn new(
        service: &str,
        kind: ChangeKind,
        from: Option<String>,
        to: Option<String>,
    ) -> Action {
        Action {
            service: service.to_string(),
            kind,
            from,
            to,
            status: ActionStatus::Done,
            relaunched: false,
            previous: None,
            seconds: 0.0,
            health_seconds: 0.0,
            detail: None,
            unstartable: None,
        }
    }
}

/// What one service's step did: its action, and whether it succeeded.
pub type StepResult = (Action, Result<(), Failure>);

/// Why a container was not accepted, with what helps to find out.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub service: String,
    pub reason: String,
    pub health_log: Vec<String>,
    pub logs: String,
    /// Whether the container that was serving before serves again.
    pub restored: bool,
    /// Whether the gate judged the container and refused it (not an engine that went away): the
    /// agent does not try that release again on this host.
    #[serde(skip)]
    pub judged: bool,
}

impl Failure {
    pub fn new(service: &str, reason: impl Into<String>) -> Failure {
        Failure {
            service: service.to_string(),
            reason: reason.into(),
            health_log: vec![],
            logs: String::new(),
            restored: false,
            judged: false,
        }
    }

    pub fn restored(mut self, restored: bool) -> Failure {
        self.restored = restored;
        self
    }
}

/// An image reference removed because no container used it any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedImage {
    /// The reference removed: the one the containers were created from (or the image's id).
    pub reference: String,
    pub id: String,
    /// Whether the image itself went; false when other tags still name it and only this
    /// reference was removed.
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    Converged,
    Unchanged,
    Failed,
    Unreachable,
    Locked,
    Refused,
    Skipped,
    /// Stopped by Ctrl-C before this host was changed, or after its step in flight finished.
    Interrupted,
    /// Changed by this run, then put back because a later host failed (`on_failure: rollback`).
    RolledBack,
}

impl HostStatus {
    pub fn ok(self) -> bool {
        matches!(self, HostStatus::Converged | HostStatus::Unchanged)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub endpoint: String,
    pub status: HostStatus,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// What was repaired, left by an interrupted run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    /// Images no container uses any more once this run removed the last one that did
    /// (`host::cleanup`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images_removed: Vec<RemovedImage>,
    /// Whether the run worked on this host (it took its lock): a host skipped or unreachable
    /// from the start was not attempted, and its status says nothing of the release.
    #[serde(skip)]
    pub attempted: bool,
}

impl HostReport {
    pub fn new(host: &str, endpoint: &str, status: HostStatus) -> HostReport {
        HostReport {
            host: host.to_string(),
            endpoint: endpoint.to_string(),
            status,
            actions: vec![],
            error: None,
            failure: None,
            repaired: vec![],
            images_removed: vec![],
            attempted: false,
        }
    }

    pub fn with_error(
        host: &str,
        endpoint: &str,
        status: HostStatus,
        error: impl Into<String>,
    ) -> HostReport {
        let mut r = HostReport::new(host, endpoint, status);
        r.error = Some(error.into());
        r
    }

    /// Records a failed action and stops the host's report there.
    pub fn fail(&mut self, mut action: Action, f: Failure, restored_note: &str) {
        action.status = ActionStatus::Failed;
        action.detail = Some(f.reason.clone());
        self.actions.push(action);
        self.status = HostStatus::Failed;
        self.error = Some(format!(
            "{}: {}{}",
            f.service,
            f.reason,
            if f.restored { restored_note } else { "" }
        ));
        self.failure = Some(f);
    }

    /// Writes what each step of the host's waves became: done, failed (the first failure is the
    /// report's), not started because a dependency failed, or interrupted. `changes` name the
    /// steps a failure blocked; `restored_note` ends the error when the failed step was undone.
    pub fn record(
        &mut self,
        outcomes: Vec<(String, waves::Outcome<StepResult>)>,
        changes: &[Change],
        restored_note: &str,
    ) {
        let mut interrupted = false;
        for (service, outcome) in outcomes {
            match outcome {
                waves::Outcome::Ran((action, Ok(()))) => {
                    if self.status == HostStatus::Unchanged {
                        self.status = HostStatus::Converged;
                    }
                    self.actions.push(action);
                }
                waves::Outcome::Ran((mut action, Err(f))) => {
                    if self.failure.is_none() {
                        self.fail(action, f, restored_note);
                    } else {
                        action.status = ActionStatus::Failed;
                        action.detail = Some(f.reason.clone());
                        self.actions.push(action);
                        self.status = HostStatus::Failed;
                    }
                }
                waves::Outcome::Blocked { by } => {
                    let c = changes.iter().find(|c| c.service == service);
                    let mut action = Action::new(
                        &service,
                        c.map(|c| c.kind).unwrap_or(ChangeKind::Change),
                        c.and_then(|c| c.from.clone()),
                        c.and_then(|c| c.to.clone()),
                    );
                    action.status = ActionStatus::Skipped;
                    action.detail = Some(format!("not started: it depends on {by}, which failed"));
                    self.actions.push(action);
                }
                waves::Outcome::Interrupted => interrupted = true,
            }
        }
        if interrupted && self.status != HostStatus::Failed {
            self.status = HostStatus::Interrupted;
            self.error = Some("interrupted: the remaining changes were not started".into());
        }
    }

    /// Whether every service touched ended as planned (conflicts count as failures).
    pub fn ok(&self) -> bool {
        self.status.ok() && !self.actions.iter().any(|a| a.kind == ChangeKind::Conflict)
    }
}

/// Milliseconds since the epoch by the local clock: only for unique, readable name suffixes —
/// never to order containers (the engine's `Created` does that).
pub fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
