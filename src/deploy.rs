//! `fleetpin plan` and `fleetpin apply`: resolve the manifest for every selected host (a bad
//! manifest or a missing env_file stops here, before any host is contacted), observe all hosts at
//! once, plan each with the pure planner, then — for apply — converge the hosts with bounded
//! parallelism, each under its lock, re-observed and re-planned once locked.

use crate::app::{Config, Exit};
use crate::apply::{self, HostReport, HostStatus};
use crate::cli::{ApplyArgs, Format, PlanArgs, Selection};
use crate::engine::Engine;
use crate::engine::docker::DockerEngine;
use crate::fleet::{self, HostRef};
use crate::manifest::Loaded;
use crate::manifest::resolve::{self, ResolvedService};
use crate::plan::labels::DeployStamp;
use crate::plan::{self, Change, ChangeKind};
use crate::{lock, render};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

pub const PLAN_FORMAT: &str = "fleetpin-plan/1";

/// A plan as printed with `--format json` and saved with `-o`. Secrets never appear: specs are
/// referenced by their hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDoc {
    pub format: String,
    pub platform: String,
    pub environment: String,
    pub commit: String,
    pub created_at: String,
    pub hosts: Vec<PlanHost>,
    pub summary: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanHost {
    pub host: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub changes: Vec<Change>,
    /// An interrupted run left unfinished work here (`.new-` or `.old-` containers), which
    /// apply repairs before anything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repair: bool,
}

impl PlanDoc {
    pub fn pending(&self) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.changes)
            .filter(|c| c.kind.is_pending())
            .count()
            + self.hosts.iter().filter(|h| h.repair).count()
    }
    pub fn has_errors(&self) -> bool {
        self.hosts.iter().any(|h| h.error.is_some())
            || self
                .hosts
                .iter()
                .flat_map(|h| &h.changes)
                .any(|c| c.kind == ChangeKind::Conflict)
    }
}

/// One selected host: how to reach it, what is wanted there, and what was seen.
pub struct Prepared {
    pub host: HostRef,
    pub desired: Vec<ResolvedService>,
    pub engine: Option<Arc<DockerEngine>>,
    pub error: Option<String>,
    pub fingerprint: Option<String>,
    pub changes: Vec<Change>,
    /// The host's containers, sorted by role.
    pub view: plan::HostView,
}

fn fail(config: &Config, msg: &str) -> Exit {
    eprintln!("{} {msg}", config.err.red("error:"));
    Exit::Failure
}

/// The commit a deploy comes from: the `--rev` commit, else HEAD when the file is committed and
/// unchanged, else none (`uncommitted`).
pub fn source_commit(loaded: &Loaded) -> Option<String> {
    loaded
        .rev_commit
        .clone()
        .or_else(|| crate::git::manifest_commit(&loaded.path))
}

/// Who deploys, from which commit, now.
pub fn stamp(loaded: &Loaded, quiet: bool, commit: Option<String>) -> DeployStamp {
    let commit = commit.unwrap_or_else(|| {
        if !quiet {
            eprintln!(
                "warning: {} has uncommitted changes (or is not in git): containers will be labelled commit=uncommitted",
                loaded.path.display()
            );
        }
        "uncommitted".into()
    });
    let deployed_by = identity(&loaded.path);
    DeployStamp {
        commit,
        deployed_at: lock::rfc3339(SystemTime::now()),
        deployed_by,
    }
}

