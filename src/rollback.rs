//! `fleetpin rollback`: start the newest retained previous container of each selected service
//! again — no pull, no new container, so it takes a stop, two renames and a start plus the health
//! check — then pin what now runs, through the same pin-editing and commit code as promote.
//!
//! Which container to start is a pure choice over the host's classified containers: the newest
//! retained one, or with `--to` the newest retained one at that version; a failed container is
//! never chosen. Only when `--to` names a version no longer retained but whose image is still on
//! the host is a new container created from it.

use crate::app::{Config, Exit};
use crate::apply::{self, Action, ActionStatus, Failure, HostReport, HostStatus};
use crate::cli::{Format, RollbackArgs, Selection};
use crate::deploy::{self, Prepared, ProgressSink};
use crate::engine::{ContainerSummary, Engine};
use crate::manifest::pin::VersionPin;
use crate::manifest::resolve::ResolvedService;
use crate::ops::pins;
use crate::plan::labels;
use crate::plan::{self, Change, ChangeKind, HostView};
use crate::{git, lock, render};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What rollback will start for one service on one host.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Start this retained container again.
    Retained(ContainerSummary),
    /// No container of that version is retained, but its image is on the host: create one.
    Recreate(VersionPin),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("nothing to roll back to: no previous container is retained")]
    NothingRetained,
    #[error("no retained container runs {0}; retained: {1}")]
    NotRetained(String, String),
    #[error("`{0}` is not a version: {1}")]
    BadVersion(String, String),
}

fn version_of(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::VERSION)
        .map(String::as_str)
        .unwrap_or("?")
}

/// The pure choice. `to` matches a retained container's pin as written, or its tag.
pub fn choose(view: &HostView, service: &str, to: Option<&str>) -> Result<Choice, ChoiceError> {
    let retained = view
        .retained
        .get(service)
        .map(|v| v.as_slice())
        .unwrap_or(&[]);
    match to {
        None => retained
            .first()
            .cloned()
            .map(Choice::Retained)
            .ok_or(ChoiceError::NothingRetained),
        Some(v) => {
            let wanted = VersionPin::parse(v)
                .map_err(|e| ChoiceError::BadVersion(v.to_string(), e.to_string()))?;
            if let Some(c) = retained.iter().find(|c| {
                let have = version_of(c);
                have == v
                    || VersionPin::parse(have).is_ok_and(|p| {
                        p.tag == wanted.tag
                            && (wanted.digest.is_none() || p.digest == wanted.digest)
                    })
            }) {
                return Ok(Choice::Retained(c.clone()));
            }
            if retained.is_empty() {
                // The image may still be there: the caller checks.
                return Ok(Choice::Recreate(wanted));
            }
            Ok(Choice::Recreate(wanted))
        }
    }
}

