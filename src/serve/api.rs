//! `/api/v1/…`: each handler extracts, checks the caller's right on the environment, calls the
//! operation the command line calls, and answers its typed outcome as the JSON document
//! `--format json` prints. Actions run in the background as operations whose events can be
//! followed; errors answer `{"error": …}` with the CLI's own words and a status that says
//! whose fault it is.

use super::app::{App, Caller};
use super::cache::{Reading, View};
use super::error::json;
use super::operations::{Operation, Streamed};
use super::reference::Held;
use super::rights::Right;
use crate::ops::context::{Actor, Ctx};
use crate::ops::error::OpError;
use crate::plan::doc::{PlanDoc, Selection};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub use super::error::{ApiError, error};

type Result<T> = std::result::Result<T, ApiError>;

/// The context of an operation started by `caller`, opening secrets with `keys`: the person (or token) on the lock, the
/// labels and the commit's author, with a `Fleetpin-Actor:` trailer; events to `sink`.
fn context(
    app: &App,
    caller: &Caller,
    keys: Arc<crate::secrets::Keys>,
    sink: Arc<dyn crate::ops::context::Sink>,
) -> Ctx {
    let p = &caller.principal;
    let email = if p.id.contains('@') {
        p.id.clone()
    } else {
        format!("{}@fleetpin.invalid", p.id.replace(':', "-"))
    };
    let actor = Actor {
        id: p.id.clone(),
        author: Some(crate::git::Author {
            name: p.id.clone(),
            email,
        }),
        subject: Some(p.subject.clone()),
    };
    Ctx::new(
        actor,
        crate::cancel::Cancel::new(),
        sink,
        app.connect_timeout,
    )
    .with_keys(keys)
    .with_console_hooks()
}

fn require(caller: &Caller, right: Right, env: &str) -> Result<()> {
    if caller.principal.allows(right, env) {
        Ok(())
    } else {
        Err(ApiError::forbidden(right, env))
    }
}

/// `caller` holds `right` on `env`, and the environment exists: else 403, or 404 in the CLI's
/// words naming only the environments the caller may view. The right is checked first, so an
/// environment's existence (and the names of the others) is told only to whom may see it.
pub(super) fn known(
    loaded: &crate::manifest::Loaded,
    caller: &Caller,
    right: Right,
    env: &str,
) -> Result<()> {
    require(caller, right, env)?;
    if loaded.manifest.environments.contains_key(env) {
        return Ok(());
    }
    let e = crate::manifest::resolve::UnknownEnvironment {
        name: env.to_string(),
        known: visible(loaded, caller),
        file: None,
    };
    Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
}

/// The environments `caller` may view, in manifest order.
fn visible(loaded: &crate::manifest::Loaded, caller: &Caller) -> Vec<String> {
    loaded
        .manifest
        .environments
        .keys()
        .filter(|e| caller.principal.allows(Right::View, e))
        .cloned()
        .collect()
}

pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

pub async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": caller.principal.id,
            "grants": caller.principal.grants,
            "csrf": caller.session.as_ref().map(|s| s.csrf.clone()),
        }),
    )
}

#[derive(Serialize)]
struct EnvironmentDoc {
    name: String,
    kind: &'static str,
    hosts: Vec<String>,
    pins: std::collections::BTreeMap<String, String>,
    /// What the caller may do there (no action where the secrets are not checked).
    rights: Vec<Right>,
    /// Why the console cannot open this environment's secrets, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets_unchecked: Option<String>,
}

