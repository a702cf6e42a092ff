//! Preparing a run over an environment, shared by plan, apply, rollback, promote and audit:
//! resolve the manifest for every selected host (a bad manifest or a missing env_file stops here,
//! before any host is contacted), observe all hosts at once, and plan each with the pure planner.
//! Also the saved plan's document and who and what a deploy records.

use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::host::fleet::{self, HostRef};
use crate::manifest::Loaded;
use crate::manifest::resolve::{self, ResolvedService};
use crate::ops::context::Op;
use crate::ops::error::{OpError, OpResult as Result};
use crate::ops::secrets::{self, SecretFiles};
use crate::plan;
pub use crate::plan::doc::{PLAN_FORMAT, PlanDoc, PlanHost, Selection, filter_orphans};
use crate::plan::labels::DeployStamp;
use crate::plan::view::{self, HostView};
use crate::secrets::Keys;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::ops::prepared::Prepared;

/// The manifest at `file`, or at git revision `rev` of it (read from git, not checked out;
/// relative env_file and tls paths still come from the working tree).
pub fn load(file: &std::path::Path, rev: Option<&str>) -> Result<Loaded> {
    use crate::manifest::diagnostics::{ManifestError, Problem};
    let Some(rev) = rev else {
        return Ok(crate::manifest::load(file)?);
    };
    let display = format!("{}@{rev}", file.display());
    let (text, commit) = crate::git::read_at_rev(file, rev).map_err(|e| {
        ManifestError::single(
            &display,
            String::new(),
            Problem::new(Default::default(), e.to_string()),
        )
    })?;
    Ok(crate::manifest::from_text(
        &display,
        file,
        text,
        Some(commit),
    )?)
}

/// The commit a deploy comes from: the `--rev` commit, else HEAD when the file is committed and
/// unchanged, else none (`uncommitted`).
pub fn source_commit(loaded: &Loaded) -> Option<String> {
    loaded
        .rev_commit
        .clone()
        .or_else(|| crate::git::manifest_commit(&loaded.path))
}

/// Who deploys (the operation's actor), from which commit, now. With `warn`, says when the
/// manifest is not committed.
pub fn stamp(op: &Op, loaded: &Loaded, commit: Option<String>, warn: bool) -> DeployStamp {
    let commit = commit.unwrap_or_else(|| {
        if warn {
            op.warn(format!(
                "{} has uncommitted changes (or is not in git): containers will be labelled commit=uncommitted",
                loaded.path.display()
            ));
        }
        "uncommitted".into()
    });
    DeployStamp {
        commit,
        deployed_at: crate::clock::rfc3339(SystemTime::now()),
        deployed_by: op.ctx.actor.id.clone(),
    }
}

/// The environment `env` of the manifest, or an error naming those there are.
pub fn environment<'a>(loaded: &'a Loaded, env: &str) -> Result<&'a crate::manifest::Environment> {
    Ok(fleet::environment(loaded, env)?)
}

/// Each `-s` service is pinned in `env`; `why` completes "`x` is not pinned in env, …".
pub fn check_pinned(
    env_name: &str,
    env: &crate::manifest::Environment,
    services: &[String],
    why: &'static str,
) -> Result<()> {
    match services.iter().find(|s| !env.versions.contains_key(*s)) {
        Some(s) => Err(OpError::not_pinned(env_name, env, s, why)),
        None => Ok(()),
    }
}