/// Rolls back `services` on one locked host; returns the report and, per service, the version
/// now running.
async fn rollback_host<E: Engine>(
    engine: &E,
    host: &str,
    desired: &[ResolvedService],
    view: &HostView,
    to: Option<&str>,
    opts: &apply::Options,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> (HostReport, BTreeMap<String, String>) {
    let mut report = HostReport::new(host, engine.endpoint(), HostStatus::Unchanged);
    let mut now_running = BTreeMap::new();
    for r in desired {
        let started = Instant::now();
        let current = view.current.get(&r.service);
        let from = current.map(|c| version_of(c).to_string());
        let mut action = Action {
            service: r.service.clone(),
            kind: ChangeKind::Change,
            from: from.clone(),
            to: None,
            status: ActionStatus::Done,
            seconds: 0.0,
            health_seconds: 0.0,
            detail: None,
        };
        let choice = match choose(view, &r.service, to) {
            Ok(c) => c,
            Err(e) => {
                action.status = ActionStatus::Failed;
                action.detail = Some(e.to_string());
                report.actions.push(action);
                report.status = HostStatus::Failed;
                report.error = Some(format!("{}: {e}", r.service));
                return (report, now_running);
            }
        };
        let result = match choice {
            Choice::Retained(target) => {
                let to_version = version_of(&target).to_string();
                action.to = Some(to_version.clone());
                action.kind = kind(from.as_deref(), &to_version);
                swap_to_retained(engine, r, current, &target, opts, progress, &mut action)
                    .await
                    .map(|()| to_version)
            }
            Choice::Recreate(pin) => {
                action.to = Some(pin.to_string());
                action.kind = kind(from.as_deref(), &pin.to_string());
                let mut spec = r.clone();
                spec.image_ref = pin.image_ref(&r.repository);
                spec.pin = pin.clone();
                spec.spec_hash = crate::manifest::resolve::spec_hash(&spec);
                match engine.inspect_image(&spec.image_ref).await {
                    Ok(Some(_)) => {
                        let change = Change {
                            service: r.service.clone(),
                            kind: action.kind,
                            from: from.clone(),
                            to: Some(pin.to_string()),
                            container: current.map(|c| c.id.clone()),
                            spec_hash: Some(spec.spec_hash.clone()),
                            reason: None,
                        };
                        let sub = apply::execute(
                            engine,
                            host,
                            std::slice::from_ref(&spec),
                            &[change],
                            view,
                            opts,
                            progress,
                        )
                        .await;
                        match sub.failure {
                            None if sub.status != HostStatus::Failed => Ok(pin.to_string()),
                            Some(f) => Err(f),
                            None => Err(Failure {
                                service: r.service.clone(),
                                reason: sub.error.unwrap_or_default(),
                                health_log: vec![],
                                logs: String::new(),
                                restored: false,
                            }),
                        }
                    }
                    Ok(None) => Err(Failure {
                        service: r.service.clone(),
                        reason: format!(
                            "no retained container runs {pin} and its image {} is not on the host (rollback does not pull; use `fleetpin apply` with that pin)",
                            spec.image_ref
                        ),
                        health_log: vec![],
                        logs: String::new(),
                        restored: true,
                    }),
                    Err(e) => Err(Failure {
                        service: r.service.clone(),
                        reason: e.to_string(),
                        health_log: vec![],
                        logs: String::new(),
                        restored: true,
                    }),
                }
            }
        };
        action.seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(v) => {
                now_running.insert(r.service.clone(), v);
                report.status = HostStatus::Converged;
                report.actions.push(action);
            }
            Err(f) => {
                action.status = ActionStatus::Failed;
                action.detail = Some(f.reason.clone());
                report.actions.push(action);
                report.status = HostStatus::Failed;
                report.error = Some(format!(
                    "{}: {}{}",
                    f.service,
                    f.reason,
                    if f.restored {
                        "; the version that was running runs again"
                    } else {
                        ""
                    }
                ));
                report.failure = Some(f);
                return (report, now_running);
            }
        }
    }
    (report, now_running)
}

fn kind(from: Option<&str>, to: &str) -> ChangeKind {
    match (from.map(VersionPin::parse), VersionPin::parse(to)) {
        (Some(Ok(f)), Ok(t)) => match f.compare(&t) {
            Some(std::cmp::Ordering::Greater) => ChangeKind::Downgrade,
            Some(std::cmp::Ordering::Less) => ChangeKind::Upgrade,
            _ => ChangeKind::Change,
        },
        _ => ChangeKind::Change,
    }
}

