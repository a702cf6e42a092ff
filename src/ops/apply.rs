//! `apply`: converge an environment's selected hosts to the manifest (or to exactly a saved
//! plan), through the one host runner; on a Swarm environment, create or update its services and
//! wait until Swarm completed each update. Two steps, so that a face can show the plan and ask
//! before anything changes: `prepare` (resolve, observe, plan — nothing touched) and `run` (the
//! hooks, the work, the webhooks), which applies exactly the plan it is given.

use crate::engine::Engine;
use crate::engine::docker::DockerEngine;
use crate::engine::swarm::DockerSwarm;
use crate::host::converge::Apply;
use crate::host::fleet::{Connect, Docker};
use crate::host::report::{HostReport, HostStatus};
use crate::manifest::Loaded;
use crate::ops::around;
use crate::ops::context::Ctx;
use crate::ops::deploy::{self, PLAN_FORMAT, PlanDoc, Prepared, Selection};
use crate::ops::error::{OpError, OpResult};
use crate::ops::event::{Event, Outcome};
use crate::ops::run::RunOptions;
use crate::ops::swarm::{self, SwarmPlan, SwarmResult};
use crate::plan::ChangeKind;
use serde::Serialize;
use std::path::PathBuf;

/// What to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyInput {
    pub env: String,
    pub select: Selection,
    /// Apply exactly this saved plan (`plan -o`), refused if a host changed since.
    pub saved: Option<PathBuf>,
    /// Remove the environment's containers the manifest no longer has.
    pub prune: bool,
    pub run: RunOptions,
    /// `--override-window "REASON"`: deploy although a deploy window holds changes.
    pub override_window: Option<String>,
}

/// What `run` will do, for the face to show and confirm.
pub enum ApplyPlan<E = DockerEngine> {
    Hosts(Box<HostsPlan<E>>),
    Swarm(Box<SwarmApply>),
}

pub struct HostsPlan<E = DockerEngine> {
    pub input: ApplyInput,
    pub prepared: Vec<Prepared<E>>,
    /// The plan as observed now.
    pub doc: PlanDoc,
    /// The saved plan being applied, if any.
    pub saved: Option<PlanDoc>,
    /// The commit deployed (None: uncommitted).
    pub commit: Option<String>,
    pending: usize,
    /// A deploy window overridden: the line recorded in the event and the notification.
    pub window: Option<String>,
}

impl<E> HostsPlan<E> {
    /// The plan to show: the saved one when applying one.
    pub fn shown(&self) -> &PlanDoc {
        self.saved.as_ref().unwrap_or(&self.doc)
    }
}

pub struct SwarmApply {
    pub input: ApplyInput,
    pub plan: SwarmPlan,
    engine: DockerSwarm,
    /// Said before asking: what Swarm ignores (`depends_on`).
    pub warnings: Vec<String>,
    /// Moving from plain hosts: the engine of each host in `plan.retire`.
    old: Vec<std::sync::Arc<DockerEngine>>,
}

impl<E> ApplyPlan<E> {
    /// Changes to make (0: nothing to do, nothing to confirm).
    pub fn pending(&self) -> usize {
        match self {
            ApplyPlan::Hosts(h) => h.pending,
            ApplyPlan::Swarm(s) => s.plan.pending(),
        }
    }

    pub fn environment(&self) -> &str {
        match self {
            ApplyPlan::Hosts(h) => &h.input.env,
            ApplyPlan::Swarm(s) => &s.input.env,
        }
    }
}

/// How an apply ended.
pub enum ApplyOutcome {
    Hosts(HostsApplied),
    Swarm(SwarmApplied),
}

/// The JSON `apply --format json` prints for plain hosts.
#[derive(Debug, Clone, Serialize)]
pub struct HostsApplied {
    pub environment: String,
    pub ok: bool,
    pub hosts: Vec<HostReport>,
    pub interrupted: bool,
    /// Nothing was pending: no host was touched.
    #[serde(skip)]
    pub nothing_to_do: bool,
}

/// The JSON `apply --format json` prints for a Swarm environment.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmApplied {
    pub environment: String,
    pub ok: bool,
    pub services: Vec<SwarmResult>,
    /// Moving from plain hosts: what was retired, or undone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub nothing_to_do: bool,
    #[serde(skip)]
    pub interrupted: bool,
}

impl ApplyOutcome {
    pub fn failed(&self) -> bool {
        match self {
            ApplyOutcome::Hosts(h) => !h.ok,
            ApplyOutcome::Swarm(s) => !s.ok,
        }
    }

    pub fn interrupted(&self) -> bool {
        match self {
            ApplyOutcome::Hosts(h) => h.interrupted,
            ApplyOutcome::Swarm(s) => s.interrupted,
        }
    }
}

