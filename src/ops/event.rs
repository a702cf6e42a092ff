//! What apply, rollback or promote is about to do, or did, in the one shape its hooks
//! (`FLEETPIN_CHANGES`) and webhooks receive, with a one-line summary for chat (`text`).
//!
//! It is a projection of what the commands already hold — the plan's pending changes before the
//! work, the hosts' reports after it (`host::report`), promote's pin moves — never a second model
//! of them: each entry names the host, the service, the kind of change, from and to, and, after
//! the work, the result the report gave it.

use crate::host::report::{ActionStatus, HostReport, HostStatus};
use crate::ops::prepared::Prepared;
use crate::plan::doc::PlanDoc;
use crate::plan::{ChangeKind, rollback::version_of};
use serde::Serialize;
use std::collections::BTreeMap;

/// One pin promote moves in TO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinMove {
    pub service: String,
    /// TO's pin before (none when TO did not pin the service yet).
    pub from: Option<String>,
    /// The pin written: `tag@sha256:…`.
    pub to: String,
}

/// The version of the document, for receivers that check.
pub const EVENT_FORMAT: &str = "fleetpin-event/1";

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    /// Ctrl-C: the step in flight was finished, nothing new was started.
    Interrupted,
    /// Its `pre_` hook failed or timed out: nothing was changed.
    Blocked,
}

impl Outcome {
    /// The outcome of a run over hosts: cancelled, failed or not.
    pub fn of_run(failed: bool, cancelled: bool) -> Outcome {
        if cancelled {
            Outcome::Interrupted
        } else if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub format: &'static str,
    /// `apply`, `rollback` or `promote`.
    pub command: String,
    pub platform: String,
    /// The environment changed (promote: the one whose pins are written, TO).
    pub environment: String,
    /// promote: FROM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_environment: Option<String>,
    /// The manifest commit the command read, or `uncommitted`.
    pub commit: String,
    /// Who ran it (`FLEETPIN_USER`, git's user.email, or user@hostname).
    pub who: String,
    /// After the work: how it ended. Absent before (for `pre_` hooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Outcome>,
    /// Every selected host, with its status after the work.
    pub hosts: Vec<HostEntry>,
    /// One entry per host and service changed (or to be changed).
    pub changes: Vec<ChangeEntry>,
    /// The commit of the pins rollback or promote wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_commit: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `--override-window "REASON"`: which window was overridden, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_override: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<HostStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeEntry {
    /// None for promote, which changes pins, not hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub service: String,
    /// The plan's kind (`create`, `upgrade`, …); `pin` for promote.
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// After the work: `done`, `failed`, `skipped` (promote: `written`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    pub fn new(command: &str, platform: &str, environment: &str, commit: &str, who: &str) -> Event {
        Event {
            format: EVENT_FORMAT,
            command: command.into(),
            platform: platform.into(),
            environment: environment.into(),
            from_environment: None,
            commit: commit.into(),
            who: who.into(),
            result: None,
            hosts: vec![],
            changes: vec![],
            pin_commit: None,
            notes: vec![],
            window_override: None,
        }
    }

    /// Before apply: the plan's pending changes (orphans only with `prune`), every host named.
    pub fn planned_apply(mut self, doc: &PlanDoc, prune: bool) -> Event {
        for h in &doc.hosts {
            self.hosts.push(HostEntry {
                host: h.host.clone(),
                status: None,
                error: h.error.clone(),
            });
            for c in &h.changes {
                if c.kind.is_pending() && (prune || c.kind != ChangeKind::RemoveOrphan) {
                    self.changes.push(ChangeEntry {
                        host: Some(h.host.clone()),
                        service: c.service.clone(),
                        kind: c.kind.as_str().into(),
                        from: c.from.clone(),
                        to: c.to.clone(),
                        result: None,
                        detail: None,
                    });
                }
            }
        }
        self
    }

