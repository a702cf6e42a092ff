//! A rollout across an environment's hosts: canary hosts first and alone, then the rest in
//! batches of `max_parallel`; after a failed host, `on_failure: stop` touches no further host,
//! `on_failure: rollback` also puts back the hosts this run changed — the container each one
//! served before starts again, through the one swap — so the environment ends on one version.
//!
//! Canary hosts are the first `canary` hosts, in manifest order, that have changes; an
//! unreachable one counts as failed (nobody knows what it would have done). Apply and the rollback
//! command go through here; the rollback command always stops on failure.

use crate::engine::Engine;
use crate::host::report::{
    Action, ActionStatus, Failure, HostReport, HostStatus, Progress, ProgressFor,
};
use crate::host::runner::{self, HostWork, Settings, Target};
use crate::host::swap::{self, Incoming};
use crate::manifest::OnFailure;
use crate::plan::ChangeKind;
use crate::plan::labels::{self, Aside};
use std::collections::BTreeMap;
use std::time::Instant;

/// Runs `work` over `targets` as the environment's rollout says; with `on_failure: rollback`,
/// the hosts this run changed are put back with the same settings.
pub async fn run<E: Engine, W: HostWork<E>>(
    targets: Vec<Target<E>>,
    settings: &Settings,
    work: &W,
    progress_for: ProgressFor<'_>,
) -> Vec<HostReport> {
    let canaries: Vec<usize> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.changes)
        .map(|(i, _)| i)
        .take(settings.rollout.canary as usize)
        .collect();
    let mut reports: Vec<Option<HostReport>> = vec![None; targets.len()];
    let mut failed = false;
    if !canaries.is_empty() {
        let first: Vec<Target<E>> = canaries.iter().map(|i| targets[*i].clone()).collect();
        for (i, r) in canaries
            .iter()
            .zip(runner::run(first, settings, work, progress_for).await)
        {
            // An unreachable canary has failed: nobody knows what the release does there.
            failed |= !r.ok() && (r.attempted || r.status == HostStatus::Unreachable);
            reports[*i] = Some(r);
        }
    }
    let rest: Vec<usize> = (0..targets.len())
        .filter(|i| !canaries.contains(i))
        .collect();
    if failed {
        for i in &rest {
            let t = &targets[*i];
            reports[*i] = Some(HostReport::with_error(
                &t.name,
                &t.endpoint,
                HostStatus::Skipped,
                "not started: a canary host failed",
            ));
        }
    } else if !rest.is_empty() {
        let others: Vec<Target<E>> = rest.iter().map(|i| targets[*i].clone()).collect();
        for (i, r) in rest
            .iter()
            .zip(runner::run(others, settings, work, progress_for).await)
        {
            // A host unreachable from the start was not attempted: it says nothing of the release.
            failed |= !r.ok() && r.attempted;
            reports[*i] = Some(r);
        }
    }
    let mut reports: Vec<HostReport> = reports
        .into_iter()
        .map(|r| r.expect("every host has a report"))
        .collect();
    if failed && settings.rollout.on_failure == OnFailure::Rollback {
        put_back_changed(&targets, &mut reports, settings, progress_for).await;
    }
    reports
}

/// What a changed host goes back to: per service, the container that served before (none when
/// this run created the service).
type Before = BTreeMap<String, Option<String>>;