fn read_plan(path: &std::path::Path) -> OpResult<PlanDoc> {
    let file = |reason: String| OpError::File {
        what: "read the plan",
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
    let doc = serde_json::from_str::<PlanDoc>(&text).map_err(|e| file(e.to_string()))?;
    if doc.format != PLAN_FORMAT {
        return Err(OpError::Invalid(format!(
            "{}: unknown plan format `{}`",
            path.display(),
            doc.format
        )));
    }
    Ok(doc)
}

/// Resolves, observes and plans; changes nothing.
pub async fn prepare(ctx: &Ctx, loaded: &Loaded, input: ApplyInput) -> OpResult<ApplyPlan> {
    prepare_on(ctx, &Docker, loaded, input).await
}

/// `prepare`, the hosts reached through `connect`.
pub async fn prepare_on<C: Connect>(
    ctx: &Ctx,
    connect: &C,
    loaded: &Loaded,
    input: ApplyInput,
) -> OpResult<ApplyPlan<C::Engine>> {
    let env = deploy::environment(loaded, &input.env)?;
    if env.pull {
        return Err(OpError::Refused(format!(
            "environment `{}` is followed by pull agents (`pull: true`): a push apply would race them; commit the pins and `git push` — each host's `fleetpin agent` converges it (see docs/agent.md)",
            input.env
        )));
    }
    crate::ops::secrets::warn_plain_committed(ctx, loaded, "apply", &input.env);
    if env.is_swarm() {
        return prepare_swarm(ctx, loaded, input).await;
    }
    let saved = input.saved.as_deref().map(read_plan).transpose()?;
    if let Some(doc) = &saved
        && (doc.environment != input.env || doc.platform != loaded.manifest.platform)
    {
        return Err(OpError::Invalid(format!(
            "the plan is for {} {}, not {} {}",
            doc.platform, doc.environment, loaded.manifest.platform, input.env
        )));
    }
    let prepared = deploy::prepare_on(
        connect,
        loaded,
        &input.env,
        &input.select,
        ctx.connect_timeout,
        false,
        &ctx.keys,
    )
    .await?;
    crate::ops::moving::check_back_from_swarm(ctx, loaded, &input.env, &prepared).await?;
    let commit = deploy::source_commit(loaded);
    // Who may change this environment: checked before any host is touched.
    let running: std::collections::BTreeSet<String> = prepared
        .iter()
        .flat_map(|p| p.view.current.values())
        .filter_map(|c| c.labels.get(crate::plan::labels::COMMIT).cloned())
        .filter(|c| c != "uncommitted")
        .collect();
    let signer = crate::ops::trust::check_deploy(loaded, &input.env, commit.as_deref(), &running)?;
    if let (Some(_), Some(doc), Some(commit)) = (&signer, &saved, &commit)
        && &doc.commit != commit
    {
        return Err(OpError::Refused(format!(
            "refused: the plan was made from {} and HEAD is {}: `{}` deploys only what a signed commit holds; plan again",
            crate::git::short_id(&doc.commit),
            crate::git::short_id(commit),
            input.env
        )));
    }
    let doc = deploy::plan_doc(
        loaded,
        &input.env,
        commit.as_deref().unwrap_or("uncommitted"),
        &prepared,
    );
    let orphans_kept = doc
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .filter(|c| c.kind == ChangeKind::RemoveOrphan && !input.prune)
        .count();
    let pending = match &saved {
        Some(s) => s.pending(),
        None => doc.pending() - orphans_kept,
    };
    // A deploy window holds changes, by the hosts' clock: nothing to do is never held.
    let window = if pending > 0 {
        let engines = prepared.iter().filter_map(|p| p.engine.as_deref());
        let hold = crate::ops::windows::hold(loaded, &input.env, engines).await;
        crate::ops::windows::gate(
            "apply",
            &input.env,
            hold.as_ref(),
            input.override_window.as_deref(),
        )?
    } else {
        None
    };
    Ok(ApplyPlan::Hosts(Box::new(HostsPlan {
        input,
        prepared,
        doc,
        saved,
        commit,
        pending,
        window,
    })))
}

async fn prepare_swarm<E>(ctx: &Ctx, loaded: &Loaded, input: ApplyInput) -> OpResult<ApplyPlan<E>> {
    if input.saved.is_some() || input.prune {
        return Err(OpError::Invalid(format!(
            "--plan and --prune are for plain-host environments; `{}` is a Swarm cluster",
            input.env
        )));
    }
    let engine = swarm::connect(loaded, &input.env, ctx.connect_timeout).await?;
    let mut plan = swarm::plan(loaded, &input.env, &input.select, &engine, &ctx.keys).await?;
    let (retire, old) = crate::ops::moving::retirements(ctx, loaded, &input.env, &plan)
        .await?
        .into_iter()
        .unzip();
    plan.retire = retire;
    // Who may change this environment: the services' commits say what runs now.
    let running: std::collections::BTreeSet<String> = plan
        .changes
        .iter()
        .filter_map(|c| c.current.as_ref())
        .filter_map(|s| s.labels.get(crate::plan::labels::COMMIT).cloned())
        .filter(|c| c != "uncommitted")
        .collect();
    crate::ops::trust::check_deploy(
        loaded,
        &input.env,
        deploy::source_commit(loaded).as_deref(),
        &running,
    )?;
    // By the manager's clock, as the Swarm lock is judged (this machine's if it cannot say).
    if plan.pending() > 0 {
        use crate::engine::swarm::SwarmEngine;
        let now = engine
            .clock()
            .await
            .unwrap_or_else(|_| std::time::SystemTime::now());
        let hold = crate::ops::windows::hold_at(loaded, &input.env, now);
        if let Some(w) = crate::ops::windows::gate(
            "apply",
            &input.env,
            hold.as_ref(),
            input.override_window.as_deref(),
        )? {
            ctx.op("apply", &input.env).warn(w);
        }
    }
    let warnings = plan
        .changes
        .iter()
        .filter(|c| !c.resolved.depends_on.is_empty())
        .map(|c| {
            format!(
                "`depends_on` of {} is ignored in Swarm environment {}: Swarm starts services in no particular order",
                c.service, input.env
            )
        })
        .collect();
    Ok(ApplyPlan::Swarm(Box::new(SwarmApply {
        input,
        plan,
        engine,
        warnings,
        old,
    })))
}

/// Applies exactly `plan`: the `pre_apply` hook (a failure stops here), the work through the
/// runner (or Swarm), then `post_apply` or `on_failure` and the webhooks.
pub async fn run<E: Engine + 'static>(
    ctx: &Ctx,
    loaded: &Loaded,
    plan: ApplyPlan<E>,
) -> OpResult<ApplyOutcome> {
    match plan {
        ApplyPlan::Hosts(h) => run_hosts(ctx, loaded, *h).await.map(ApplyOutcome::Hosts),
        ApplyPlan::Swarm(s) => run_swarm(ctx, loaded, *s).await.map(ApplyOutcome::Swarm),
    }
}

