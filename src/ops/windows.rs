//! Deploy windows around an operation (contract section 10): the verdict of
//! `plan::windows` at the engine's clock — as the lock is judged, so that a laptop with a wrong
//! clock cannot walk past a freeze — and what `apply`, `promote` and `rollback --to` do with it:
//! held changes are refused unless the operator gives `--override-window "REASON"`, which is
//! then recorded in the event, the notification and any commit the command writes.

use crate::engine::Engine;
use crate::manifest::Loaded;
use crate::ops::error::{OpError, OpResult};
use crate::plan::windows::{self, Verdict};
use std::time::SystemTime;

/// Changes to `env` are held now: the message says by which window and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub message: String,
}

/// The time by `engine`'s clock; this machine's when the engine cannot say.
pub async fn engine_now<E: Engine>(engine: &E) -> SystemTime {
    engine.clock().await.unwrap_or_else(|_| SystemTime::now())
}

/// Whether changes to `env` are held at `now`; `None` when the environment is open (or has no
/// windows).
pub fn hold_at(loaded: &Loaded, env: &str, now: SystemTime) -> Option<Hold> {
    let e = loaded.manifest.environments.get(env)?;
    if e.windows.is_empty() {
        return None;
    }
    let now = jiff::Timestamp::try_from(now).ok()?;
    match windows::environment_verdict(e, now) {
        Verdict::Open { .. } => None,
        Verdict::Held(h) => Some(Hold {
            message: h.message(&e.time_zone()),
        }),
    }
}

/// Whether changes to `env` are held, by the clock of the first of `engines` (no engine: this
/// machine's clock).
pub async fn hold<'a, E: Engine + 'a>(
    loaded: &Loaded,
    env: &str,
    engines: impl IntoIterator<Item = &'a E>,
) -> Option<Hold> {
    if loaded
        .manifest
        .environments
        .get(env)
        .is_none_or(|e| e.windows.is_empty())
    {
        return None;
    }
    let now = match engines.into_iter().next() {
        Some(e) => engine_now(e).await,
        None => SystemTime::now(),
    };
    hold_at(loaded, env, now)
}

/// `hold` for a command that does not otherwise reach `env`'s hosts (promote): the clock of its
/// first plain host that answers, else this machine's.
pub async fn hold_of(ctx: &crate::ops::context::Ctx, loaded: &Loaded, env: &str) -> Option<Hold> {
    use crate::host::fleet::Connect;
    let e = loaded.manifest.environments.get(env)?;
    if e.windows.is_empty() {
        return None;
    }
    let hosts = crate::host::fleet::hosts(loaded, env, &[]).unwrap_or_default();
    for h in hosts.iter().take(3) {
        if let Ok(engine) = crate::host::fleet::Docker
            .connect(h, ctx.connect_timeout)
            .await
            && let Ok(now) = engine.clock().await
        {
            return hold_at(loaded, env, now);
        }
    }
    hold_at(loaded, env, SystemTime::now())
}

/// What a command that changes `env` does with a hold: refused without an override; with one,
/// the line recorded in its event, notification and commit.
pub fn gate(
    command: &str,
    env: &str,
    hold: Option<&Hold>,
    override_reason: Option<&str>,
) -> OpResult<Option<String>> {
    let Some(h) = hold else {
        return Ok(None);
    };
    match override_reason {
        Some(reason) if !reason.trim().is_empty() => {
            Ok(Some(format!("window overridden ({}): {reason}", h.message)))
        }
        _ => Err(OpError::Refused(format!(
            "{command} {env}: changes are {}; nothing was changed. For an emergency: --override-window \"REASON\" (the reason is recorded in the event, the notification and the commit)",
            h.message
        ))),
    }
}
