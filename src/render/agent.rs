//! The pull agent's log: one line per sync whose outcome changed (every sync with -v), the host's
//! report when the sync acted, JSON Lines with `--format json`.

use crate::ops::agent::Outcome;
use crate::ops::context::{OpEvent, Progress, Sink};
use crate::render::Style;

pub struct SyncLines {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub out: Style,
    pub err: Style,
}

impl Sink for SyncLines {
    fn emit(&self, event: &OpEvent) {
        if let Progress::Sync(o) = &event.progress {
            self.show(o);
        }
    }
}

impl SyncLines {
    fn show(&self, o: &Outcome) {
        let acted = o.report.as_ref().is_some_and(|r| !r.actions.is_empty());
        if self.json {
            crate::render::term::out(&format!(
                "{}\n",
                serde_json::to_string(o).expect("a sync serialises")
            ));
            return;
        }
        if !(o.changed || acted || self.verbose > 0) {
            return;
        }
        let s = &o.sync;
        let commit = s.commit.as_deref().map(crate::git::short_id);
        let line = format!(
            "{} {} {}{}{}",
            s.synced_at,
            s.host,
            s.result,
            commit.map(|c| format!(" at {c}")).unwrap_or_default(),
            s.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        if o.ok() {
            if !self.quiet {
                crate::render::term::out(&format!("{line}\n"));
            }
        } else {
            eprintln!("{}", self.err.yellow(&line));
        }
        if let Some(report) = &o.report
            && acted
            && !self.quiet
        {
            crate::render::term::out(&crate::render::plan::apply_report(
                std::slice::from_ref(report),
                self.out,
            ));
        }
    }
}
