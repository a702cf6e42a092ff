//! The one host runner: how apply, rollback and the agent work through the hosts of an
//! environment. Hosts go at most `parallel` at a time; once a host fails, no further host is
//! started (what failed may fail everywhere); Ctrl-C lets the host in flight finish its step and
//! starts nothing new. On each host, the same preamble, whatever the work:
//!
//! ```text
//!  lock (renewed by heartbeats while the host is worked on)
//!   → list → [check: a saved plan refuses a host that changed] → repair what a killed run left
//!   → list again if repaired → the work (converge, rollback)
//!   → remove the images no container uses any more (`cleanup`) → release
//! ```
//!
//! A host already unreachable when the run began is reported and does not stop the others:
//! nothing was attempted on it. Generic over `Engine`, so the orchestration is tested in memory
//! as well as on real daemons.

use crate::engine::{ContainerSummary, Engine};
use crate::host::cleanup::{self, Released};
use crate::host::lock;
use crate::host::repair;
use crate::host::report::{HostReport, HostStatus, Progress, ProgressFor};
pub use crate::host::settings::Settings;
use crate::manifest::resolve::ResolvedService;
use crate::plan::doc::StalePlan;
use crate::plan::view;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One host to work on: how it was reached (or why not) and what is wanted there.
pub struct Target<E> {
    pub name: String,
    pub endpoint: String,
    pub engine: Result<Arc<E>, Unreachable>,
    pub desired: Vec<Arc<ResolvedService>>,
    /// Whether the plan has changes here (or could not tell: an unreachable host): who can be
    /// a canary.
    pub changes: bool,
}

/// Why a host could not be reached when the run began (nothing is attempted on it): what the
/// connection said, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unreachable {
    pub reason: String,
}

impl<E> Target<E> {
    /// The report of a host that could not be reached when the run began.
    pub fn unreachable(&self, e: &Unreachable) -> HostReport {
        HostReport::with_error(
            &self.name,
            &self.endpoint,
            HostStatus::Unreachable,
            e.to_string(),
        )
    }
}

impl<E> Clone for Target<E> {
    fn clone(&self) -> Self {
        Target {
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            engine: self.engine.clone(),
            desired: self.desired.clone(),
            changes: self.changes,
        }
    }
}

pub use crate::host::settings::OnHost;

/// The part of a run that differs between apply, rollback and the agent.
pub trait HostWork<E: Engine>: Sync {
    /// On the host as listed under the lock, before repair: an error refuses the host (a saved
    /// plan whose host changed since).
    fn check(&self, _target: &Target<E>, _list: &[ContainerSummary]) -> Result<(), StalePlan> {
        Ok(())
    }

    /// Whether a host that needed repair is refused instead of worked on (a saved plan no longer
    /// describes it).
    fn refuse_repaired(&self) -> bool {
        false
    }

    /// The work on a host that is locked, repaired and freshly listed (`on`).
    fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        on: OnHost<'_>,
        progress: Progress<'_>,
    ) -> impl Future<Output = HostReport>;
}

/// Runs `work` over the hosts; one report per host, in the order given.
pub async fn run<E: Engine, W: HostWork<E>>(
    targets: Vec<Target<E>>,
    settings: &Settings,
    work: &W,
    progress_for: ProgressFor<'_>,
) -> Vec<HostReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.parallel.max(1)));
    let tasks = targets.iter().map(|t| {
        let stop = stop.clone();
        let semaphore = semaphore.clone();
        async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let progress = progress_for(&t.name);
            if settings.cancel.is_cancelled() {
                return HostReport::with_error(
                    &t.name,
                    &t.endpoint,
                    HostStatus::Interrupted,
                    "not started: interrupted",
                );
            }
            if stop.load(Ordering::SeqCst) {
                return HostReport::with_error(
                    &t.name,
                    &t.endpoint,
                    HostStatus::Skipped,
                    "not started: an earlier host failed",
                );
            }
            let engine = match &t.engine {
                Ok(e) => e.clone(),
                // Unreachable from the start: nothing attempted, the others go on.
                Err(e) => return t.unreachable(e),
            };
            let r = one_host(&*engine, t, settings, work, &*progress).await;
            if !r.status.ok() {
                stop.store(true, Ordering::SeqCst);
            }
            progress("done");
            r
        }
    });
    futures::future::join_all(tasks).await
}

