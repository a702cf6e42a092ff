//! The per-host lock: a never-started container named `fleetpin-lock-{platform}-{environment}`
//! on the host itself, so operators on different machines exclude each other. Docker refuses a
//! second container with the same name, which makes taking the lock atomic; its labels say who
//! holds it, since when, and until when. An expired lock is removed by its id, so two runs that
//! both find the same stale lock can never remove a fresh one.

use crate::engine::{Engine, EngineError};
use crate::plan::labels;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Long enough for a slow rollout of one host, short enough that a killed run does not block the
/// team for long; `fleetpin unlock` removes it at once.
pub const TTL: Duration = Duration::from_secs(30 * 60);

pub fn name(platform: &str, environment: &str) -> String {
    format!("fleetpin-lock-{platform}-{environment}")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error(
        "locked by {owner} since {taken_at} (expires {expires_at}); if that run was killed: fleetpin unlock {environment} --host {host}"
    )]
    Held {
        owner: String,
        taken_at: String,
        expires_at: String,
        environment: String,
        host: String,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Who holds a lock: the operator's identity, the machine and the process.
pub fn owner(identity: &str) -> String {
    format!("{identity} on {} (pid {})", hostname(), std::process::id())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Takes the lock; returns its id for `release`.
pub async fn acquire<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
    host: &str,
    identity: &str,
) -> Result<String, LockError> {
    let lock = name(platform, environment);
    let now = SystemTime::now();
    let labels = BTreeMap::from([
        (labels::LOCK_OWNER.to_string(), owner(identity)),
        (labels::LOCK_TAKEN_AT.to_string(), rfc3339(now)),
        (labels::LOCK_EXPIRES_AT.to_string(), rfc3339(now + TTL)),
        (labels::LOCK_MACHINE.to_string(), hostname()),
        (labels::LOCK_PID.to_string(), std::process::id().to_string()),
        (labels::PLATFORM.to_string(), platform.to_string()),
        (labels::ENVIRONMENT.to_string(), environment.to_string()),
    ]);
    // Docker reserves a name before the container can be inspected: a lock being created by
    // another run shows as a conflict with nothing behind it for a moment. Wait for it to settle.
    for attempt in 0..40 {
        match engine.create_lock(&lock, &labels).await {
            Ok(id) => return Ok(id),
            Err(EngineError::Conflict { what }) => tracing::debug!("{host}: {what}"),
            Err(e) => return Err(e.into()),
        }
        let Some((id, held)) = engine.read_lock(&lock).await? else {
            tokio::time::sleep(Duration::from_millis(50 + 10 * attempt)).await;
            continue;
        };
        let expires = held
            .get(labels::LOCK_EXPIRES_AT)
            .and_then(|e| humantime::parse_rfc3339(e).ok());
        if expires.is_none_or(|e| e < SystemTime::now()) || held_by_a_dead_process_here(&held) {
            tracing::warn!(
                "{host}: removing a stale lock (expired, or its process is gone) held by {}",
                held.get(labels::LOCK_OWNER)
                    .map(String::as_str)
                    .unwrap_or("?")
            );
            engine.remove_lock(&id).await?;
            continue;
        }
        let get = |k: &str| held.get(k).cloned().unwrap_or_else(|| "?".into());
        return Err(LockError::Held {
            owner: get(labels::LOCK_OWNER),
            taken_at: get(labels::LOCK_TAKEN_AT),
            expires_at: get(labels::LOCK_EXPIRES_AT),
            environment: environment.to_string(),
            host: host.to_string(),
        });
    }
    Err(LockError::Engine(EngineError::Conflict {
        what: format!("lock {lock} (taken and released repeatedly; try again)"),
    }))
}

/// A lock taken on this machine by a process that no longer exists (killed with -9) is stale at
/// once: nobody else can hold it for that process.
fn held_by_a_dead_process_here(held: &BTreeMap<String, String>) -> bool {
    let here = held
        .get(labels::LOCK_MACHINE)
        .is_some_and(|m| *m == hostname());
    let pid = held
        .get(labels::LOCK_PID)
        .and_then(|p| p.parse::<u32>().ok());
    match (here, pid) {
        (true, Some(pid)) if pid != std::process::id() => !alive(pid),
        _ => false,
    }
}

/// Whether a process exists and is not a zombie (a killed process may wait a while to be reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

pub async fn release<E: Engine>(engine: &E, id: &str) {
    if let Err(e) = engine.remove_lock(id).await {
        tracing::warn!("could not release the lock {id}: {e}; it expires by itself");
    }
}

/// Removes the lock whoever holds it (`fleetpin unlock`); returns its owner when there was one.
pub async fn force_release<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
) -> Result<Option<String>, EngineError> {
    match engine.read_lock(&name(platform, environment)).await? {
        Some((id, held)) => {
            engine.remove_lock(&id).await?;
            Ok(Some(
                held.get(labels::LOCK_OWNER)
                    .cloned()
                    .unwrap_or_else(|| "?".into()),
            ))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;

    fn held_by(owner: &str, expires: SystemTime) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::LOCK_OWNER.to_string(), owner.to_string()),
            (
                labels::LOCK_TAKEN_AT.to_string(),
                rfc3339(SystemTime::now()),
            ),
            (labels::LOCK_EXPIRES_AT.to_string(), rfc3339(expires)),
        ])
    }

    #[tokio::test]
    async fn a_held_lock_refuses_an_expired_one_is_taken_over() {
        let engine = MemoryEngine::new(vec![]);
        let later = SystemTime::now() + Duration::from_secs(600);
        engine
            .create_lock(&name("acme", "prod"), &held_by("alice", later))
            .await
            .unwrap();
        match acquire(&engine, "acme", "prod", "h1", "bob").await {
            Err(LockError::Held { owner, .. }) => assert_eq!(owner, "alice"),
            other => panic!("{other:?}"),
        }

        let engine = MemoryEngine::new(vec![]);
        let past = SystemTime::now() - Duration::from_secs(60);
        let stale = engine
            .create_lock(&name("acme", "prod"), &held_by("carol", past))
            .await
            .unwrap();
        let id = acquire(&engine, "acme", "prod", "h1", "bob").await.unwrap();
        assert_ne!(
            id, stale,
            "the expired lock was removed and a new one taken"
        );
        let (_, labels) = engine
            .read_lock(&name("acme", "prod"))
            .await
            .unwrap()
            .unwrap();
        assert!(labels[labels::LOCK_OWNER].starts_with("bob on "));
        release(&engine, &id).await;
        assert!(
            engine
                .read_lock(&name("acme", "prod"))
                .await
                .unwrap()
                .is_none()
        );
    }
}
