//! Rolling back one locked, repaired host: for each selected service, the choice `plan::rollback`
//! made (the same on every host, agreed before any host was touched) goes through the one swap —
//! a kept container started again, no pull, no create; or, with `--to` a version no longer kept
//! whose image is still on the host, a new container of it. The container stepped away from
//! becomes `.rolled-back-`: never the default target of a later rollback.

use crate::engine::Engine;
use crate::host::converge::{Options, swap_service};
use crate::host::report::{Action, ActionStatus, Failure, HostReport, HostStatus, Progress};
use crate::host::runner::{HostWork, Target};
use crate::host::spec::create_spec;
use crate::host::swap::Incoming;
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::{ResolvedService, spec_hash};
use crate::plan::ChangeKind;
use crate::plan::labels::Aside;
use crate::plan::rollback::{Choice, choose, version_of};
use crate::plan::view::HostView;
use std::collections::BTreeMap;
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
    pub opts: Options,
}

impl<E: Engine> HostWork<E> for Rollback {
    async fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        view: &HostView,
        progress: Progress<'_>,
    ) -> HostReport {
        rollback_host(engine, &target.name, &target.desired, view, self, progress).await
    }
}

/// Rolls back the services of `plan.targets` that run on this host.
pub async fn rollback_host<E: Engine>(
    engine: &E,
    host: &str,
    desired: &[ResolvedService],
    view: &HostView,
    plan: &Rollback,
    progress: Progress<'_>,
) -> HostReport {
    let (targets, to, opts) = (&plan.targets, plan.to.as_deref(), &plan.opts);
    let mut report = HostReport::new(host, engine.endpoint(), HostStatus::Unchanged);
    for r in desired {
        let Some(target) = targets.get(&r.service) else {
            continue;
        };
        if crate::interrupt::interrupted() {
            report.status = HostStatus::Interrupted;
            report.error = Some("interrupted: the remaining services were not rolled back".into());
            return report;
        }
        let started = Instant::now();
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
        let choice = match choose(view, &r.service, to) {
            Ok(c) if c.version() == *target => c,
            Ok(c) => {
                let f = Failure::new(
                    &r.service,
                    format!(
                        "this host would now go back to {}, not {target} as agreed: it changed since it was looked at; run the rollback again",
                        c.version()
                    ),
                )
                .restored(true);
                report.fail(action, f, "");
                return report;
            }
            Err(e) => {
                report.fail(
                    action,
                    Failure::new(&r.service, e.to_string()).restored(true),
                    "",
                );
                return report;
            }
        };
        let incoming = match choice {
            Choice::Finish(_) => {
                // Repair runs first and finishes an interrupted rollback: nothing left to do.
                action.kind = ChangeKind::Unchanged;
                action.detail = Some(format!("already runs {target}"));
                report.actions.push(action);
                continue;
            }
            Choice::Retained(c) => {
                action.relaunched = true;
                Incoming::Relaunch(c)
            }
            Choice::Recreate(pin) => {
                let mut spec = r.clone();
                spec.image_ref = pin.image_ref(&r.repository);
                spec.pin = pin.clone();
                spec.spec_hash = spec_hash(&spec);
                match engine.inspect_image(&spec.image_ref).await {
                    Ok(Some(_)) => Incoming::Create(Box::new(create_spec(
                        &spec,
                        &r.container_name,
                        &opts.stamp,
                    ))),
                    Ok(None) => {
                        let f = Failure::new(
                            &r.service,
                            format!(
                                "no kept container runs {pin} and its image {} is not on the host (rollback does not pull; use `fleetpin apply` with that pin)",
                                spec.image_ref
                            ),
                        )
                        .restored(true);
                        report.fail(action, f, "");
                        return report;
                    }
                    Err(e) => {
                        report.fail(
                            action,
                            Failure::new(&r.service, e.to_string()).restored(true),
                            "",
                        );
                        return report;
                    }
                }
            }
        };
        action.previous = current.map(|c| c.id.clone());
        progress(&format!("rolling {} back to {target}", r.service));
        let done = swap_service(engine, r, view, incoming, Aside::RolledBack, opts, progress).await;
        action.seconds = started.elapsed().as_secs_f64();
        match done {
            Ok(d) => {
                action.health_seconds = d.health_seconds;
                report.status = HostStatus::Converged;
                report.actions.push(action);
            }
            Err(f) => {
                report.fail(action, f, "; the version that was running runs again");
                return report;
            }
        }
    }
    report
}
