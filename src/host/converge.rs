//! Converging one locked, repaired host to its plan: the steps of `apply` on a host.
//!
//! Images are pulled (and digest pins verified) before anything is stopped, so a failed pull
//! leaves the host untouched; volumes and networks are created next (they change nothing that
//! runs). Then each change in start order: a replacement goes through the one swap (a new
//! container, or a kept one relaunched when its spec hash is the one wanted), a stopped or
//! unhealthy service is restarted and judged by the gate, an orphan is removed with `--prune`,
//! a conflict is reported and never touched. The first failure stops the host: what follows may
//! depend on it.

use crate::engine::{ContainerSummary, Engine, EngineError, reference};
use crate::host::cleanup;
use crate::host::crashed;
use crate::host::gate;
use crate::host::report::{
    Action, ActionStatus, Failure, HostReport, HostStatus, Progress, StepResult,
};
use crate::host::runner::{HostWork, OnHost, Target};
use crate::host::spec::create_spec;
use crate::host::swap::{self, Incoming};
use crate::host::waves;
use crate::manifest::resolve::{MountSource, ResolvedService};
use crate::plan::doc::{PlanDoc, PlanHost, Selection, StalePlan, filter_orphans};
use crate::plan::labels::{self, Aside};
use crate::plan::{self, Change, ChangeKind};
use std::time::Instant;

/// Apply's work on one host, for the runner: the plan made under the lock (or the saved plan,
/// refused when the host or the manifest changed since), carried out by `execute`.
pub struct Apply {
    pub saved: Option<PlanDoc>,
    pub select: Selection,
    /// `--prune`: orphans are removed (else kept, and reported).
    pub prune: bool,
}

impl Apply {
    fn saved_host(&self, host: &str) -> Option<&PlanHost> {
        self.saved
            .as_ref()
            .and_then(|s| s.hosts.iter().find(|h| h.host == host))
    }
}

impl<E: Engine> HostWork<E> for Apply {
    fn check(&self, target: &Target<E>, list: &[ContainerSummary]) -> Result<(), StalePlan> {
        if self.saved.is_none() {
            return Ok(());
        }
        let Some(s) = self.saved_host(&target.name) else {
            return Err(StalePlan::HostNotInPlan);
        };
        if s.fingerprint.as_deref() != Some(plan::fingerprint(list).as_str()) {
            return Err(StalePlan::HostChanged);
        }
        // The manifest must still describe what the plan was made from.
        for c in &s.changes {
            if let Some(h) = &c.spec_hash
                && !target
                    .desired
                    .iter()
                    .any(|r| r.service == c.service && &r.spec_hash == h)
            {
                return Err(StalePlan::ManifestChanged {
                    service: c.service.clone(),
                });
            }
        }
        Ok(())
    }

    fn refuse_repaired(&self) -> bool {
        self.saved.is_some()
    }

    async fn work(
        &self,
        engine: &E,
        target: &Target<E>,
        on: OnHost<'_>,
        progress: Progress<'_>,
    ) -> HostReport {
        let changes = match self.saved_host(&target.name) {
            Some(s) => s.changes.clone(),
            None => filter_orphans(plan::plan_host(&target.desired, on.view), &self.select),
        };
        execute(engine, target, &changes, on, self.prune, progress).await
    }
}

/// Why a host's images could not all be made ready: nothing was changed on the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The pull failed; `anonymous` is why no credentials were used, when a helper failed.
    #[error("pull of {image} failed: {reason}{}", anonymous.as_ref().map(|p| format!(" (pulled anonymously: {p})")).unwrap_or_default())]
    Pull {
        image: String,
        reason: EngineError,
        anonymous: Option<String>,
    },
    /// The engine could not say what images it holds (or create a volume or network).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A digest pin and what the host holds under that reference differ: the registry's tag
    /// was not what was pinned; pin the digest the registry serves, or push the pinned one.
    #[error("digest mismatch for {service}: pinned {repository}@{digest}, the host has {found}")]
    DigestMismatch {
        service: String,
        repository: String,
        digest: String,
        /// The host's digests for it, or `no such image`.
        found: String,
    },
}