pub async fn environments(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response> {
    let loaded = app.load()?;
    let docs: Vec<EnvironmentDoc> = visible(&loaded, &caller)
        .into_iter()
        .map(|name| {
            let e = &loaded.manifest.environments[&name];
            let unchecked = app.secrets_unchecked(&loaded, &name);
            EnvironmentDoc {
                kind: if e.is_swarm() { "swarm" } else { "hosts" },
                hosts: e.hosts.keys().cloned().collect(),
                pins: e
                    .versions
                    .iter()
                    .map(|(s, p)| (s.clone(), p.value.to_string()))
                    .collect(),
                rights: [Right::View, Right::Deploy, Right::OverrideWindow]
                    .into_iter()
                    .filter(|r| caller.principal.allows(*r, &name))
                    .filter(|r| *r == Right::View || unchecked.is_none())
                    .collect(),
                secrets_unchecked: unchecked,
                name,
            }
        })
        .collect();
    Ok(json(StatusCode::OK, &docs))
}

/// The fleet, as the caller may see it (at most `cache::MAX_AGE` old).
pub async fn fleet_view(app: &App, caller: &Caller) -> Result<View> {
    let (reading, envs) = fleet_reading(app, caller).await?;
    Ok(reading.view(&envs))
}

/// The current reading of the fleet (at most `cache::MAX_AGE` old; the fleet is read if not),
/// and the environments `caller` may view in it.
async fn fleet_reading(app: &App, caller: &Caller) -> Result<(Arc<Reading>, Vec<String>)> {
    let loaded = app.load_shared()?;
    fleet_reading_of(app, caller, loaded).await
}

async fn fleet_reading_of(
    app: &App,
    caller: &Caller,
    loaded: Arc<crate::manifest::Loaded>,
) -> Result<(Arc<Reading>, Vec<String>)> {
    let commit = crate::ops::deploy::source_commit(&loaded).unwrap_or_else(|| "uncommitted".into());
    let ctx = context(
        app,
        caller,
        app.keys.clone(),
        Arc::new(crate::ops::context::Discard),
    );
    let envs = visible(&loaded, caller);
    let reading = app
        .cache
        .get(&commit, || {
            blocking(move || async move {
                crate::ops::audit::audit(&ctx, &loaded, None, true)
                    .await
                    .map_err(ApiError::from)
            })
        })
        .await?;
    Ok((reading, envs))
}

/// The audit answer: `fleet_view` as `json()` writes it, the document written once per
/// reading and set of environments (`Reading::audit_tail`), only its age written per answer.
pub async fn audit(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response> {
    let (reading, envs) = fleet_reading(&app, &caller).await?;
    let tail = reading.audit_tail(&envs).await?;
    let head = super::cache::audit_head(reading.age_seconds());
    Ok(shared(StatusCode::OK, "application/json", [head, tail]))
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    env: Option<String>,
    service: Option<String>,
    limit: Option<usize>,
}

pub async fn history(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response> {
    let loaded = app.load()?;
    if let Some(e) = &q.env {
        known(&loaded, &caller, Right::View, e)?;
    }
    let envs = visible(&loaded, &caller);
    let mut rows =
        crate::ops::history::rows(&loaded.path, q.env.as_deref(), q.service.as_deref(), None)
            .map_err(|e| ApiError::from(OpError::from(e)))?;
    rows.retain(|r| envs.contains(&r.environment));
    rows.truncate(q.limit.unwrap_or(200).min(5000));
    Ok(json(StatusCode::OK, &rows))
}

/// What identifies a Swarm plan: the commit it was made from and its changes.
fn swarm_plan_id(loaded: &crate::manifest::Loaded, plan: &crate::plan::swarm::SwarmPlan) -> String {
    let mut h = Sha256::new();
    h.update(
        crate::ops::deploy::source_commit(loaded)
            .unwrap_or_else(|| "uncommitted".into())
            .as_bytes(),
    );
    h.update(serde_json::to_vec(plan).unwrap_or_default());
    hex::encode(h.finalize())[..16].to_string()
}

/// What identifies a plan: its commit, and per host the state it was made from and the changes.
/// An action names it, and is refused if the plan made now differs.
pub fn plan_id(doc: &PlanDoc) -> String {
    let mut h = Sha256::new();
    h.update(doc.commit.as_bytes());
    for host in &doc.hosts {
        h.update(host.host.as_bytes());
        h.update(host.fingerprint.as_deref().unwrap_or("-").as_bytes());
        h.update(serde_json::to_vec(&host.changes).unwrap_or_default());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The opening of a preview an action is confirmed on (a plan, a rollback plan): the view right
/// first, then the reference as it is now — a fetch that fails leaves the preview to the last
/// commit fetched, which it names — the environment known to the caller, and a context whose
/// events go nowhere.
async fn preview(
    app: &App,
    caller: &Caller,
    env: &str,
    what: &str,
) -> Result<(crate::manifest::Loaded, Ctx)> {
    require(caller, Right::View, env)?;
    if let Err(e) = app.reference.fetch().await {
        tracing::warn!("fetching the reference before {what}: {e}");
    }
    let loaded = app.load()?;
    known(&loaded, caller, Right::View, env)?;
    let ctx = context(
        app,
        caller,
        app.keys_for(env),
        Arc::new(crate::ops::context::Discard),
    );
    Ok((loaded, ctx))
}

#[derive(Serialize)]
struct PlanAnswer<'a, T: Serialize> {
    plan_id: Option<String>,
    #[serde(flatten)]
    plan: &'a T,
}

pub async fn plan(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
) -> Result<Response> {
    let (loaded, ctx) = preview(&app, &caller, &env, "a plan").await?;
    let input = crate::ops::plan::PlanInput {
        env: env.clone(),
        select: Selection::default(),
        out: None,
        secrets_unchecked: app.secrets_unchecked(&loaded, &env),
    };
    let swarm_loaded = loaded.clone();
    let outcome = blocking(move || async move {
        crate::ops::plan::plan(&ctx, &loaded, input)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    Ok(match &outcome {
        crate::ops::plan::PlanOutcome::Hosts { doc, .. } => json(
            StatusCode::OK,
            &PlanAnswer {
                plan_id: Some(plan_id(doc)),
                plan: doc,
            },
        ),
        crate::ops::plan::PlanOutcome::Swarm(p) => json(
            StatusCode::OK,
            &PlanAnswer {
                plan_id: Some(swarm_plan_id(&swarm_loaded, p)),
                plan: p,
            },
        ),
    })
}

/// The body of an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The plan the person confirmed (`plan_id` of `GET …/plan`): apply requires it, and is
    /// refused if the plan made now differs.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// The commit the plan was made from: refused if the reference moved since.
    #[serde(default)]
    pub commit: Option<String>,
    /// Deploy although a deploy window holds changes (a right of its own), and why.
    #[serde(default)]
    pub override_window: Option<String>,
    /// rollback: go to this kept version.
    #[serde(default)]
    pub to: Option<String>,
    /// Only these services / hosts.
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// The answer to an action: where to follow it.
#[derive(Serialize)]
struct Started {
    operation: String,
    events: String,
    status: String,
}

fn started(op: &Operation) -> Response {
    json(
        StatusCode::ACCEPTED,
        &Started {
            operation: op.id.clone(),
            events: format!("/api/v1/operations/{}/events", op.id),
            status: format!("/api/v1/operations/{}", op.id),
        },
    )
}

/// The commit the person was shown is the reference's now: a full id, or an abbreviation of at
/// least 7 characters (a shorter one would match commits it does not name).
fn check_commit(loaded: &crate::manifest::Loaded, body: &ActionBody) -> Result<()> {
    if let Some(want) = &body.commit {
        let now = crate::ops::deploy::source_commit(loaded).unwrap_or_else(|| "uncommitted".into());
        if *want != now && (want.len() < 7 || !now.starts_with(want.as_str())) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the reference moved since the plan was shown ({} now, not {want}): plan again",
                    crate::git::short_id(&now)
                ),
            ));
        }
    }
    Ok(())
}

/// The reference brought up to date and held still for an action's whole life (no fetch moves
/// its files meanwhile), and the manifest as it is then.
async fn reference_for_action(app: &App) -> Result<(Held, crate::manifest::Loaded)> {
    let held = app.reference.for_action().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the reference could not be fetched, so nothing was done: {e}"),
        )
    })?;
    Ok((held, app.load()?))
}