/// Who the operator is: `FLEETPIN_USER`, else git's user.email, else user@hostname.
pub fn identity(manifest: &std::path::Path) -> String {
    std::env::var("FLEETPIN_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| crate::git::user_email(manifest))
        .unwrap_or_else(|| {
            format!(
                "{}@{}",
                std::env::var("USER")
                    .or_else(|_| std::env::var("LOGNAME"))
                    .unwrap_or_else(|_| "unknown".into()),
                lock::hostname()
            )
        })
}

fn check_services(loaded: &Loaded, env: &str, select: &Selection) -> Result<(), String> {
    let e = &loaded.manifest.environments[env];
    for s in &select.services {
        if !e.versions.contains_key(s) && !loaded.manifest.services.contains_key(s) {
            return Err(format!(
                "there is no service `{s}` in the manifest (services: {})",
                loaded
                    .manifest
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

fn resolve_hosts(
    loaded: &Loaded,
    hosts: &[HostRef],
    select: &Selection,
    lenient: bool,
) -> Result<Vec<Vec<ResolvedService>>, String> {
    let dir = loaded.dir();
    // Audit compares versions only: it must work where the secrets are not at hand.
    let reader = |p: &str| match std::fs::read_to_string(dir.join(p)) {
        Ok(t) => Ok(t),
        Err(_) if lenient => Ok(String::new()),
        Err(e) => Err(e.to_string()),
    };
    hosts
        .iter()
        .map(|h| {
            resolve::resolve_host(&loaded.manifest, &h.environment, &h.name, &reader)
                .map(|list| {
                    list.into_iter()
                        .filter(|r| {
                            select.services.is_empty() || select.services.contains(&r.service)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn filter_orphans(changes: Vec<Change>, select: &Selection) -> Vec<Change> {
    changes
        .into_iter()
        .filter(|c| {
            c.kind != ChangeKind::RemoveOrphan
                || select.services.is_empty()
                || select.services.contains(&c.service)
        })
        .collect()
}

/// Loads, resolves (no host contacted on error), observes and plans.
pub async fn prepare(
    config: &Config,
    loaded: &Loaded,
    env: &str,
    select: &Selection,
) -> Result<Vec<Prepared>, Exit> {
    prepare_with(config, loaded, env, select, false).await
}

/// `prepare`, reading a missing env_file as empty (for audit, which never creates containers).
pub async fn prepare_lenient(
    config: &Config,
    loaded: &Loaded,
    env: &str,
    select: &Selection,
) -> Result<Vec<Prepared>, Exit> {
    prepare_with(config, loaded, env, select, true).await
}

async fn prepare_with(
    config: &Config,
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    lenient: bool,
) -> Result<Vec<Prepared>, Exit> {
    let hosts = fleet::hosts(loaded, env, &select.hosts).map_err(|e| fail(config, &e))?;
    check_services(loaded, env, select).map_err(|e| fail(config, &e))?;
    let desired = resolve_hosts(loaded, &hosts, select, lenient).map_err(|e| fail(config, &e))?;
    let prefix = plan::prefix(&loaded.manifest.platform, env);
    let observed = fleet::observe_all(hosts, &prefix, config.connect_timeout).await;
    Ok(observed
        .into_iter()
        .zip(desired)
        .map(|(o, desired)| match o.result {
            Ok((engine, list)) => {
                let view = plan::classify(&loaded.manifest.platform, env, &list);
                let changes = filter_orphans(plan::plan_host(&desired, &view), select);
                Prepared {
                    host: o.host,
                    desired,
                    engine: Some(Arc::new(engine)),
                    error: None,
                    fingerprint: Some(plan::fingerprint(&list)),
                    changes,
                    view,
                }
            }
            Err(e) => Prepared {
                host: o.host,
                desired,
                engine: None,
                error: Some(format!("unreachable: {e}")),
                fingerprint: None,
                changes: vec![],
                view: plan::HostView::default(),
            },
        })
        .collect())
}

pub fn plan_doc(loaded: &Loaded, env: &str, commit: &str, prepared: &[Prepared]) -> PlanDoc {
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    for p in prepared {
        for (k, n) in plan::summary(&p.changes) {
            *summary.entry(k.as_str().to_string()).or_insert(0) += n;
        }
        if p.error.is_some() {
            *summary.entry("unreachable".into()).or_insert(0) += 1;
        }
    }
    PlanDoc {
        format: PLAN_FORMAT.into(),
        platform: loaded.manifest.platform.clone(),
        environment: env.to_string(),
        commit: commit.to_string(),
        created_at: lock::rfc3339(SystemTime::now()),
        hosts: prepared
            .iter()
            .map(|p| PlanHost {
                host: p.host.name.clone(),
                endpoint: p.host.endpoint(),
                error: p.error.clone(),
                fingerprint: p.fingerprint.clone(),
                changes: p.changes.clone(),
                repair: p.view.needs_repair(),
            })
            .collect(),
        summary,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub fn run_plan(config: &Config, args: &PlanArgs) -> Exit {
    if matches!(config.format, Format::Markdown | Format::Html) {
        return fail(
            config,
            "--format markdown and html are for `fleetpin audit`; use table or json",
        );
    }
    let loaded = match crate::app::load_rev_or_report(config, args.rev.as_deref()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let commit = source_commit(&loaded).unwrap_or_else(|| "uncommitted".into());
    let prepared = match runtime().block_on(prepare(config, &loaded, &args.env, &args.select)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let doc = plan_doc(&loaded, &args.env, &commit, &prepared);
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&doc).expect("a plan serialises");
        if let Err(e) = std::fs::write(out, json + "\n") {
            return fail(config, &format!("cannot write {}: {e}", out.display()));
        }
        if !config.quiet {
            eprintln!(
                "plan saved to {}; apply it with: fleetpin apply {} --plan {}",
                out.display(),
                args.env,
                out.display()
            );
        }
    }
    match config.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a plan serialises")
        ),
        _ => print!("{}", render::plan(&doc, config.verbose > 0, config.out)),
    }
    if doc.has_errors() {
        Exit::Failure
    } else if args.detailed_exitcode && doc.pending() > 0 {
        Exit::Pending
    } else {
        Exit::Success
    }
}

/// Where a human sees progress: spinners on a terminal, plain lines otherwise.
pub struct ProgressSink {
    multi: Option<indicatif::MultiProgress>,
    quiet: bool,
}

impl ProgressSink {
    pub fn new(config: &Config) -> ProgressSink {
        let tty = std::io::stderr().is_terminal();
        ProgressSink {
            multi: (tty && !config.quiet).then(indicatif::MultiProgress::new),
            quiet: config.quiet,
        }
    }

    /// A reporter for one host.
    pub fn host(&self, host: &str) -> Box<dyn Fn(&str) + Send + Sync> {
        let host = host.to_string();
        match &self.multi {
            Some(m) => {
                let bar = m.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_prefix(host);
                bar.enable_steady_tick(Duration::from_millis(120));
                Box::new(move |msg: &str| bar.set_message(msg.to_string()))
            }
            None if self.quiet => Box::new(|_: &str| {}),
            None => Box::new(move |msg: &str| eprintln!("{host}: {msg}")),
        }
    }

    pub fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

fn confirm(config: &Config, question: &str) -> Result<bool, Exit> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            config,
            "stdin is not a terminal, so nobody can confirm: pass --yes to apply without asking",
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

pub fn run_apply(config: &Config, args: &ApplyArgs) -> Exit {
    if matches!(config.format, Format::Markdown | Format::Html) {
        return fail(
            config,
            "--format markdown and html are for `fleetpin audit`; use table or json",
        );
    }
    let loaded = match crate::app::load_rev_or_report(config, args.rev.as_deref()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let saved: Option<PlanDoc> = match &args.plan {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<PlanDoc>(&t).map_err(|e| e.to_string()))
        {
            Ok(doc) if doc.format == PLAN_FORMAT => Some(doc),
            Ok(doc) => {
                return fail(
                    config,
                    &format!("{}: unknown plan format `{}`", path.display(), doc.format),
                );
            }
            Err(e) => {
                return fail(
                    config,
                    &format!("cannot read the plan {}: {e}", path.display()),
                );
            }
        },
    };
    if let Some(doc) = &saved
        && (doc.environment != args.env || doc.platform != loaded.manifest.platform)
    {
        return fail(
            config,
            &format!(
                "the plan is for {} {}, not {} {}",
                doc.platform, doc.environment, loaded.manifest.platform, args.env
            ),
        );
    }
    let rt = runtime();
    let prepared = match rt.block_on(prepare(config, &loaded, &args.env, &args.select)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let commit = source_commit(&loaded);
    let doc = plan_doc(
        &loaded,
        &args.env,
        commit.as_deref().unwrap_or("uncommitted"),
        &prepared,
    );
    let pending = match &saved {
        Some(s) => s.pending(),
        None => {
            doc.pending()
                - doc
                    .hosts
                    .iter()
                    .flat_map(|h| &h.changes)
                    .filter(|c| c.kind == ChangeKind::RemoveOrphan && !args.prune)
                    .count()
        }
    };
    let json = config.format == Format::Json;
    if !json && !config.quiet {
        print!(
            "{}",
            render::plan(
                saved.as_ref().unwrap_or(&doc),
                config.verbose > 0,
                config.out
            )
        );
    }
    if pending == 0 {
        let reports: Vec<HostReport> = prepared
            .iter()
            .map(|p| {
                let mut r =
                    HostReport::new(&p.host.name, &p.host.endpoint(), HostStatus::Unchanged);
                if let Some(e) = &p.error {
                    r.status = HostStatus::Unreachable;
                    r.error = Some(e.clone());
                }
                r
            })
            .collect();
        if !json && !config.quiet {
            println!("Nothing to do: the selected hosts already run what the manifest pins.");
        }
        return finish(config, &args.env, reports, doc.has_errors());
    }
    if !args.yes {
        match confirm(
            config,
            &format!("Apply {pending} change(s) to {}?", args.env),
        ) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("Nothing applied.");
                return Exit::Failure;
            }
            Err(code) => return code,
        }
    }
    let stamp = stamp(&loaded, config.quiet, commit);
    let env = &loaded.manifest.environments[&args.env];
    let parallel = args
        .max_parallel
        .or(env.max_parallel)
        .map(|n| n as usize)
        .unwrap_or(prepared.len())
        .max(1);
    let opts = apply::Options {
        retain: loaded.manifest.retain,
        prune: args.prune,
        stamp,
        health_timeout: args
            .health_timeout
            .map(Duration::from_secs)
            .unwrap_or(apply::DEFAULT_HEALTH_TIMEOUT),
        grace: apply::DEFAULT_GRACE,
    };
    let sink = ProgressSink::new(config);
    let reports = rt.block_on(converge(
        &loaded.manifest.platform,
        &args.env,
        prepared,
        saved.as_ref(),
        &opts,
        &args.select,
        parallel,
        &sink,
    ));
    sink.clear();
    finish(config, &args.env, reports, false)
}

fn finish(config: &Config, env: &str, reports: Vec<HostReport>, had_errors: bool) -> Exit {
    let failed = had_errors
        || reports.iter().any(|r| {
            !matches!(r.status, HostStatus::Converged | HostStatus::Unchanged)
                || r.actions.iter().any(|a| a.kind == ChangeKind::Conflict)
        });
    if config.format == Format::Json {
        let doc = serde_json::json!({"environment": env, "ok": !failed, "hosts": reports});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a report serialises")
        );
    } else if !config.quiet || failed {
        print!("{}", render::apply_report(&reports, config.out));
    }
    if crate::interrupt::interrupted() {
        Exit::Interrupted
    } else if failed {
        Exit::Failure
    } else {
        Exit::Success
    }
}

#[allow(clippy::too_many_arguments)]
async fn converge(
    platform: &str,
    env: &str,
    prepared: Vec<Prepared>,
    saved: Option<&PlanDoc>,
    opts: &apply::Options,
    select: &Selection,
    parallel: usize,
    sink: &ProgressSink,
) -> Vec<HostReport> {
    crate::interrupt::install();
    let stop = Arc::new(AtomicBool::new(false));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for p in prepared {
        let saved_host =
            saved.and_then(|s| s.hosts.iter().find(|h| h.host == p.host.name).cloned());
        let progress = sink.host(&p.host.name);
        let stop = stop.clone();
        let semaphore = semaphore.clone();
        let platform = platform.to_string();
        let env = env.to_string();
        let opts = opts.clone();
        let select_services = select.services.clone();
        let with_plan = saved.is_some();
        tasks.push(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            if crate::interrupt::interrupted() {
                let mut r =
                    HostReport::new(&p.host.name, &p.host.endpoint(), HostStatus::Interrupted);
                r.error = Some("not started: interrupted".into());
                return r;
            }
            if stop.load(Ordering::SeqCst) {
                let mut r = HostReport::new(&p.host.name, &p.host.endpoint(), HostStatus::Skipped);
                r.error = Some("not started: an earlier host failed".into());
                return r;
            }
            // A host already unreachable when planned is reported but does not stop the others:
            // nothing was attempted on it. A failure during a change does.
            let known_dead = p.engine.is_none();
            let r = converge_host(
                &platform,
                &env,
                p,
                saved_host,
                with_plan,
                &opts,
                &select_services,
                &*progress,
            )
            .await;
            if !known_dead && !matches!(r.status, HostStatus::Converged | HostStatus::Unchanged) {
                stop.store(true, Ordering::SeqCst);
            }
            progress("done");
            r
        });
    }
    futures::future::join_all(tasks).await
}

#[allow(clippy::too_many_arguments)]
async fn converge_host(
    platform: &str,
    env: &str,
    p: Prepared,
    saved: Option<PlanHost>,
    with_plan: bool,
    opts: &apply::Options,
    select_services: &[String],
    progress: &(dyn Fn(&str) + Send + Sync),
) -> HostReport {
    let endpoint = p.host.endpoint();
    let Some(engine) = p.engine.clone() else {
        let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Unreachable);
        r.error = p.error.clone();
        return r;
    };
    if with_plan && saved.is_none() {
        let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Skipped);
        r.error = Some("not in the saved plan".into());
        return r;
    }
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
            return r;
        }
    };
    // Observe again under the lock: what was planned may have changed meanwhile.
    let report = async {
        let list = match engine.list_containers(&plan::prefix(platform, env)).await {
            Ok(l) => l,
            Err(e) => {
                let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Unreachable);
                r.error = Some(e.to_string());
                return r;
            }
        };
        let mut view = plan::classify(platform, env, &list);
        let mut repaired = crate::repair::Repaired::default();
        if saved.as_ref().is_some_and(|s| s.fingerprint.as_deref() != Some(plan::fingerprint(&list).as_str())) {
            let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Refused);
            r.error = Some("the host changed since the plan was made; run `fleetpin plan` again".into());
            return r;
        }
        match crate::repair::repair(&*engine, platform, env, &view, opts.health_timeout, progress).await {
            Err(e) => {
                let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Failed);
                r.error = Some(format!("repairing what an interrupted run left: {e}"));
                return r;
            }
            Ok(done) if done.acted() => {
                repaired = done;
                match engine.list_containers(&plan::prefix(platform, env)).await {
                    Ok(l) => view = plan::classify(platform, env, &l),
                    Err(e) => {
                        let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Unreachable);
                        r.error = Some(e.to_string());
                        r.repaired = repaired.notes;
                        return r;
                    }
                }
                if saved.is_some() {
                    let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Refused);
                    r.error = Some("an interrupted run was repaired on this host; run `fleetpin plan` again".into());
                    r.repaired = repaired.notes;
                    return r;
                }
            }
            Ok(_) => {}
        }
        let changes = match &saved {
            Some(s) => {
                if s.fingerprint.as_deref() != Some(plan::fingerprint(&list).as_str()) {
                    let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Refused);
                    r.error = Some(
                        "the host changed since the plan was made; run `fleetpin plan` again".into(),
                    );
                    return r;
                }
                // The manifest must still describe what the plan was made from.
                for c in &s.changes {
                    if let Some(h) = &c.spec_hash
                        && !p.desired.iter().any(|r| r.service == c.service && &r.spec_hash == h)
                    {
                        let mut r = HostReport::new(&p.host.name, &endpoint, HostStatus::Refused);
                        r.error = Some(format!(
                            "the manifest changed since the plan was made ({} differs); run `fleetpin plan` again",
                            c.service
                        ));
                        return r;
                    }
                }
                s.changes.clone()
            }
            None => {
                let sel = Selection {
                    services: select_services.to_vec(),
                    hosts: vec![],
                };
                filter_orphans(plan::plan_host(&p.desired, &view), &sel)
            }
        };
        let mut r = apply::execute(&*engine, &p.host.name, &p.desired, &changes, &view, opts, progress).await;
        if repaired.acted() && r.status == HostStatus::Unchanged {
            r.status = HostStatus::Converged;
        }
        r.repaired = repaired.notes;
        r
    }
    .await;
    lock::release(&*engine, &lock_id).await;
    report
}

pub fn run_unlock(config: &Config, env: &str, only: &[String]) -> Exit {
    let loaded = match crate::app::load_or_report(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let hosts = match fleet::hosts(&loaded, env, only) {
        Ok(h) => h,
        Err(e) => return fail(config, &e),
    };
    let platform = loaded.manifest.platform.clone();
    let results = runtime().block_on(async {
        let futures = hosts.into_iter().map(|h| {
            let platform = platform.clone();
            async move {
                let r = async {
                    let engine = DockerEngine::connect(&h.target, config.connect_timeout).await?;
                    lock::force_release(&engine, &platform, env).await
                }
                .await;
                (h.name, r)
            }
        });
        futures::future::join_all(futures).await
    });
    let mut failed = false;
    for (host, r) in results {
        match r {
            Ok(Some(owner)) => println!("{host}: removed the lock held by {owner}"),
            Ok(None) => println!("{host}: not locked"),
            Err(e) => {
                failed = true;
                eprintln!("{host}: {e}");
            }
        }
    }
    if failed { Exit::Failure } else { Exit::Success }
}