    /// Before rollback: each selected host's services going back to the agreed versions.
    pub fn planned_rollback<E>(
        mut self,
        prepared: &[Prepared<E>],
        targets: &BTreeMap<String, String>,
    ) -> Event {
        for p in prepared {
            self.hosts.push(HostEntry {
                host: p.host.name.clone(),
                status: None,
                error: p.error.clone(),
            });
            for r in &p.desired {
                let Some(to) = targets.get(&r.service) else {
                    continue;
                };
                let from = p
                    .view
                    .current
                    .get(&r.service)
                    .map(|c| version_of(c).to_string());
                if from.as_deref() == Some(to.as_str()) {
                    continue;
                }
                self.changes.push(ChangeEntry {
                    host: Some(p.host.name.clone()),
                    service: r.service.clone(),
                    kind: crate::host::rollback::kind(from.as_deref(), to)
                        .as_str()
                        .into(),
                    from,
                    to: Some(to.clone()),
                    result: None,
                    detail: None,
                });
            }
        }
        self
    }

    /// After apply or rollback: what each host's report says; the changes are the actions done,
    /// failed or skipped (`unchanged` ones left out).
    pub fn ran(mut self, reports: &[HostReport], outcome: Outcome) -> Event {
        self.result = Some(outcome);
        self.hosts = reports
            .iter()
            .map(|r| HostEntry {
                host: r.host.clone(),
                status: Some(r.status),
                error: r.error.clone(),
            })
            .collect();
        self.changes = reports
            .iter()
            .flat_map(|r| {
                r.actions
                    .iter()
                    .filter(|a| a.kind != ChangeKind::Unchanged)
                    .map(|a| ChangeEntry {
                        host: Some(r.host.clone()),
                        service: a.service.clone(),
                        kind: a.kind.as_str().into(),
                        from: a.from.clone(),
                        to: a.to.clone(),
                        result: Some(
                            match a.status {
                                ActionStatus::Done => "done",
                                ActionStatus::Failed => "failed",
                                ActionStatus::Skipped => "skipped",
                            }
                            .into(),
                        ),
                        detail: a.detail.clone(),
                    })
            })
            .collect();
        self
    }

    /// Promote: FROM, and the pins of TO that move (`written` once they were).
    pub fn pins(mut self, from: &str, moves: &[PinMove], written: Option<bool>) -> Event {
        self.from_environment = Some(from.into());
        self.changes = moves
            .iter()
            .map(|m| ChangeEntry {
                host: None,
                service: m.service.clone(),
                kind: "pin".into(),
                from: m.from.clone(),
                to: Some(m.to.clone()),
                result: written.map(|w| if w { "written" } else { "failed" }.into()),
                detail: None,
            })
            .collect();
        self
    }

    /// How it ended, and what was left out of the changes.
    pub fn ended(mut self, outcome: Outcome) -> Event {
        self.result = Some(outcome);
        self
    }