/// What apply and rollback start with: the reference held, the environment known, the right
/// to deploy there (and to override its window, when asked), the commit the plan was shown at.
async fn begin(
    app: &App,
    caller: &Caller,
    env: &str,
    body: &ActionBody,
) -> Result<(Held, crate::manifest::Loaded)> {
    // Rights first: a caller who may not act learns nothing, and fetches nothing.
    require(caller, Right::Deploy, env)?;
    override_right(caller, env, body)?;
    let (held, loaded) = reference_for_action(app).await?;
    known(&loaded, caller, Right::Deploy, env)?;
    secrets_checked(app, &loaded, env)?;
    check_commit(&loaded, body)?;
    Ok((held, loaded))
}

/// No action where the console cannot open the environment's secrets (409, saying why).
fn secrets_checked(app: &App, loaded: &crate::manifest::Loaded, env: &str) -> Result<()> {
    match app.secrets_unchecked(loaded, env) {
        Some(why) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("no action on {env} from the console: {why}"),
        )),
        None => Ok(()),
    }
}

/// An action refused before it started (its plan changed, a gate, a lock): the operation
/// already opened ends with the error, so it is not left running, and the request answers it.
fn refused<T>(op: &Operation, result: Result<T>) -> Result<T> {
    result.inspect_err(|e| op.finish(Err(serde_json::json!({ "error": e.message }))))
}