/// Converges one host, which the caller has locked and observed (`on`), by carrying out
/// `changes` (as planned from `desired` and `on.view`).
pub async fn execute<E: Engine>(
    engine: &E,
    target: &Target<E>,
    changes: &[Change],
    on: OnHost<'_>,
    prune: bool,
    progress: Progress<'_>,
) -> HostReport {
    let desired = &target.desired;
    let mut report = HostReport::new(&target.name, engine.endpoint(), HostStatus::Unchanged);
    let find = |s: &str| desired.iter().find(|r| r.service == s);
    let untouched = |report: &mut HostReport, e: ImageError| {
        report.status = HostStatus::Failed;
        report.error = Some(format!("{e}; nothing was changed on this host"));
    };

    // 1. Pull everything first, all at once: a failed pull must leave the host as it was. A
    //    relaunched container needs no image; one image is pulled once.
    let mut images: Vec<&ResolvedService> = Vec::new();
    for c in changes
        .iter()
        .filter(|c| c.kind.replaces() && c.relaunch.is_none())
    {
        if let Some(r) = find(&c.service)
            && !images.iter().any(|x| x.image_ref == r.image_ref)
        {
            images.push(r);
        }
    }
    let pulled =
        futures::future::join_all(images.iter().map(|r| ensure_image(engine, r, progress))).await;
    if let Some(e) = pulled.into_iter().find_map(Result::err) {
        untouched(&mut report, e);
        return report;
    }
    // Volumes and networks: creating them changes nothing that runs.
    let res = desired
        .first()
        .map(|r| labels::for_resource(&r.platform, &r.environment))
        .unwrap_or_default();
    let mut volumes: Vec<&str> = Vec::new();
    let mut networks: Vec<&str> = Vec::new();
    for c in changes.iter().filter(|c| c.kind.replaces() || c.afresh) {
        let Some(r) = find(&c.service) else { continue };
        for m in &r.mounts {
            if let MountSource::Volume { name } = &m.source
                && !volumes.contains(&name.as_str())
            {
                volumes.push(name);
            }
        }
        for n in &r.networks {
            if !networks.contains(&n.as_str()) {
                networks.push(n);
            }
        }
    }
    let (made_volumes, made_networks) = futures::future::join(
        futures::future::join_all(volumes.iter().map(|v| engine.ensure_volume(v, &res))),
        futures::future::join_all(networks.iter().map(|n| engine.ensure_network(n, &res))),
    )
    .await;
    if let Some(e) = made_volumes
        .into_iter()
        .chain(made_networks)
        .find_map(Result::err)
    {
        untouched(&mut report, e.into());
        return report;
    }

    // 2. In depends_on waves: a service starts once those it depends on passed their gates;
    //    independent ones (and their gates) run together. A failure stops only its dependents.
    let mut steps = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let mut action = Action::new(&c.service, c.kind, c.from.clone(), c.to.clone());
        match c.kind {
            ChangeKind::Unchanged => continue,
            ChangeKind::Conflict => {
                action.status = ActionStatus::Skipped;
                action.detail = c.reason.clone();
                report.actions.push(action);
                continue;
            }
            ChangeKind::RemoveOrphan if !prune => {
                action.status = ActionStatus::Skipped;
                action.detail = Some("orphan kept: run with --prune to remove it".into());
                report.actions.push(action);
                continue;
            }
            _ => {}
        }
        steps.push(waves::Step {
            service: c.service.clone(),
            after: find(&c.service)
                .map(|r| r.depends_on.clone())
                .unwrap_or_default(),
            job: (i, c, action),
        });
    }
    let outcomes = waves::run(
        steps,
        &on.settings.cancel,
        |(_, r): &StepResult| r.is_ok(),
        |(_, c, mut action): (usize, &Change, Action)| async move {
            let started = Instant::now();
            let outcome = match c.kind {
                ChangeKind::RemoveOrphan => remove_orphan(engine, &c.service, on, progress).await,
                ChangeKind::Restart => match (&c.container, find(&c.service)) {
                    (Some(_), Some(r)) if c.afresh => {
                        replace(engine, r, c, on, progress, &mut action).await
                    }
                    (Some(id), Some(r)) => {
                        restart(engine, id, r, c, on, progress, &mut action).await
                    }
                    _ => Ok(()),
                },
                _ => match find(&c.service) {
                    Some(r) => replace(engine, r, c, on, progress, &mut action).await,
                    None => Ok(()),
                },
            };
            action.seconds = started.elapsed().as_secs_f64();
            (action, outcome)
        },
    )
    .await;
    report.record(outcomes, changes, "; the previous version runs again");
    report
}