/// `-s` names a service of the manifest.
pub fn check_services(loaded: &Loaded, select: &Selection) -> Result<()> {
    for s in &select.services {
        if !loaded.manifest.services.contains_key(s) {
            return Err(OpError::Invalid(format!(
                "there is no service `{s}` in the manifest (services: {})",
                loaded
                    .manifest
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// Resolves every host; with `lenient`, an unreadable env_file or SOPS file resolves as empty and
/// its services are recorded as unchecked (audit never creates containers, and secrets are often
/// not at hand).
fn resolve_hosts(
    loaded: &Loaded,
    hosts: Vec<HostRef>,
    select: &Selection,
    lenient: bool,
    keys: &Keys,
) -> Result<Vec<Wanted>> {
    // All hosts are of one environment: each service is resolved once (`resolve_hosts`).
    let Some(env) = hosts.first().map(|h| h.environment.clone()) else {
        return Ok(vec![]);
    };
    let mut files = SecretFiles::new(loaded, keys, secrets::policy(loaded, &env));
    if lenient {
        files = files.lenient();
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let lists = resolve::resolve_hosts(&loaded.manifest, &env, &names, &files)
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    let bad = files.unreadable();
    lists
        .into_iter()
        .zip(hosts)
        .map(|(list, host)| {
            let unchecked = list
                .iter()
                .filter(|r| {
                    secrets::files_of(&loaded.manifest, &env, &r.service)
                        .iter()
                        .any(|f| bad.contains(*f))
                })
                .map(|r| r.service.clone())
                .collect();
            Ok(Wanted {
                host,
                desired: list
                    .into_iter()
                    .filter(|r| select.services.is_empty() || select.services.contains(&r.service))
                    .collect(),
                unchecked,
            })
        })
        .collect()
}

/// Resolves (no host contacted on error), observes and plans every selected host of `env`.
pub async fn prepare(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    keys: &Keys,
) -> Result<Vec<Prepared>> {
    prepare_with(loaded, env, select, connect_timeout, false, keys).await
}

/// `prepare` for audit, which never creates containers: a missing env_file reads as empty, and
/// no changes are planned (`changes` stays empty).
pub async fn prepare_lenient(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    keys: &Keys,
) -> Result<Vec<Prepared>> {
    prepare_with(loaded, env, select, connect_timeout, true, keys).await
}

async fn prepare_with(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    lenient: bool,
    keys: &Keys,
) -> Result<Vec<Prepared>> {
    prepare_on(
        &fleet::Docker,
        loaded,
        env,
        select,
        connect_timeout,
        lenient,
        keys,
    )
    .await
}

/// `prepare` for a plan whose secrets cannot be opened here (a console without that
/// environment's key): unreadable secret files read as empty, their services are recorded as
/// unchecked, and the changes are planned from everything else (the spec hash holds secret
/// names, not values).
pub async fn prepare_unchecked(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    keys: &Keys,
) -> Result<Vec<Prepared>> {
    prepare_planned(
        &fleet::Docker,
        loaded,
        env,
        select,
        connect_timeout,
        (true, true),
        keys,
    )
    .await
}

/// `prepare` with the hosts reached through `connect` (`lenient`: as for audit).
pub async fn prepare_on<C: fleet::Connect>(
    connect: &C,
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    lenient: bool,
    keys: &Keys,
) -> Result<Vec<Prepared<C::Engine>>> {
    prepare_planned(
        connect,
        loaded,
        env,
        select,
        connect_timeout,
        (lenient, !lenient),
        keys,
    )
    .await
}

/// `(lenient, plan)`: secrets read leniently; changes planned.
async fn prepare_planned<C: fleet::Connect>(
    connect: &C,
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    connect_timeout: Duration,
    (lenient, plan): (bool, bool),
    keys: &Keys,
) -> Result<Vec<Prepared<C::Engine>>> {
    let wanted = wanted(loaded, env, select, lenient, keys)?;
    let prefix = view::prefix(&loaded.manifest.platform, env);
    let hosts = wanted.iter().map(|w| w.host.clone()).collect();
    let observed = fleet::observe_all_on(connect, hosts, &prefix, connect_timeout).await;
    let mut out = Vec::with_capacity(wanted.len());
    for (w, o) in wanted.into_iter().zip(observed) {
        out.push(prepared(loaded, select, w, o.result, plan).await);
    }
    Ok(out)
}

/// What the manifest wants on one selected host, before the host is contacted.
pub struct Wanted {
    pub host: HostRef,
    pub desired: Vec<Arc<ResolvedService>>,
    /// Services whose env_file could not be read (with `lenient`).
    pub unchecked: BTreeSet<String>,
}

/// Resolves every selected host of `env`; with `lenient` (audit), a missing env_file reads as
/// empty and its services are recorded as unchecked.
pub fn wanted(
    loaded: &Loaded,
    env: &str,
    select: &Selection,
    lenient: bool,
    keys: &Keys,
) -> Result<Vec<Wanted>> {
    let hosts = fleet::hosts(loaded, env, &select.hosts)?;
    check_services(loaded, select)?;
    resolve_hosts(loaded, hosts, select, lenient, keys)
}

/// One host, as observed; with `plan`, its changes planned (audit judges each row itself, in
/// `ops::audit::status_of`).
pub async fn prepared<E: Engine>(
    loaded: &Loaded,
    select: &Selection,
    w: Wanted,
    observed: std::result::Result<(Arc<E>, Vec<ContainerSummary>), EngineError>,
    plan: bool,
) -> Prepared<E> {
    let Wanted {
        host,
        desired,
        unchecked,
    } = w;
    match observed {
        Ok((engine, list)) => {
            let fingerprint = plan::fingerprint(&list);
            let mut view = view::classify_owned(&loaded.manifest.platform, &host.environment, list);
            // A service whose secrets could not be read (lenient) has no values to compare.
            let checked: Vec<_> = desired
                .iter()
                .filter(|r| !unchecked.contains(&r.service))
                .cloned()
                .collect();
            view.stale_secrets = crate::host::secrets::stale(&*engine, &checked, &view).await;
            view.untrusted = crate::host::crashed::untrusted(&*engine, &desired, &view).await;
            let changes = if plan {
                filter_orphans(plan::plan_host(&desired, &view), select)
            } else {
                vec![]
            };
            Prepared {
                host,
                desired,
                engine: Some(engine),
                error: None,
                fingerprint: Some(fingerprint),
                changes,
                view,
                unchecked,
            }
        }
        Err(e) => Prepared {
            host,
            desired,
            engine: None,
            error: Some(format!("unreachable: {e}")),
            fingerprint: None,
            changes: vec![],
            view: HostView::default(),
            unchecked,
        },
    }
}

pub fn plan_doc<E>(loaded: &Loaded, env: &str, commit: &str, prepared: &[Prepared<E>]) -> PlanDoc {
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
        created_at: crate::clock::rfc3339(SystemTime::now()),
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
        held: None,
        secrets_unchecked: None,
    }
}