/// Stop the current container, step it aside, give the retained one the stable name back with
/// its restart policy, start it and wait for health; on failure, undo.
async fn swap_to_retained<E: Engine>(
    engine: &E,
    r: &ResolvedService,
    current: Option<&ContainerSummary>,
    target: &ContainerSummary,
    opts: &apply::Options,
    progress: &(dyn Fn(&str) + Send + Sync),
    action: &mut Action,
) -> Result<(), Failure> {
    let stable = r.container_name.as_str();
    let fail = |reason: String, restored: bool| Failure {
        service: r.service.clone(),
        reason,
        health_log: vec![],
        logs: String::new(),
        restored,
    };
    let policy = target
        .labels
        .get(labels::RESTART)
        .cloned()
        .unwrap_or_else(|| r.restart.as_str().to_string());
    let mut aside = None;
    if let Some(cur) = current {
        progress(&format!("stopping {} {}", r.service, version_of(cur)));
        engine
            .stop(&cur.id, None)
            .await
            .map_err(|e| fail(format!("stopping the running container: {e}"), false))?;
        // `.old-` until the started one passes its health gate (see `repair`).
        let name = format!(
            "{stable}{}{}",
            labels::OLD,
            labels::suffix(apply::now_millis(), &cur.id)
        );
        if let Err(e) = engine.rename(&cur.id, &name).await {
            let _ = engine.start(&cur.id).await;
            return Err(fail(format!("renaming: {e}"), true));
        }
        aside = Some(name);
    }
    progress(&format!("starting {} {}", r.service, version_of(target)));
    let swapped = async {
        engine.rename(&target.id, stable).await?;
        engine.set_restart_policy(&target.id, &policy).await?;
        engine.start(&target.id).await
    }
    .await;
    let h = Instant::now();
    let healthy = match swapped {
        Ok(()) => {
            progress(&format!("waiting for {} to be healthy", r.service));
            apply::wait_healthy(engine, &target.id, opts.health_timeout, opts.grace).await
        }
        Err(e) => Err(e.to_string()),
    };
    action.health_seconds = h.elapsed().as_secs_f64();
    match healthy {
        Ok(()) => {
            if let (Some(cur), Some(aside)) = (current, &aside)
                && let Err(e) = apply::confirm(engine, &cur.id, aside).await
            {
                tracing::warn!(
                    "{}: could not confirm the previous container as retained: {e}",
                    r.service
                );
            }
            Ok(())
        }
        Err(reason) => {
            let mut f = fail(reason, false);
            let _ = engine.stop(&target.id, Some(Duration::from_secs(5))).await;
            let failed = format!(
                "{stable}{}{}",
                labels::FAILED,
                labels::suffix(apply::now_millis(), &target.id)
            );
            let _ = engine.rename(&target.id, &failed).await;
            let _ = engine.set_restart_policy(&target.id, "no").await;
            if let (Some(cur), Some(_)) = (current, &aside) {
                let back = async {
                    engine.rename(&cur.id, stable).await?;
                    engine.start(&cur.id).await
                }
                .await;
                f.restored = back.is_ok()
                    && apply::wait_healthy(engine, &cur.id, opts.health_timeout, opts.grace)
                        .await
                        .is_ok();
            }
            Err(f)
        }
    }
}