fn override_right(caller: &Caller, env: &str, body: &ActionBody) -> Result<()> {
    if body.override_window.is_some() {
        require(caller, Right::OverrideWindow, env)?;
    }
    Ok(())
}

/// Awaits `work` on a blocking thread: the audit's and the operations' futures hold borrows the
/// compiler cannot prove `Send`, so they run there, driven by the server's runtime.
async fn blocking<W, F, T>(work: W) -> Result<T>
where
    W: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Result<T>>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// How an action ended, for `fleetpin_operations_total{outcome}`: from its outcome, not from
/// whether the call returned (an apply whose gate failed returns its report, and failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Ok,
    Interrupted,
    Failed,
}

impl Ended {
    fn of(failed: bool, interrupted: bool) -> Ended {
        if interrupted {
            Ended::Interrupted
        } else if failed {
            Ended::Failed
        } else {
            Ended::Ok
        }
    }

    fn word(self) -> &'static str {
        match self {
            Ended::Ok => "ok",
            Ended::Interrupted => "interrupted",
            Ended::Failed => "failed",
        }
    }
}

/// Runs `work` in the background as operation `op`, on a thread of its own (an operation's
/// future holds borrowed closures that are not `Send`); its outcome (or error) ends the stream.
/// `work` answers its outcome document and how it ended.
fn spawn<W, F>(app: &Arc<App>, op: Arc<Operation>, work: W)
where
    W: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = std::result::Result<(serde_json::Value, Ended), OpError>>,
{
    let app = app.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let result = handle.block_on(work());
        app.cache.invalidate();
        let ended = match &result {
            Ok((_, ended)) => *ended,
            Err(e) => Ended::of(true, e.interrupted()),
        };
        app.counters
            .record(&op.command, ended.word(), started.elapsed().as_secs_f64());
        op.finish(match result {
            Ok((v, _)) => Ok(v),
            Err(e) => Err(serde_json::json!({ "error": ApiError::from(e).message })),
        });
    });
}

pub async fn apply(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    body: Option<Json<ActionBody>>,
) -> Result<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let (held, loaded) = begin(&app, &caller, &env, &body).await?;
    // An apply applies exactly the plan the person confirmed: it names it.
    let Some(want) = body.plan_id.clone() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "plan_id is missing: apply the plan you confirmed, with its plan_id (GET /api/v1/environments/{env}/plan)"
            ),
        ));
    };
    let op = app.operations.start("apply", &env, &caller.principal.id);
    let ctx = context(&app, &caller, app.keys_for(&env), op.clone());
    let input = crate::ops::apply::ApplyInput {
        env: env.clone(),
        select: Selection {
            services: body.services.clone(),
            hosts: body.hosts.clone(),
        },
        override_window: body.override_window.clone(),
        ..Default::default()
    };
    // Everything that can refuse, before answering: a changed plan is a 409, not an event.
    let plan = {
        let (ctx, loaded) = (ctx.clone(), loaded.clone());
        blocking(move || async move {
            crate::ops::apply::prepare(&ctx, &loaded, input)
                .await
                .map_err(ApiError::from)
        })
        .await
    };
    let plan = plan.and_then(|plan| {
        let now = match &plan {
            crate::ops::apply::ApplyPlan::Hosts(h) => plan_id(&h.doc),
            crate::ops::apply::ApplyPlan::Swarm(s) => swarm_plan_id(&loaded, &s.plan),
        };
        if now == want {
            Ok(plan)
        } else {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the plan changed since it was shown ({want}, now {now}): look at it again before applying"
                ),
            ))
        }
    });
    let plan = refused(&op, plan)?;
    spawn(&app, op.clone(), move || async move {
        let _held = held;
        crate::ops::apply::run(&ctx, &loaded, plan).await.map(|o| {
            let ended = Ended::of(o.failed(), o.interrupted());
            let v = match o {
                crate::ops::apply::ApplyOutcome::Hosts(h) => serde_json::to_value(h),
                crate::ops::apply::ApplyOutcome::Swarm(s) => serde_json::to_value(s),
            };
            (v.unwrap_or_default(), ended)
        })
    });
    Ok(started(&op))
}

