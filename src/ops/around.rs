//! What brackets every operation that changes something, whichever face started it: the
//! manifest's `pre_` hook before any host is touched (a failure stops the operation, after the
//! webhooks were told it was blocked), the `post_` or `on_failure` hook and the webhooks after the
//! work, and the push of a pin commit. Progress and warnings go to the operation's sink.

use crate::manifest::Loaded;
use crate::ops::context::{Op, Progress};
use crate::ops::error::{OpError, OpResult};
use crate::ops::event::{Event, Outcome};
use crate::ops::hooks::{self, Hook, HookError};
use crate::ops::notify::Sent;
use serde::Serialize;

/// Runs the manifest's `pre_<command>` hook, if it has one. A hook that fails, times out or is
/// cancelled stops the operation: the webhooks are told it was blocked, and the error says which
/// hook and how it ended.
pub async fn pre_hook(op: &Op, loaded: &Loaded, event: &Event) -> OpResult<()> {
    op.emit(Progress::Event(Box::new(event.clone())));
    let name = format!("pre_{}", event.command);
    let Some(command) = loaded.manifest.hooks.get(&name) else {
        return Ok(());
    };
    let Err(e) = run_hook(op, loaded, &name, &command.value, event) else {
        return Ok(());
    };
    let mut blocked = event.clone().ended(if e.interrupted() {
        Outcome::Interrupted
    } else {
        Outcome::Blocked
    });
    blocked.notes.push(e.to_string());
    notify(op, loaded, &blocked).await;
    Err(OpError::Blocked(e))
}

/// After the work, whatever its outcome (never changing it): the `post_<command>` hook when it
/// succeeded, else `on_failure`; a failing hook is a warning. Then the webhooks.
pub async fn after_work(op: &Op, loaded: &Loaded, event: &Event) {
    let name = match event.result {
        Some(Outcome::Success) => format!("post_{}", event.command),
        _ => "on_failure".to_string(),
    };
    if let Some(command) = loaded.manifest.hooks.get(&name)
        && let Err(e) = run_hook(op, loaded, &name, &command.value, event)
    {
        op.warn(e.to_string());
    }
    notify(op, loaded, event).await;
}

/// One hook of the manifest, in its directory, with its timeout; the operation's cancellation
/// reaches the hook (in its own process group).
fn run_hook(
    op: &Op,
    loaded: &Loaded,
    name: &str,
    command: &str,
    event: &Event,
) -> Result<(), HookError> {
    let console = op.ctx.hooks == crate::ops::context::Hooks::Console;
    if console {
        console_may_run(loaded, &event.environment).map_err(|why| HookError::Refused {
            hook: name.to_string(),
            why,
        })?;
    }
    let dir = loaded.dir();
    let hook = Hook {
        name,
        command,
        dir: &dir,
        timeout: loaded.manifest.hooks.timeout(),
        cancel: op.cancel(),
        scrubbed: console,
    };
    hooks::run(&hook, event, &|line| {
        op.emit(Progress::Hook {
            hook: name.to_string(),
            line: line.to_string(),
        })
    })
}

