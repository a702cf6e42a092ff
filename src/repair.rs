//! Recognising and repairing what an interrupted apply or rollback left on a host.
//!
//! The swap of one service goes through states that container names alone make visible (see
//! docs/architecture.md, "The swap and its states"), so one list call tells a run what an
//! interrupted one left:
//!
//! ```text
//!  S0 old runs as NAME                      ─ create ─▶ S1 + NAME.new-… (created, never started)
//!  S1 ─ stop old ─▶ S2 old stopped as NAME  ─ rename ─▶ S3 old is NAME.old-…, new still .new-…
//!  S3 ─ rename ─▶ S4 new is NAME (created)  ─ start  ─▶ S5 new runs, health gate pending
//!  S5 ─ healthy ─▶ S6 old gets restart policy `no` and becomes NAME.prev-…   [confirmed]
//!  S5 ─ unhealthy ─▶ new becomes NAME.failed-…, old back to NAME, started    [restored]
//! ```
//!
//! A `.old-` container is the one that was serving when the run stopped. Repair, before any
//! planning: without a container under NAME (S3), it puts the `.old-` one back and starts it; with
//! one under NAME that is not running healthy (S4, S5 failed), it steps that one aside as
//! `.failed-` and puts the previous one back; with a healthy one (S5 passed), it confirms.
//! `.new-` containers (S1, S2, S3) never ran and are removed. S2 needs nothing: the old container
//! is still NAME, stopped, and the plan restarts or replaces it.

use crate::apply::{self, Progress};
use crate::engine::{Engine, Health, RunState};
use crate::plan::labels;
use crate::plan::{self, HostView};
use std::time::Duration;

/// What repair did on one host, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repaired {
    pub notes: Vec<String>,
}

impl Repaired {
    pub fn acted(&self) -> bool {
        !self.notes.is_empty()
    }
}

/// Repairs the states an interrupted run leaves (module comment); `view` is the host as listed.
pub async fn repair<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
    view: &HostView,
    health_timeout: Duration,
    progress: Progress<'_>,
) -> Result<Repaired, String> {
    let mut done = Repaired::default();
    for p in &view.pending {
        progress(&format!("removing {}, left by an interrupted run", p.name));
        engine.remove(&p.id).await.map_err(|e| e.to_string())?;
        done.notes.push(format!(
            "removed {} (created by an interrupted run, never started)",
            p.name
        ));
    }
    let prefix = plan::prefix(platform, environment);
    for (service, unconfirmed) in &view.unconfirmed {
        let Some((newest, older)) = unconfirmed.split_first() else {
            continue;
        };
        let e = |e: crate::engine::EngineError| e.to_string();
        // Older leftovers of earlier interruptions are previous versions like any other.
        for o in older {
            apply::confirm(engine, &o.id, &o.name).await.map_err(e)?;
        }
        let stable = format!("{prefix}{service}");
        let policy = newest
            .labels
            .get(labels::RESTART)
            .cloned()
            .unwrap_or_else(|| "unless-stopped".into());
        match view.current.get(service) {
            Some(cur) if cur.state == RunState::Running && cur.health != Health::Unhealthy => {
                // S5: the gate may pass; wait for it, then confirm.
                match apply::wait_healthy(engine, &cur.id, health_timeout, apply::DEFAULT_GRACE)
                    .await
                {
                    Ok(()) => {
                        apply::confirm(engine, &newest.id, &newest.name)
                            .await
                            .map_err(e)?;
                        done.notes.push(format!(
                            "{service}: confirmed the swap an interrupted run left unconfirmed"
                        ));
                        continue;
                    }
                    Err(reason) => {
                        progress(&format!(
                            "{service}: {reason}; putting the previous version back"
                        ));
                        swap_back(engine, &cur.id, &newest.id, &stable, &policy).await?;
                    }
                }
            }
            Some(cur) => {
                progress(&format!(
                    "{service}: the interrupted swap never became healthy; putting the previous version back"
                ));
                swap_back(engine, &cur.id, &newest.id, &stable, &policy).await?;
            }
            None => {
                progress(&format!(
                    "{service}: no container under its name; restarting the previous one"
                ));
                engine.rename(&newest.id, &stable).await.map_err(e)?;
                engine
                    .set_restart_policy(&newest.id, &policy)
                    .await
                    .map_err(e)?;
                engine.start(&newest.id).await.map_err(e)?;
            }
        }
        let ok =
            apply::wait_healthy(engine, &newest.id, health_timeout, apply::DEFAULT_GRACE).await;
        done.notes.push(format!(
            "{service}: restored {} after an interrupted run{}",
            newest
                .labels
                .get(labels::VERSION)
                .map(String::as_str)
                .unwrap_or("?"),
            match &ok {
                Ok(()) => String::new(),
                Err(e) => format!(" (but: {e})"),
            }
        ));
    }
    Ok(done)
}

async fn swap_back<E: Engine>(
    engine: &E,
    bad: &str,
    good: &str,
    stable: &str,
    policy: &str,
) -> Result<(), String> {
    let e = |e: crate::engine::EngineError| e.to_string();
    engine
        .stop(bad, Some(Duration::from_secs(5)))
        .await
        .map_err(e)?;
    let failed = format!(
        "{stable}{}{}",
        labels::FAILED,
        labels::suffix(apply::now_millis(), bad)
    );
    engine.rename(bad, &failed).await.map_err(e)?;
    engine.set_restart_policy(bad, "no").await.map_err(e)?;
    engine.rename(good, stable).await.map_err(e)?;
    engine.set_restart_policy(good, policy).await.map_err(e)?;
    engine.start(good).await.map_err(e)
}
