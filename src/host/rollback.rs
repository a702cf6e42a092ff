//! Rolling back one locked, repaired host: for each selected service, the choice `plan::rollback`
//! made (the same on every host, agreed before any host was touched) goes through the one swap —
//! a kept container started again, no pull, no create; or, with `--to` a version no longer kept
//! whose image is still on the host, a new container of it. The container stepped away from
//! becomes `.rolled-back-`: never the default target of a later rollback.

use crate::engine::Engine;
use crate::host::report::{
    Action, ActionStatus, Failure, HostReport, HostStatus, Progress, StepResult,
};
use crate::host::runner::{HostWork, OnHost, Target};
use crate::host::spec::create_spec;
use crate::host::swap::{self, Incoming};
use crate::host::waves;
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::{ResolvedService, spec_hash};
use crate::plan::ChangeKind;
use crate::plan::labels::Aside;
use crate::plan::rollback::{Choice, choose, version_of};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The change kind a move from `from` to `to` is, for the report.
pub fn kind(from: Option<&str>, to: &str) -> ChangeKind {
    match (from.map(VersionPin::parse), VersionPin::parse(to)) {
        (Some(Ok(f)), Ok(t)) => match f.compare(&t) {
            Some(std::cmp::Ordering::Greater) => ChangeKind::Downgrade,
            Some(std::cmp::Ordering::Less) => ChangeKind::Upgrade,
            _ => ChangeKind::Change,
        },
        _ => ChangeKind::Change,
    }
}

/// A rollback as agreed before any host was touched, and rollback's work for the runner.
pub struct Rollback {
    /// service → the version every host goes back to.
    pub targets: BTreeMap<String, String>,
    /// `--to`, as given.
    pub to: Option<String>,
}

impl<E: Engine> HostWork<E> for Rollback {
    async fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        on: OnHost<'_>,
        progress: Progress<'_>,
    ) -> HostReport {
        rollback_host(engine, &target.name, &target.desired, on, self, progress).await
    }
}

/// Rolls back the services of `plan.targets` that run on this host.
pub async fn rollback_host<E: Engine>(
    engine: &E,
    host: &str,
    desired: &[Arc<ResolvedService>],
    on: OnHost<'_>,
    plan: &Rollback,
    progress: Progress<'_>,
) -> HostReport {
    let view = on.view;
    let (targets, to) = (&plan.targets, plan.to.as_deref());
    let mut report = HostReport::new(host, engine.endpoint(), HostStatus::Unchanged);
    // First every decision (nothing touched yet): a refusal for one service leaves the host alone.
    let mut steps = Vec::new();
    for r in desired {
        let Some(target) = targets.get(&r.service) else {
            continue;
        };
        let current = view.current.get(&r.service);
        let from = current.map(|c| version_of(c).to_string());
        let mut action = Action::new(
            &r.service,
            kind(from.as_deref(), target),
            from.clone(),
            Some(target.clone()),
        );
        if let Some(f) = view.foreign.get(&r.container_name) {
            // Someone else's container holds the name: a conflict, never touched.
            action.kind = ChangeKind::Conflict;
            action.status = ActionStatus::Skipped;
            action.detail = Some(format!(
                "a container fleetpin did not create holds the name {} ({}); rename or remove it yourself",
                r.container_name, f.id
            ));
            report.actions.push(action);
            report.status = HostStatus::Failed;
            report.error = Some(format!("{}: conflict on {}", r.service, r.container_name));
            return report;
        }
        if from.as_deref() == Some(target.as_str()) {
            // Already there: an interrupted rollback that repair finished, or a host that runs
            // the `--to` version already.
            action.kind = ChangeKind::Unchanged;
            action.detail = Some(format!("already runs {target}"));
            report.actions.push(action);
            continue;
        }
        let refuse = |report: &mut HostReport, action: Action, why: String| {
            report.fail(action, Failure::new(&r.service, why).restored(true), "");
        };
        let incoming = match choose(view, &r.service, to) {
            Ok(Choice::Finish(_)) => {
                // Repair runs first and finishes an interrupted rollback: nothing left to do.
                action.kind = ChangeKind::Unchanged;
                action.detail = Some(format!("already runs {target}"));
                report.actions.push(action);
                continue;
            }
            Ok(c) if c.version() != *target => {
                refuse(
                    &mut report,
                    action,
                    format!(
                        "this host would now go back to {}, not {target} as agreed: it changed since it was looked at; run the rollback again",
                        c.version()
                    ),
                );
                return report;
            }
            Ok(Choice::Retained(c)) => {
                action.relaunched = true;
                Incoming::Relaunch(c)
            }
            Ok(Choice::Recreate(pin)) => {
                let mut spec = ResolvedService::clone(r);
                spec.image_ref = pin.image_ref(&r.repository);
                spec.pin = pin.clone();
                spec.spec_hash = spec_hash(&spec);
                match engine.inspect_image(&spec.image_ref).await {
                    Ok(Some(_)) => Incoming::Create(Box::new(create_spec(
                        &spec,
                        &r.container_name,
                        &on.settings.stamp,
                    ))),
                    Ok(None) => {
                        refuse(
                            &mut report,
                            action,
                            format!(
                                "no kept container runs {pin} and its image {} is not on the host (rollback does not pull; use `fleetpin apply` with that pin)",
                                spec.image_ref
                            ),
                        );
                        return report;
                    }
                    Err(e) => {
                        refuse(&mut report, action, e.to_string());
                        return report;
                    }
                }
            }
            Err(e) => {
                refuse(&mut report, action, e.to_string());
                return report;
            }
        };
        action.previous = current.map(|c| c.id.clone());
        steps.push(waves::Step {
            service: r.service.clone(),
            after: r.depends_on.clone(),
            job: (r, incoming, action),
        });
    }
    // Then the swaps, in depends_on waves like apply's.
    let outcomes = waves::run(
        steps,
        &on.settings.cancel,
        |(_, r): &StepResult| r.is_ok(),
        |(r, incoming, mut action): (&Arc<ResolvedService>, Incoming, Action)| async move {
            let started = Instant::now();
            progress(&format!(
                "rolling {} back to {}",
                r.service,
                action.to.as_deref().unwrap_or("?")
            ));
            let done =
                swap::for_service(engine, r, on, incoming, Aside::RolledBack, progress).await;
            action.seconds = started.elapsed().as_secs_f64();
            let outcome = done.map(|d| d.record(&mut action));
            (action, outcome)
        },
    )
    .await;
    report.record(outcomes, &[], "; the version that was running runs again");
    report
}