pub fn run(config: &Config, args: &RollbackArgs) -> Exit {
    let fail = |msg: &str| {
        eprintln!("{} {msg}", config.err.red("error:"));
        Exit::Failure
    };
    if matches!(config.format, Format::Markdown | Format::Html) {
        return fail("--format markdown and html are for `fleetpin audit`; use table or json");
    }
    let loaded = match crate::app::load_or_report(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // Refuse before touching any host if the pins could not be committed afterwards.
    if !args.no_commit
        && let Err(e) = git::ensure_clean(&loaded.path)
    {
        return fail(&e.to_string());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let select = Selection {
        services: args.select.services.clone(),
        hosts: args.select.hosts.clone(),
    };
    let prepared = match rt.block_on(deploy::prepare(config, &loaded, &args.env, &select)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !args.yes && !config.quiet {
        eprintln!(
            "Rolling back {} in {} on {} host(s).",
            if select.services.is_empty() {
                "every service".to_string()
            } else {
                select.services.join(", ")
            },
            args.env,
            prepared.len()
        );
    }
    if !args.yes && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return fail(
            "stdin is not a terminal, so nobody can confirm: pass --yes to roll back without asking",
        );
    }
    if !args.yes {
        eprint!("Roll back? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("Nothing rolled back.");
            return Exit::Failure;
        }
    }
    let env = &loaded.manifest.environments[&args.env];
    let parallel = env
        .max_parallel
        .map(|n| n as usize)
        .unwrap_or(prepared.len())
        .max(1);
    let opts = apply::Options {
        retain: loaded.manifest.retain,
        prune: false,
        stamp: deploy::stamp(&loaded, true, git::manifest_commit(&loaded.path)),
        health_timeout: apply::DEFAULT_HEALTH_TIMEOUT,
        grace: apply::DEFAULT_GRACE,
    };
    let sink = ProgressSink::new(config);
    let results = rt.block_on(rollback_all(
        &loaded.manifest.platform,
        &args.env,
        prepared,
        args.to.as_deref(),
        &opts,
        parallel,
        &sink,
    ));
    sink.clear();
    let reports: Vec<HostReport> = results.iter().map(|(r, _)| r.clone()).collect();
    let failed = reports
        .iter()
        .any(|r| !matches!(r.status, HostStatus::Converged | HostStatus::Unchanged));

    // Pin what now runs, when every host that rolled a service back agrees on its version.
    let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, m) in &results {
        for (s, v) in m {
            running.entry(s.clone()).or_default().push(v.clone());
        }
    }
    let mut moves = Vec::new();
    let mut notes = Vec::new();
    for (service, versions) in &running {
        let first = &versions[0];
        if versions.iter().any(|v| v != first) {
            notes.push(format!(
                "{service}: hosts now run different versions ({}); pin left as it is",
                versions.join(", ")
            ));
            continue;
        }
        let pinned = env.versions.get(service).map(|p| p.value.to_string());
        if pinned.as_deref() != Some(first.as_str()) {
            moves.push((
                service.clone(),
                pinned.unwrap_or_else(|| "-".into()),
                first.clone(),
            ));
        }
    }
    let mut commit = None;
    if !moves.is_empty() && !args.no_commit {
        let edits: Vec<(String, String)> = moves
            .iter()
            .map(|(s, _, to)| (s.clone(), to.clone()))
            .collect();
        let message = pins::message("rollback", &args.env, &moves);
        match pins::write_and_commit(
            &loaded.path,
            &loaded.text,
            &args.env,
            &edits,
            Some(&message),
        ) {
            Ok(id) => commit = id.map(|id| (id, message)),
            Err((_, e)) => notes.push(format!("the pins could not be rewritten: {e}")),
        }
    } else if !moves.is_empty() {
        notes.push("--no-commit: the manifest still pins the versions rolled back from; plan and audit show the drift".into());
    }
    if config.format == Format::Json {
        let doc = serde_json::json!({
            "environment": args.env,
            "ok": !failed,
            "hosts": reports,
            "pins": moves.iter().map(|(s, f, t)| serde_json::json!({"service": s, "from": f, "to": t})).collect::<Vec<_>>(),
            "commit": commit.as_ref().map(|(id, _)| id),
            "notes": notes,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a report serialises")
        );
    } else {
        print!("{}", render::apply_report(&reports, config.out));
        if let Some((id, message)) = &commit {
            println!("\ncommitted {}: {message}", &id[..12.min(id.len())]);
        }
        for n in &notes {
            println!("note: {n}");
        }
    }
    if crate::interrupt::interrupted() {
        Exit::Interrupted
    } else if failed {
        Exit::Failure
    } else {
        Exit::Success
    }
}

async fn rollback_all(
    platform: &str,
    env: &str,
    prepared: Vec<Prepared>,
    to: Option<&str>,
    opts: &apply::Options,
    parallel: usize,
    sink: &ProgressSink,
) -> Vec<(HostReport, BTreeMap<String, String>)> {
    crate::interrupt::install();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let tasks = prepared.into_iter().map(|p| {
        let stop = stop.clone();
        let semaphore = semaphore.clone();
        let progress = sink.host(&p.host.name);
        async move {
            let _permit = semaphore.acquire_owned().await.expect("never closed");
            let endpoint = p.host.endpoint();
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Skipped);
                r.error = Some("not started: an earlier host failed".into());
                return (r, BTreeMap::new());
            }
            let Some(engine) = p.engine.clone() else {
                let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Unreachable);
                r.error = p.error.clone();
                return (r, BTreeMap::new());
            };
            progress("locking");
            let lock_id = match lock::acquire(
                &*engine,
                platform,
                env,
                &p.host.name,
                &opts.stamp.deployed_by,
            )
            .await
            {
                Ok(id) => id,
                Err(e) => {
                    let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Locked);
                    r.error = Some(e.to_string());
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    return (r, BTreeMap::new());
                }
            };
            let out = match engine.list_containers(&plan::prefix(platform, env)).await {
                Ok(list) => {
                    let mut view = plan::classify(platform, env, &list);
                    // What an interrupted run left is repaired first, so rollback starts from a
                    // state it knows.
                    let repaired = crate::repair::repair(
                        &*engine,
                        platform,
                        env,
                        &view,
                        opts.health_timeout,
                        &*progress,
                    )
                    .await;
                    let notes = match repaired {
                        Ok(done) if done.acted() => {
                            if let Ok(l) =
                                engine.list_containers(&plan::prefix(platform, env)).await
                            {
                                view = plan::classify(platform, env, &l);
                            }
                            done.notes
                        }
                        Ok(_) => vec![],
                        Err(e) => vec![format!("repair failed: {e}")],
                    };
                    let (mut r, m) = if crate::interrupt::interrupted() {
                        let mut r =
                            HostReport::new(&p.host.name, &endpoint, HostStatus::Interrupted);
                        r.error = Some("not started: interrupted".into());
                        (r, BTreeMap::new())
                    } else {
                        rollback_host(
                            &*engine,
                            &p.host.name,
                            &p.desired,
                            &view,
                            to,
                            opts,
                            &*progress,
                        )
                        .await
                    };
                    r.repaired = notes;
                    (r, m)
                }
                Err(e) => {
                    let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Unreachable);
                    r.error = Some(e.to_string());
                    (r, BTreeMap::new())
                }
            };
            lock::release(&*engine, &lock_id).await;
            if !matches!(out.0.status, HostStatus::Converged | HostStatus::Unchanged) {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            progress("done");
            out
        }
    });
    futures::future::join_all(tasks).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Health, RunState};

    fn c(name: &str, version: &str) -> ContainerSummary {
        ContainerSummary {
            id: name.into(),
            name: name.into(),
            image: "r".into(),
            image_id: "i".into(),
            state: RunState::Exited,
            health: Health::None,
            labels: BTreeMap::from([
                (labels::PLATFORM.into(), "acme".into()),
                (labels::ENVIRONMENT.into(), "prod".into()),
                (labels::SERVICE.into(), "billing".into()),
                (labels::VERSION.into(), version.into()),
            ]),
            created: 0,
        }
    }

    #[test]
    fn chooses_the_newest_retained_never_a_failed_one() {
        let list = [
            c("acme-prod-billing", "2.4.1"),
            c("acme-prod-billing.prev-0000000000001-a", "2.3.0"),
            c("acme-prod-billing.prev-0000000000002-b", "2.4.0"),
            c("acme-prod-billing.failed-0000000000003-c", "2.4.2"),
        ];
        let view = plan::classify("acme", "prod", &list);
        match choose(&view, "billing", None).unwrap() {
            Choice::Retained(t) => assert_eq!(version_of(&t), "2.4.0"),
            other => panic!("{other:?}"),
        }
        match choose(&view, "billing", Some("2.3.0")).unwrap() {
            Choice::Retained(t) => assert_eq!(version_of(&t), "2.3.0"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose(&view, "billing", Some("2.4.2")).unwrap(),
            Choice::Recreate(VersionPin::parse("2.4.2").unwrap()),
            "a failed container is never started again"
        );
        assert_eq!(
            choose(&view, "crm", None),
            Err(ChoiceError::NothingRetained)
        );
    }
}