pub async fn rollback(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    body: Option<Json<ActionBody>>,
) -> Result<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let (held, loaded) = begin(&app, &caller, &env, &body).await?;
    let op = app.operations.start("rollback", &env, &caller.principal.id);
    let ctx = context(&app, &caller, app.keys_for(&env), op.clone());
    let input = crate::ops::rollback::RollbackInput {
        env: env.clone(),
        select: Selection {
            services: body.services.clone(),
            hosts: body.hosts.clone(),
        },
        to: body.to.clone(),
        override_window: body.override_window.clone(),
        // The console's own clone keeps nothing: what it commits is pushed at once.
        push: app.reference.is_clone(),
        ..Default::default()
    };
    let plan = {
        let (ctx, loaded) = (ctx.clone(), loaded.clone());
        blocking(move || async move {
            crate::ops::rollback::prepare(&ctx, &loaded, input)
                .await
                .map_err(ApiError::from)
        })
        .await
    };
    let plan = refused(&op, plan)?;
    spawn(&app, op.clone(), move || async move {
        let _held = held;
        crate::ops::rollback::run(&ctx, &loaded, plan)
            .await
            .map(|o| {
                let ended = Ended::of(o.failed(), o.interrupted());
                let v = match o {
                    crate::ops::rollback::RollbackOutcome::Hosts(h) => serde_json::to_value(h),
                    crate::ops::rollback::RollbackOutcome::Swarm(s) => serde_json::to_value(s),
                };
                (v.unwrap_or_default(), ended)
            })
    });
    Ok(started(&op))
}

#[derive(Debug, Deserialize)]
pub struct RollbackQuery {
    service: Option<String>,
    to: Option<String>,
}

/// What `rollback_plan` answers: the plan `ops::rollback::prepare` made, and the commit it was
/// made from (the rollback sends it back, and is refused if the reference moved since).
#[derive(Serialize)]
struct RollbackPlanAnswer {
    commit: String,
    #[serde(flatten)]
    plan: crate::ops::rollback::RollbackPreview,
}

/// `GET …/rollback?service=S[&to=V]`: what a rollback would do, before it is confirmed — the
/// same `prepare` the rollback runs (hosts observed, nothing changed), or its refusal in the
/// CLI's words.
pub async fn rollback_plan(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(q): Query<RollbackQuery>,
) -> Result<Response> {
    let (loaded, ctx) = preview(&app, &caller, &env, "a rollback plan").await?;
    // The rollback itself would be refused: say so now.
    secrets_checked(&app, &loaded, &env)?;
    let select = Selection {
        services: q.service.into_iter().collect(),
        hosts: Vec::new(),
    };
    // A service the manifest does not have is not found (404), as for its logs and releases.
    crate::ops::deploy::check_services(&loaded, &select)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let input = crate::ops::rollback::RollbackInput {
        env: env.clone(),
        select,
        to: q.to.filter(|t| !t.trim().is_empty()),
        push: app.reference.is_clone(),
        ..Default::default()
    };
    let commit = crate::ops::deploy::source_commit(&loaded).unwrap_or_else(|| "uncommitted".into());
    let plan = blocking(move || async move {
        crate::ops::rollback::prepare(&ctx, &loaded, input)
            .await
            .map(|p| p.preview())
            .map_err(ApiError::from)
    })
    .await?;
    Ok(json(StatusCode::OK, &RollbackPlanAnswer { commit, plan }))
}