/// Lock, list, check, repair, list, work, release: one host.
pub async fn one_host<E: Engine, W: HostWork<E>>(
    engine: &E,
    t: &Target<E>,
    settings: &Settings,
    work: &W,
    progress: Progress<'_>,
) -> HostReport {
    progress("locking");
    let mut held = match lock::acquire(
        engine,
        &settings.platform,
        &settings.environment,
        &t.name,
        &settings.lock,
        progress,
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            let status = match e {
                lock::LockError::Held { .. } => HostStatus::Locked,
                lock::LockError::Engine(ref err) if err.is_unreachable() => HostStatus::Unreachable,
                lock::LockError::Engine(_) => HostStatus::Failed,
            };
            let mut r = HostReport::with_error(&t.name, &t.endpoint, status, e.to_string());
            r.attempted = true;
            return r;
        }
    };
    tracing::debug!("{}: locked ({})", t.name, held.name);
    let report = {
        let worked = under_lock(engine, t, settings, work, progress);
        let beating = lock::heartbeat(engine, &mut held);
        tokio::pin!(worked);
        tokio::pin!(beating);
        tokio::select! {
            biased;
            r = &mut worked => r,
            _ = &mut beating => unreachable!("the heartbeat never ends"),
        }
    };
    lock::release(engine, &held).await;
    tracing::debug!("{}: released the lock, {:?}", t.name, report.status);
    let mut report = report;
    report.attempted = true;
    report
}

/// Under the lock: the work, then the images no container uses any more (`host::cleanup`).
async fn under_lock<E: Engine, W: HostWork<E>>(
    engine: &E,
    t: &Target<E>,
    settings: &Settings,
    work: &W,
    progress: Progress<'_>,
) -> HostReport {
    let released = Released::default();
    let mut r = repair_and_work(engine, t, settings, work, &released, progress).await;
    r.images_removed = cleanup::release(engine, &released, progress).await;
    r
}

async fn repair_and_work<E: Engine, W: HostWork<E>>(
    engine: &E,
    t: &Target<E>,
    settings: &Settings,
    work: &W,
    released: &Released,
    progress: Progress<'_>,
) -> HostReport {
    let prefix = view::prefix(&settings.platform, &settings.environment);
    let unreachable =
        |e: String| HostReport::with_error(&t.name, &t.endpoint, HostStatus::Unreachable, e);
    let list = match engine.list_containers(&prefix).await {
        Ok(l) => l,
        Err(e) => return unreachable(e.to_string()),
    };
    if let Err(e) = work.check(t, &list) {
        return HostReport::with_error(&t.name, &t.endpoint, HostStatus::Refused, e.to_string());
    }
    let mut view = view::classify(&settings.platform, &settings.environment, &list);
    view.stale_secrets = super::secrets::stale(engine, &t.desired, &view).await;
    view.untrusted = super::crashed::untrusted(engine, &t.desired, &view).await;
    let repaired =
        match repair::repair(engine, &view, &t.desired, settings, released, progress).await {
            Ok(r) => r,
            Err(e) => {
                return HostReport::with_error(
                    &t.name,
                    &t.endpoint,
                    HostStatus::Failed,
                    format!("repairing what an interrupted run left: {e}"),
                );
            }
        };
    // A host stopped after repair: the report says what repair did all the same.
    let stopped = |status: HostStatus, error: String| {
        let mut r = HostReport::with_error(&t.name, &t.endpoint, status, error);
        r.repaired = repaired.notes.clone();
        r
    };
    if repaired.acted() {
        match engine.list_containers(&prefix).await {
            Ok(l) => {
                view = view::classify(&settings.platform, &settings.environment, &l);
                view.stale_secrets = super::secrets::stale(engine, &t.desired, &view).await;
                view.untrusted = super::crashed::untrusted(engine, &t.desired, &view).await;
            }
            Err(e) => return stopped(HostStatus::Unreachable, e.to_string()),
        }
        if work.refuse_repaired() {
            return stopped(
                HostStatus::Refused,
                "an interrupted run was repaired on this host; run `fleetpin plan` again".into(),
            );
        }
    }
    if settings.cancel.is_cancelled() {
        return stopped(HostStatus::Interrupted, "not started: interrupted".into());
    }
    let on = OnHost {
        view: &view,
        released,
        settings,
    };
    let mut r = work.work(engine, t, on, progress).await;
    if repaired.acted() && r.status == HostStatus::Unchanged {
        r.status = HostStatus::Converged;
    }
    r.repaired = repaired.notes;
    r
}