/// Pulls the image of `r` when the host lacks it, and checks a digest pin against what the host
/// then holds. The error says what failed.
async fn ensure_image<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    match engine.inspect_image(&r.image_ref).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            progress(&format!("pulling {}", r.image_ref));
            crate::interrupt::fault_point("pulling").await;
            // A helper that fails leaves the pull anonymous, as with the docker CLI; if the
            // pull then fails, the helper's error is why.
            let (credentials, problem) =
                match crate::engine::credentials::for_image(&r.repository).await {
                    Ok(c) => (c, None),
                    Err(e) => (None, Some(e)),
                };
            engine
                .pull(&r.image_ref, credentials)
                .await
                .map_err(|e| ImageError::Pull {
                    image: r.image_ref.clone(),
                    reason: e,
                    anonymous: problem.map(|p| p.to_string()),
                })?;
        }
        Err(e) => return Err(e.into()),
    }
    // A digest pin must run exactly that image: check what the host holds under it, whatever
    // form (`nginx`, `docker.io/library/nginx`) the manifest and the engine use.
    if let Some(digest) = &r.pin.digest {
        let found = engine.inspect_image(&r.image_ref).await?;
        let ok = found
            .as_ref()
            .and_then(|img| reference::digest_for(&img.repo_digests, &r.repository))
            .is_some_and(|d| &d == digest);
        if !ok {
            return Err(ImageError::DigestMismatch {
                service: r.service.clone(),
                repository: r.repository.clone(),
                digest: digest.clone(),
                found: found
                    .map(|i| i.repo_digests.join(", "))
                    .unwrap_or_else(|| "no such image".into()),
            });
        }
    }
    Ok(())
}

/// A service present but stopped or unhealthy: stop, start, and judge it. One that stopped under
/// an engine crash is never started again in place (it would answer on no port): a fresh one of
/// its spec takes its place through the swap, whatever the plan (a saved one may predate the
/// crash).
async fn restart<E: Engine>(
    engine: &E,
    id: &str,
    r: &ResolvedService,
    c: &Change,
    on: OnHost<'_>,
    progress: Progress<'_>,
    action: &mut Action,
) -> Result<(), Failure> {
    let fail = |reason: String| Failure::new(&r.service, reason);
    if let Ok(d) = engine.inspect_container(id).await
        && d.state != crate::engine::RunState::Running
        && crashed::stopped_under_a_crash(&d.endpoints)
    {
        progress(&format!(
            "{} stopped under an engine crash: creating it afresh",
            r.service
        ));
        action.detail = Some(crashed::STOPPED_UNDER_A_CRASH.into());
        return replace(engine, r, c, on, progress, action).await;
    }
    progress(&format!("restarting {}", r.service));
    engine
        .stop(id, None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    engine.start(id).await.map_err(|e| fail(e.to_string()))?;
    progress(&format!("waiting for {} to pass its gate", r.service));
    let h = Instant::now();
    let judged = gate::watch(engine, id, &on.settings.gate(r)).await;
    action.health_seconds = h.elapsed().as_secs_f64();
    match judged {
        Ok(()) => Ok(()),
        Err(gate::Judged::Failed(reason)) => {
            Err(swap::failure_details(engine, id, &r.service, reason).await)
        }
        Err(e) => Err(Failure::new(&r.service, e.to_string())),
    }
}

async fn remove_orphan<E: Engine>(
    engine: &E,
    service: &str,
    on: OnHost<'_>,
    progress: Progress<'_>,
) -> Result<(), Failure> {
    progress(&format!("removing orphan {service}"));
    for c in on.view.all_of(service) {
        match cleanup::remove_container(engine, on.released, c).await {
            // A `.broken-` one is left for a later run when the engine still refuses: it never
            // serves, and nothing else depends on it.
            Err(e) if c.name.contains(labels::BROKEN) => {
                tracing::warn!("{service}: {} still cannot be removed: {e}", c.name)
            }
            r => r.map_err(|e| Failure::new(service, e.to_string()))?,
        }
    }
    Ok(())
}

/// Create, upgrade, downgrade, change or reconfigure: the one swap, to a new container or to a
/// kept one with the very spec wanted.
async fn replace<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    c: &Change,
    on: OnHost<'_>,
    progress: Progress<'_>,
    action: &mut Action,
) -> Result<(), Failure> {
    let view = on.view;
    let current = view.current.get(&r.service);
    let relaunched = c
        .relaunch
        .as_ref()
        .and_then(|id| view.kept(&r.service).into_iter().find(|k| &k.id == id));
    let incoming = match relaunched {
        Some(k) => {
            action.relaunched = true;
            Incoming::Relaunch(k.clone())
        }
        None => Incoming::Create(Box::new(create_spec(
            r,
            &r.container_name,
            &on.settings.stamp,
        ))),
    };
    // Going back to a container created before the one serving is a rollback in all but name.
    let aside = match (&incoming, current) {
        (Incoming::Relaunch(k), Some(cur)) if k.created < cur.created => Aside::RolledBack,
        _ => Aside::Previous,
    };
    action.previous = current.map(|c| c.id.clone());
    // A fresh container replacing a kept one the engine refuses to start is a step forward.
    swap::for_service_as(engine, r, on, incoming, aside, Aside::Previous, progress)
        .await?
        .record(action);
    Ok(())
}