    /// The one line a chat shows: what, where, by whom, how it ended, and the changes grouped
    /// (`web 1.0.0 → 1.1.0 on h1, h2`), with the hosts that did not end well. Slack's
    /// `& < >` are escaped.
    pub fn text(&self) -> String {
        let (mark, how) = match self.result {
            None => ("", "is starting"),
            Some(Outcome::Success) => ("✅ ", "succeeded"),
            Some(Outcome::Failure) => ("❌ ", "failed"),
            Some(Outcome::Interrupted) => ("⚠️ ", "was interrupted"),
            Some(Outcome::Blocked) => ("⛔ ", "was stopped by its pre_ hook"),
        };
        let target = match &self.from_environment {
            Some(f) => format!("{f} → {}", self.environment),
            None => self.environment.clone(),
        };
        let commit = crate::git::short_id(&self.commit);
        let mut line = format!(
            "{mark}fleetpin {} {target} ({}) {how} — by {}, manifest {commit}",
            self.command, self.platform, self.who
        );
        // Changes grouped by what changed; the hosts of each, with any result but `done`.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for c in &self.changes {
            let what = match (&c.from, &c.to) {
                (Some(f), Some(t)) if f != t => {
                    format!("{} {} → {}", c.service, short(f), short(t))
                }
                (None, Some(t)) => format!("{} → {}", c.service, short(t)),
                (Some(f), _) => format!("{} {} ({})", c.service, short(f), c.kind),
                (None, None) => format!("{} ({})", c.service, c.kind),
            };
            let at = match (&c.host, c.result.as_deref()) {
                (Some(h), None | Some("done")) => h.clone(),
                (Some(h), Some(r)) => format!("{h} ({r})"),
                (None, Some(r)) if r != "written" => format!("({r})"),
                (None, _) => String::new(),
            };
            match groups.iter_mut().find(|(w, _)| *w == what) {
                Some((_, hosts)) => hosts.push(at),
                None => groups.push((what, vec![at])),
            }
        }
        let mut parts: Vec<String> = groups
            .into_iter()
            .map(|(what, at)| {
                let at: Vec<String> = at.into_iter().filter(|a| !a.is_empty()).collect();
                if at.is_empty() {
                    what
                } else {
                    format!("{what} on {}", at.join(", "))
                }
            })
            .collect();
        for h in &self.hosts {
            // After the work, a host with no report did not get that far (an agent's fetch):
            // say why.
            if let (None, Some(_), Some(e)) = (h.status, self.result, &h.error) {
                parts.push(format!("{}: {e}", h.host));
            }
            if let Some(s) = h.status
                && !s.ok()
                && !self
                    .changes
                    .iter()
                    .any(|c| c.host.as_ref() == Some(&h.host))
            {
                parts.push(format!("{} {}", h.host, format!("{s:?}").to_lowercase()));
            }
        }
        if !parts.is_empty() {
            line.push_str(": ");
            line.push_str(&parts.join("; "));
        }
        if let Some(c) = &self.pin_commit {
            line.push_str(&format!(" (pins committed {})", crate::git::short_id(c)));
        }
        line.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
}

/// A digest pin shortened for a chat line: `2.4.0@sha256:4d0bc618…`.
fn short(v: &str) -> String {
    match v.split_once("@sha256:") {
        Some((tag, d)) => format!("{tag}@sha256:{}…", &d[..8.min(d.len())]),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::report::Action;

    #[test]
    fn the_text_groups_changes_and_names_the_hosts_that_did_not_end_well() {
        let mut h1 = HostReport::new("h1", "tcp://h1:2375", HostStatus::Converged);
        h1.actions.push(Action::new(
            "web",
            ChangeKind::Upgrade,
            Some("1.0.0".into()),
            Some("1.1.0".into()),
        ));
        let mut h2 = h1.clone();
        h2.host = "h2".into();
        h2.status = HostStatus::Failed;
        h2.actions[0].status = ActionStatus::Failed;
        h2.actions[0].detail = Some("unhealthy".into());
        let h3 =
            HostReport::with_error("h3", "tcp://h3:2375", HostStatus::Unreachable, "no answer");
        let e = Event::new("apply", "acme", "prod", &"a".repeat(40), "ops@acme.test")
            .ran(&[h1, h2, h3], Outcome::Failure);
        assert_eq!(
            e.text(),
            "❌ fleetpin apply prod (acme) failed — by ops@acme.test, manifest aaaaaaaaaaaa: \
             web 1.0.0 → 1.1.0 on h1, h2 (failed); h3 unreachable"
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["result"], "failure");
        assert_eq!(v["changes"][1]["host"], "h2");
        assert_eq!(v["changes"][1]["result"], "failed");
        assert_eq!(v["changes"][1]["detail"], "unhealthy");
        assert_eq!(v["hosts"][2]["status"], "unreachable");

        let p = Event::new("promote", "acme", "prod", "uncommitted", "me")
            .pins(
                "preprod",
                &[PinMove {
                    service: "api".into(),
                    from: Some("1.0.0".into()),
                    to: format!("1.1.0@sha256:{}", "b".repeat(64)),
                }],
                Some(true),
            )
            .ended(Outcome::Success);
        assert_eq!(
            p.text(),
            "✅ fleetpin promote preprod → prod (acme) succeeded — by me, manifest uncommitted: \
             api 1.0.0 → 1.1.0@sha256:bbbbbbbb…"
        );
    }
}