/// The console holds every environment's keys and acts for many people: a hook from its
/// reference runs only when the commit passes `env`'s signature check, so that write access to
/// the repository is not a shell on the console's machine. Why not, otherwise.
fn console_may_run(loaded: &Loaded, env: &str) -> Result<(), String> {
    if !crate::ops::trust::signed_here(loaded, env) {
        return Err(format!(
            "the console runs hooks only from commits signed for `{env}`, which does not require signatures (`trust: {{signed: true}}`); run this from the command line, or require signed commits there (docs/console.md)"
        ));
    }
    let commit = crate::ops::deploy::source_commit(loaded);
    crate::ops::trust::check_deploy(loaded, env, commit.as_deref(), &Default::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Posts the event to the manifest's webhooks; what became of each is an event.
async fn notify(op: &Op, loaded: &Loaded, event: &Event) {
    op.emit(Progress::Event(Box::new(event.clone())));
    let vars = op.ctx.vars.clone();
    for sent in crate::ops::notify::send_all(&loaded.manifest.notify, event, &vars).await {
        op.emit(match sent {
            Sent::Delivered { to, status } => Progress::Notified { to, status },
            Sent::Failed { to, why } => Progress::NotifyFailed { to, why },
        });
    }
}

/// Whether this run pushes its pin commit: `--push`, or `git: {push: true}` unless `--no-push`.
pub fn wants_push(m: &crate::manifest::Manifest, push: bool, no_push: bool) -> bool {
    push || (m.git.push && !no_push)
}

/// Whether a pin commit in `env` is pushed: `wants_push`, or the environment's agents follow the
/// registry and `reference: {publish: true}` makes publishing (after the push) the default.
pub fn wants_push_in(loaded: &Loaded, env: &str, push: bool, no_push: bool) -> bool {
    let m = &loaded.manifest;
    wants_push(m, push, no_push)
        || (!no_push && m.follows_oci(env) && m.reference.as_ref().is_some_and(|r| r.publish))
}

/// An environment followed by pull agents (`pull: true`) takes its pins from the pushed branch:
/// an operation that changes them must end with its commit pushed, or the agents put the old pins
/// back at their next sync. Checked before anything is done.
pub fn require_push_for_pull(
    loaded: &Loaded,
    env: &str,
    commits: bool,
    pushes: bool,
    command: &str,
) -> OpResult<()> {
    if !loaded
        .manifest
        .environments
        .get(env)
        .is_some_and(|e| e.pull)
        || (commits && pushes)
    {
        return Ok(());
    }
    if loaded.manifest.follows_oci(env) {
        return Err(OpError::Refused(format!(
            "environment `{env}` is followed through the registry (`pull: oci`): `{command}` must end with its pin commit pushed and published, or the agents would undo it at their next sync; pass --push (it publishes too, to {}) or set `reference: {{publish: true}}`{}",
            loaded
                .manifest
                .reference
                .as_ref()
                .map(|r| r.repository.value.as_str())
                .unwrap_or("the reference's repository"),
            if commits { "" } else { " and let it commit" }
        )));
    }
    Err(OpError::Refused(format!(
        "environment `{env}` is followed by pull agents (`pull: true`): `{command}` must end with its pin commit pushed, or the agents would undo it at their next sync; pass --push (or set `git: {{push: true}}`){}",
        if commits { "" } else { " and let it commit" }
    )))
}

/// What became of a push: where the commit went, or why not (the local commit stays); and
/// where it was published, when the environment's agents follow the registry.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub ok: bool,
    pub to: Option<String>,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<crate::ops::publish::Published>,
}

/// Pushes a pin commit to its branch's upstream (the git CLI, never forced); then, where the
/// commit must reach agents through the registry (`publish::wanted`), publishes it. A commit
/// whose push failed is not published: agents would follow a commit the branch does not have.
pub async fn push(loaded: &Loaded, env: &str, commit: &str) -> Pushed {
    let mut out = match crate::git::push(&loaded.path, commit) {
        Ok(up) => Pushed {
            ok: true,
            to: Some(up.to_string()),
            error: None,
            published: None,
        },
        Err(e) => Pushed {
            ok: false,
            to: None,
            error: Some(e.to_string()),
            published: None,
        },
    };
    if out.ok && crate::ops::publish::wanted(loaded, env) {
        let input = crate::ops::publish::PublishInput::default();
        match crate::ops::publish::run(&loaded.path, &input).await {
            Ok(p) => out.published = Some(p),
            Err(e) => {
                out.ok = false;
                out.error = Some(format!(
                    "pushed, but not published: {e}; publish it with `fleetpin publish` before the agents' next sync"
                ));
            }
        }
    }
    out
}

/// The pins a run writes back, committed (the manifest file alone), authored by the operation's
/// actor; or with `commit` false, a note that the manifest still pins what was left. Returns the
/// commit and its message; an error is also a note (the hosts already changed).
pub fn write_pins(
    op: &Op,
    loaded: &Loaded,
    env: &str,
    moves: &[(String, String, String)],
    commit: bool,
    notes: &mut Vec<String>,
    how: &crate::ops::pins::CommitHow,
) -> Result<Option<(String, String)>, crate::ops::pins::PinWriteError> {
    if moves.is_empty() {
        return Ok(None);
    }
    if !commit {
        notes.push("--no-commit: the manifest still pins the versions rolled back from; plan and audit show the drift".into());
        return Ok(None);
    }
    let edits: Vec<(String, String)> = moves
        .iter()
        .map(|(s, _, to)| (s.clone(), to.clone()))
        .collect();
    let message = how.message(&crate::ops::pins::message(&op.info.command, env, moves));
    match crate::ops::pins::write_and_commit(
        &loaded.path,
        &loaded.text,
        env,
        &edits,
        Some(&message),
        &op.ctx.actor,
        how.signing.as_ref(),
    ) {
        Ok(id) => Ok(id.map(|id| (id, message))),
        Err(e) => {
            notes.push(format!("the pins could not be rewritten: {e}"));
            Err(e)
        }
    }
}