pub async fn unlock(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    body: Option<Json<ActionBody>>,
) -> Result<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    require(&caller, Right::Deploy, &env)?;
    override_right(&caller, &env, &body)?;
    let loaded = app.load()?;
    known(&loaded, &caller, Right::Deploy, &env)?;
    // Like every action: none where the console cannot open the environment's secrets.
    secrets_checked(&app, &loaded, &env)?;
    let ctx = context(
        &app,
        &caller,
        app.keys_for(&env),
        Arc::new(crate::ops::context::Discard),
    );
    let input = crate::ops::unlock::UnlockInput {
        env: env.clone(),
        hosts: body.hosts,
    };
    let outcome = crate::ops::unlock::unlock(&ctx, &loaded, input).await?;
    app.cache.invalidate();
    Ok(match outcome {
        crate::ops::unlock::UnlockOutcome::Hosts { environment, hosts } => json(
            StatusCode::OK,
            &serde_json::json!({"environment": environment, "hosts": hosts}),
        ),
        crate::ops::unlock::UnlockOutcome::Swarm { environment, owner } => json(
            StatusCode::OK,
            &serde_json::json!({"environment": environment, "owner": owner}),
        ),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    from: String,
    to: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    override_window: Option<String>,
}

pub async fn promote(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<PromoteBody>,
) -> Result<Response> {
    // Rights first: a caller who may not act learns nothing, and fetches nothing.
    require(&caller, Right::View, &body.from)?;
    require(&caller, Right::Deploy, &body.to)?;
    if body.override_window.is_some() {
        require(&caller, Right::OverrideWindow, &body.to)?;
    }
    let (held, loaded) = reference_for_action(&app).await?;
    known(&loaded, &caller, Right::View, &body.from)?;
    known(&loaded, &caller, Right::Deploy, &body.to)?;
    secrets_checked(&app, &loaded, &body.to)?;
    check_commit(
        &loaded,
        &ActionBody {
            commit: body.commit.clone(),
            ..Default::default()
        },
    )?;
    let op = app
        .operations
        .start("promote", &body.to, &caller.principal.id);
    let ctx = context(&app, &caller, app.keys_for(&body.to), op.clone());
    let input = crate::ops::promote::PromoteInput {
        from: body.from,
        to: body.to,
        services: body.services,
        override_window: body.override_window,
        push: app.reference.is_clone(),
        ..Default::default()
    };
    spawn(&app, op.clone(), move || async move {
        let _held = held;
        crate::ops::promote::promote(&ctx, &loaded, input)
            .await
            .map(|o| {
                let ended = Ended::of(o.failed(), false);
                (serde_json::to_value(&o).unwrap_or_default(), ended)
            })
    });
    Ok(started(&op))
}

fn visible_operation(app: &App, caller: &Caller, id: &str) -> Result<Arc<Operation>> {
    let op = app
        .operations
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no operation {id}")))?;
    require(caller, Right::View, &op.environment)?;
    Ok(op)
}

pub async fn operation(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response> {
    let op = visible_operation(&app, &caller, &id)?;
    Ok(json(StatusCode::OK, &op.snapshot()))
}

/// The operation's events as server-sent events: those so far, then each new one, then `end`
/// with the outcome.
pub async fn events(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response> {
    use futures::StreamExt;
    use tokio::sync::broadcast::error::RecvError;
    type Item = std::result::Result<Event, std::convert::Infallible>;
    let op = visible_operation(&app, &caller, &id)?;
    let (past, end, rx) = op.follow();
    let event =
        |v: &serde_json::Value| -> Item { Ok(Event::default().event("event").data(v.to_string())) };
    let done =
        |v: &serde_json::Value| -> Item { Ok(Event::default().event("end").data(v.to_string())) };
    let finished = end.is_some();
    let head: Vec<Item> = past.iter().map(event).chain(end.iter().map(done)).collect();
    let live = futures::stream::unfold((finished, rx), move |(over, mut rx)| async move {
        if over {
            return None;
        }
        match rx.recv().await {
            Ok(Streamed::Event(v)) => Some((event(&v), (false, rx))),
            Ok(Streamed::Done(v)) => Some((done(&v), (true, rx))),
            Err(RecvError::Lagged(n)) => Some((
                Ok(Event::default().comment(format!("{n} events skipped"))),
                (false, rx),
            )),
            Err(RecvError::Closed) => None,
        }
    });
    let stream = futures::stream::iter(head).chain(live);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `/metrics`: the fleet's series for the environments the caller may view (written once per
/// reading, `Reading::metrics_fleet`), then the agents', the reading's age and the counters.
pub async fn metrics(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response> {
    // A scrape never waits for a fleet read once there is a reading: an expired one is answered
    // at once (its age is `fleetpin_fleet_read_age_seconds`) while the fleet is read again in
    // the background. A Prometheus scraping every 30 s with nobody else polling would otherwise
    // wait for the whole fleet at every scrape.
    let loaded = app.load_shared()?;
    let commit = crate::ops::deploy::source_commit(&loaded).unwrap_or_else(|| "uncommitted".into());
    let (reading, envs) = match app.cache.last(&commit) {
        Some(r) => {
            if r.age_seconds() >= super::cache::MAX_AGE.as_secs_f64() && !app.cache.refreshing() {
                let (app, caller, loaded) = (app.clone(), caller.clone(), loaded.clone());
                tokio::spawn(async move {
                    if let Err(e) = fleet_reading_of(&app, &caller, loaded).await {
                        tracing::warn!("reading the fleet for /metrics: {}", e.message);
                    }
                });
            }
            (r, visible(&loaded, &caller))
        }
        None => fleet_reading_of(&app, &caller, loaded).await?,
    };
    let fleet = reading.metrics_fleet(&envs).await?;
    let live =
        super::metrics::render_live(reading.agents(&envs), reading.age_seconds(), &app.counters);
    Ok(shared(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        [fleet, Bytes::from(live)],
    ))
}

/// An answer made of chunks sent one after the other, with their total length: a large chunk
/// shared by every answer of a reading goes out as is, never copied into each answer.
fn shared(status: StatusCode, content_type: &'static str, chunks: [Bytes; 2]) -> Response {
    let mut res = axum::body::Body::new(Chunks(chunks.into_iter().collect())).into_response();
    *res.status_mut() = status;
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    res
}

/// A body of whole chunks, its exact length known (so it is sent with a Content-Length).
struct Chunks(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    service: Option<String>,
    tail: Option<usize>,
}

/// One line of `GET …/logs`, a secret value of the environment masked.
#[derive(Serialize)]
struct LogLineDoc {
    host: String,
    service: String,
    stream: crate::observed::LogStream,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    line: String,
}

/// Every occurrence of a secret value replaced by `***` (values shorter than 4 characters are
/// left alone: they would mask half the text and reveal what they are).
pub fn mask(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The sources of `env`'s logs and the values to mask in them: the one setup of both log
/// endpoints (the right to view, the environment known).
async fn log_sources(
    app: &App,
    caller: &Caller,
    env: String,
    q: &LogsQuery,
    follow: bool,
) -> Result<(crate::ops::logs::Found, Vec<String>)> {
    require(caller, Right::View, &env)?;
    let loaded = app.load()?;
    known(&loaded, caller, Right::View, &env)?;
    let ctx = context(
        app,
        caller,
        app.keys.clone(),
        Arc::new(crate::ops::context::Discard),
    );
    let select = Selection {
        services: q.service.clone().into_iter().collect(),
        hosts: vec![],
    };
    // A service the manifest does not have is not found (404), as in `…/services/{service}/…`.
    crate::ops::deploy::check_services(&loaded, &select)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    // The values to mask: every secret the environment's services get. A service whose secret
    // files cannot be read here (no key for them, a plain env_file not at hand) may print values
    // the console cannot mask: its logs are not shown.
    let wanted = crate::ops::deploy::wanted(&loaded, &env, &Selection::default(), true, &app.keys)
        .map_err(ApiError::from)?;
    let unmaskable: std::collections::BTreeSet<&String> = wanted
        .iter()
        .flat_map(|w| w.unchecked.iter())
        .filter(|s| select.services.is_empty() || select.services.contains(s))
        .collect();
    if !unmaskable.is_empty() {
        let names: Vec<&str> = unmaskable.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the logs of {} are not shown: the console cannot read their secrets to mask them (serve.yaml's age_identities for {env}, or the env_file on this machine)",
                names.join(", ")
            ),
        ));
    }
    let secrets: Vec<String> = wanted
        .iter()
        .flat_map(|w| w.desired.iter())
        .flat_map(|r| r.secret_env.values().map(|v| v.expose().to_string()))
        .collect();
    let input = crate::ops::logs::LogsInput {
        env,
        select,
        since: None,
        tail: Some(Some(q.tail.unwrap_or(100).min(10_000))),
        follow,
    };
    let found = blocking(move || async move {
        crate::ops::logs::logs(&ctx, &loaded, input)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    Ok((found, secrets))
}

fn line_doc(
    labels: &[crate::ops::logs::Label],
    source: usize,
    line: crate::observed::LogLine,
    secrets: &[String],
) -> LogLineDoc {
    let l = &labels[source];
    LogLineDoc {
        host: l.host.clone(),
        service: l.service.clone(),
        stream: line.stream,
        time: line.time,
        line: mask(&line.line, secrets),
    }
}

/// The last lines of the environment's containers (`logs --tail`), secret values masked.
pub async fn logs(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response> {
    use futures::StreamExt;
    let (found, secrets) = log_sources(&app, &caller, env, &q, false).await?;
    let mut out = Vec::new();
    let mut ended = 0;
    let mut stream = found.stream;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while ended < found.labels.len() {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(crate::ops::logs::Event::Line { source, line })) => {
                out.push(line_doc(&found.labels, source, line, &secrets));
            }
            Ok(Some(crate::ops::logs::Event::End { .. })) => ended += 1,
            Ok(None) | Err(_) => break,
        }
    }
    Ok(json(StatusCode::OK, &out))
}

/// Why a followed source went quiet, as `logs --follow` says it.
#[derive(Serialize)]
struct LogEndDoc {
    host: String,
    service: String,
    why: String,
}

/// The environment's logs followed live (`logs --follow`), as server-sent events: `line` for
/// each line (the `GET …/logs` document, secret values masked), `end` when a source goes quiet
/// and why. The engines' streams close when the client goes away.
pub async fn follow_logs(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(env): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response> {
    use futures::StreamExt;
    let (found, secrets) = log_sources(&app, &caller, env, &q, true).await?;
    let labels = found.labels;
    let stream = found.stream.map(move |ev| {
        let ev = match ev {
            crate::ops::logs::Event::Line { source, line } => Event::default()
                .event("line")
                .json_data(line_doc(&labels, source, line, &secrets)),
            crate::ops::logs::Event::End { source, end } => {
                use crate::ops::logs::End;
                let why = match end {
                    End::Done => "every line was sent".to_string(),
                    End::Stopped(state) => {
                        format!("not running ({})", format!("{state:?}").to_lowercase())
                    }
                    End::Closed => "the engine closed the log stream".to_string(),
                    End::Lost(e) => format!("the host was lost ({e})"),
                    End::Failed(e) => format!("the engine refused ({e})"),
                };
                let l = &labels[source];
                Event::default().event("end").json_data(LogEndDoc {
                    host: l.host.clone(),
                    service: l.service.clone(),
                    why: mask(&why, &secrets),
                })
            }
        };
        Ok::<_, std::convert::Infallible>(ev.unwrap_or_else(|_| Event::default().comment("?")))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn secret_values_are_masked_in_log_lines() {
        let secrets = vec!["hunter22".to_string(), "pw".to_string()];
        assert_eq!(
            mask("login with hunter22 then hunter22 again", &secrets),
            "login with *** then *** again"
        );
        assert_eq!(
            mask("a pw of two letters stays", &secrets),
            "a pw of two letters stays"
        );
        assert_eq!(mask("nothing here", &[]), "nothing here");
    }
}