async fn put_back_changed<E: Engine>(
    targets: &[Target<E>],
    reports: &mut [HostReport],
    settings: &Settings,
    progress_for: ProgressFor<'_>,
) {
    let mut changed = Vec::new();
    let mut before: BTreeMap<String, Before> = BTreeMap::new();
    for (t, r) in targets.iter().zip(reports.iter()) {
        // The failed host too: services it replaced before the one that failed go back as well.
        let done: Before = r
            .actions
            .iter()
            .filter(|a| a.status == ActionStatus::Done && a.kind.replaces())
            .map(|a| (a.service.clone(), a.previous.clone()))
            .collect();
        if !done.is_empty() {
            changed.push(t.clone());
            before.insert(t.name.clone(), done);
        }
    }
    if changed.is_empty() {
        return;
    }
    let work = PutBack { before };
    // Every changed host goes back, whatever happens on another, at most `max_parallel` at once.
    let semaphore = tokio::sync::Semaphore::new(settings.parallel.max(1));
    let backs = futures::future::join_all(changed.iter().map(|t| {
        let work = &work;
        let semaphore = &semaphore;
        async move {
            let _permit = semaphore.acquire().await.expect("never closed");
            let progress = progress_for(&t.name);
            match &t.engine {
                Ok(e) => runner::one_host(&**e, t, settings, work, &*progress).await,
                Err(e) => t.unreachable(e),
            }
        }
    }))
    .await;
    for back in backs {
        let Some(r) = reports.iter_mut().find(|r| r.host == back.host) else {
            continue;
        };
        r.actions.extend(back.actions);
        match (r.status, back.status.ok()) {
            (HostStatus::Converged, true) => {
                r.status = HostStatus::RolledBack;
                r.error = Some("put back: a later host failed (on_failure: rollback)".into());
            }
            (_, true) => {
                let note = "; the services it had already changed were put back";
                r.error = Some(format!("{}{note}", r.error.clone().unwrap_or_default()));
            }
            (_, false) => {
                r.status = HostStatus::Failed;
                r.error = Some(format!(
                    "putting it back failed: {}",
                    back.error.unwrap_or_default()
                ));
                if r.failure.is_none() {
                    r.failure = back.failure;
                }
            }
        }
    }
}

/// Puts a host back to the containers that served before this run.
struct PutBack {
    before: BTreeMap<String, Before>,
}

impl<E: Engine> HostWork<E> for PutBack {
    async fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        on: runner::OnHost<'_>,
        progress: Progress<'_>,
    ) -> HostReport {
        let view = on.view;
        let mut report = HostReport::new(&target.name, engine.endpoint(), HostStatus::Unchanged);
        let Some(before) = self.before.get(&target.name) else {
            return report;
        };
        for r in &target.desired {
            let Some(previous) = before.get(&r.service) else {
                continue;
            };
            let started = Instant::now();
            let now = view.current.get(&r.service);
            let mut action = Action::new(
                &r.service,
                ChangeKind::Change,
                now.and_then(|c| c.labels.get(labels::VERSION).cloned()),
                None,
            );
            action.detail = Some("put back".into());
            let outcome = match previous {
                Some(id) => match view.kept(&r.service).into_iter().find(|k| &k.id == id) {
                    Some(k) => {
                        action.to = k.labels.get(labels::VERSION).cloned();
                        action.relaunched = true;
                        progress(&format!("putting {} back", r.service));
                        swap::for_service(
                            engine,
                            r,
                            on,
                            Incoming::Relaunch(k.clone()),
                            Aside::RolledBack,
                            progress,
                        )
                        .await
                        .map(|d| d.record(&mut action))
                    }
                    None => Err(Failure::new(
                        &r.service,
                        "the container that served before is no longer kept",
                    )),
                },
                // This run created the service: it is stopped and kept, not removed.
                None => match now {
                    Some(c) => {
                        progress(&format!("stopping {}, which this run created", r.service));
                        let aside = format!(
                            "{}{}{}",
                            r.container_name,
                            labels::ROLLED_BACK,
                            labels::suffix(crate::host::report::now_millis(), &c.id)
                        );
                        async {
                            engine.stop(&c.id, None).await?;
                            engine.set_restart_policy(&c.id, "no").await?;
                            engine.rename(&c.id, &aside).await
                        }
                        .await
                        .map_err(|e| Failure::new(&r.service, e.to_string()))
                    }
                    None => Ok(()),
                },
            };
            action.seconds = started.elapsed().as_secs_f64();
            match outcome {
                Ok(()) => {
                    report.status = HostStatus::Converged;
                    report.actions.push(action);
                }
                Err(f) => {
                    report.fail(action, f, "");
                    return report;
                }
            }
        }
        report
    }
}