async fn run_hosts<E: Engine + 'static>(
    ctx: &Ctx,
    loaded: &Loaded,
    plan: HostsPlan<E>,
) -> OpResult<HostsApplied> {
    let HostsPlan {
        input,
        prepared,
        doc,
        saved,
        commit,
        pending,
        window,
    } = plan;
    let op = ctx.op("apply", &input.env);
    if pending == 0 {
        let hosts = prepared
            .iter()
            .map(|p| match &p.error {
                Some(e) => HostReport::with_error(
                    &p.host.name,
                    &p.host.endpoint(),
                    HostStatus::Unreachable,
                    e.clone(),
                ),
                None => HostReport::new(&p.host.name, &p.host.endpoint(), HostStatus::Unchanged),
            })
            .collect();
        return Ok(HostsApplied {
            environment: input.env,
            ok: !doc.has_errors(),
            hosts,
            interrupted: ctx.cancelled(),
            nothing_to_do: true,
        });
    }
    let stamp = deploy::stamp(&op, loaded, commit, true);
    let mut event = Event::new(
        "apply",
        &loaded.manifest.platform,
        &input.env,
        &stamp.commit,
        &stamp.deployed_by,
    )
    .planned_apply(saved.as_ref().unwrap_or(&doc), input.prune);
    if let Some(w) = &window {
        op.warn(w.clone());
        event.window_override = Some(w.clone());
    }
    around::pre_hook(&op, loaded, &event).await?;
    let settings = input
        .run
        .settings(&op, loaded, &input.env, prepared.len(), stamp);
    let work = Apply {
        saved,
        select: input.select.clone(),
        prune: input.prune,
    };
    let prune = input.prune;
    let reports =
        crate::ops::run::on_hosts(&op, &prepared, &settings, &work, &|p| p.has_changes(prune))
            .await;
    let failed = reports.iter().any(|r| !r.ok());
    let interrupted = ctx.cancelled();
    around::after_work(
        &op,
        loaded,
        &event.ran(&reports, Outcome::of_run(failed, interrupted)),
    )
    .await;
    Ok(HostsApplied {
        environment: input.env,
        ok: !failed,
        hosts: reports,
        interrupted,
        nothing_to_do: false,
    })
}

async fn run_swarm(ctx: &Ctx, loaded: &Loaded, s: SwarmApply) -> OpResult<SwarmApplied> {
    let SwarmApply {
        input,
        plan,
        engine,
        warnings: _,
        old,
    } = s;
    if plan.pending() == 0 {
        return Ok(SwarmApplied {
            environment: input.env,
            ok: true,
            services: vec![],
            nothing_to_do: true,
            interrupted: false,
            notes: vec![],
        });
    }
    let op = ctx.op("apply", &input.env);
    let (results, notes) = if plan.retire.is_empty() {
        let results = crate::ops::run::on_swarm(&op, loaded, &plan, &engine, &input.run).await?;
        (results, vec![])
    } else {
        crate::ops::moving::run_move(&op, loaded, &plan, &engine, &old, &input.run).await?
    };
    let failed = results.iter().any(|r| !r.ok) || results.len() < plan.pending();
    Ok(SwarmApplied {
        environment: input.env,
        ok: !failed,
        services: results,
        nothing_to_do: false,
        interrupted: ctx.cancelled(),
        notes,
    })
}
