//! The per-host lock, on the host itself, so operators on different machines exclude each other.
//!
//! The lock is a never-started container `fleetpin-lock-{platform}-{environment}`: Docker refuses a
//! second container of one name, which makes taking it atomic. Its labels name the owner, the
//! machine (by machine id), the process and the lock's time to live. Labels cannot change after
//! create, so the lock is renewed by heartbeats: every third of the TTL the holder creates a
//! small container `…​.beat-{lock}-{n}` (and removes the previous one), whose engine-set `Created`
//! is the heartbeat. The lock has expired when the engine's own clock (`/info` SystemTime) is more
//! than the TTL past the newest of the lock's and its heartbeats' `Created` — no client clock takes
//! part, so a laptop two hours ahead judges like everyone else.
//!
//! A lock is taken over only when it has expired, or when its holder ran on this very machine
//! (same machine id) and /proc says that process is gone. Without a machine id or /proc nothing
//! is taken over on a guess: the lock expires, or `fleetpin unlock` removes it. Removal is by id,
//! so two runs that both find the same stale lock never remove a fresh one.

use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::plan::labels;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Long enough to ride out a missed heartbeat or two, short enough that a run killed on another
/// machine blocks the team for two minutes (on this machine a dead holder is taken over at once).
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// How often `--lock-wait` looks again.
const WAIT_POLL: Duration = Duration::from_secs(1);

pub fn name(platform: &str, environment: &str) -> String {
    format!("fleetpin-lock-{platform}-{environment}")
}

fn beat_prefix(lock_name: &str) -> String {
    format!("{lock_name}.beat-")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error(
        "locked by {owner} on {machine} (pid {pid}){operation} since {taken_at}; it expires {expires}; if that run was killed: fleetpin unlock {environment} --host {host}"
    )]
    Held {
        owner: String,
        /// ` for apply (apply-…)`, or nothing for a lock that does not say.
        operation: String,
        machine: String,
        pid: String,
        taken_at: String,
        expires: String,
        environment: String,
        host: String,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How to take the lock: as whom, for how long, waiting how long for a held one.
#[derive(Debug, Clone)]
pub struct LockConfig {
    pub identity: String,
    /// The operation that holds it (`apply apply-18f…-1`): shown to whoever finds it held.
    pub operation: String,
    /// This machine's id (`identity::machine_id`), if it has one.
    pub machine: Option<String>,
    pub ttl: Duration,
    /// `--lock-wait`: wait this long for a held lock instead of failing at once.
    pub wait: Option<Duration>,
}

impl LockConfig {
    /// The lock `identity` takes for `operation`; `ttl` (the command line's `FLEETPIN_LOCK_TTL`,
    /// for operators on slow links and tests), else the default.
    pub fn new(
        identity: &str,
        operation: &str,
        wait: Option<Duration>,
        ttl: Option<Duration>,
    ) -> LockConfig {
        LockConfig {
            identity: identity.to_string(),
            operation: operation.to_string(),
            machine: crate::identity::machine_id(),
            ttl: ttl.unwrap_or(DEFAULT_TTL),
            wait,
        }
    }
}

/// A lock this run holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    pub name: String,
    pub ttl: Duration,
    beats: u64,
    last_beat: Option<String>,
    /// Heartbeats carry the platform and environment too, so that one prune filter
    /// (`label!=io.fleetpin.platform`) spares every container fleetpin makes.
    resource: BTreeMap<String, String>,
}

/// The lock as one list call shows it: the lock container and its heartbeats.
#[derive(Debug, Clone)]
pub struct Observed {
    pub lock: ContainerSummary,
    /// The newest heartbeat (or the lock's own creation), unix seconds by the engine's clock.
    pub last_beat: i64,
    /// Heartbeats of locks that are gone, to clean up.
    pub strays: Vec<String>,
}

async fn observe<E: Engine>(
    engine: &E,
    lock_name: &str,
) -> Result<(Option<Observed>, Vec<String>), EngineError> {
    let list = engine.list_containers(lock_name).await?;
    let lock = list.iter().find(|c| c.name == lock_name).cloned();
    let prefix = beat_prefix(lock_name);
    let beats: Vec<&ContainerSummary> = list
        .iter()
        .filter(|c| c.name.starts_with(&prefix))
        .collect();
    let strays: Vec<String> = beats
        .iter()
        .filter(|b| {
            lock.as_ref()
                .is_none_or(|l| b.labels.get(labels::LOCK_OF) != Some(&l.id))
        })
        .map(|b| b.id.clone())
        .collect();
    Ok(match lock {
        None => (None, strays),
        Some(l) => {
            let last_beat = beats
                .iter()
                .filter(|b| b.labels.get(labels::LOCK_OF) == Some(&l.id))
                .map(|b| b.created)
                .chain(std::iter::once(l.created))
                .max()
                .unwrap_or(l.created);
            (
                Some(Observed {
                    lock: l,
                    last_beat,
                    strays: strays.clone(),
                }),
                strays,
            )
        }
    })
}

/// Why a held lock may be taken over, if it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    Fresh,
    Expired,
    /// Its holder ran on this machine and is gone.
    HolderGone,
}

fn ttl_of(lock: &ContainerSummary) -> Duration {
    lock.labels
        .get(labels::LOCK_TTL)
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL)
}

/// The pure judgement: expired by the engine's clock, or held by a dead process of this machine.
pub fn judge(observed: &Observed, engine_now: SystemTime, here: Option<&str>) -> Stale {
    let ttl = ttl_of(&observed.lock);
    let last = crate::clock::from_unix(observed.last_beat);
    if engine_now.duration_since(last).is_ok_and(|age| age > ttl) {
        return Stale::Expired;
    }
    let held = &observed.lock.labels;
    let same_machine = match (here, held.get(labels::LOCK_MACHINE)) {
        (Some(a), Some(b)) => !a.is_empty() && a == b,
        _ => false,
    };
    if same_machine
        && let Some(pid) = held
            .get(labels::LOCK_PID)
            .and_then(|p| p.parse::<u32>().ok())
    {
        let started = held
            .get(labels::LOCK_PID_START)
            .and_then(|s| s.parse().ok());
        let is_me = pid == std::process::id() && started == crate::identity::process_start(pid);
        if !is_me && crate::identity::process_alive(pid, started) == Some(false) {
            return Stale::HolderGone;
        }
    }
    Stale::Fresh
}

/// ` for apply (apply-…)` from a lock's labels, or nothing when it does not say.
pub fn operation_of(labels: &BTreeMap<String, String>) -> String {
    labels
        .get(labels::LOCK_OPERATION)
        .filter(|o| !o.is_empty())
        .map(|o| format!(" for {o}"))
        .unwrap_or_default()
}

fn held_error(o: &Observed, engine_now: SystemTime, environment: &str, host: &str) -> LockError {
    let get = |k: &str| o.lock.labels.get(k).cloned().unwrap_or_else(|| "?".into());
    let expires_at = crate::clock::from_unix(o.last_beat) + ttl_of(&o.lock);
    let expires = match expires_at.duration_since(engine_now) {
        Ok(left) => format!("in {}s unless renewed", left.as_secs()),
        Err(_) => "now".into(),
    };
    LockError::Held {
        owner: get(labels::LOCK_OWNER),
        operation: operation_of(&o.lock.labels),
        machine: get(labels::LOCK_HOSTNAME),
        pid: get(labels::LOCK_PID),
        taken_at: crate::clock::rfc3339(crate::clock::from_unix(o.lock.created)),
        expires,
        environment: environment.to_string(),
        host: host.to_string(),
    }
}

/// What a lock says of its owner (who, which machine and process, how long it holds without a
/// heartbeat) and of what it locks: the labels of a host's lock container and of a Swarm
/// environment's lock config alike, judged by the same `judge`.
pub fn owner_labels(
    config: &LockConfig,
    platform: &str,
    environment: &str,
) -> BTreeMap<String, String> {
    let me = std::process::id();
    BTreeMap::from([
        (labels::LOCK_OWNER.to_string(), config.identity.clone()),
        (labels::LOCK_OPERATION.to_string(), config.operation.clone()),
        (
            labels::LOCK_MACHINE.to_string(),
            config.machine.clone().unwrap_or_default(),
        ),
        (
            labels::LOCK_HOSTNAME.to_string(),
            crate::identity::hostname(),
        ),
        (labels::LOCK_PID.to_string(), me.to_string()),
        (
            labels::LOCK_PID_START.to_string(),
            crate::identity::process_start(me)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
        (
            labels::LOCK_TTL.to_string(),
            config.ttl.as_secs().to_string(),
        ),
        (labels::PLATFORM.to_string(), platform.to_string()),
        (labels::ENVIRONMENT.to_string(), environment.to_string()),
    ])
}

/// Takes the lock (waiting up to `config.wait` for a held one); returns it for `heartbeat` and
/// `release`.
pub async fn acquire<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
    host: &str,
    config: &LockConfig,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Held, LockError> {
    let lock = name(platform, environment);
    let here = config.machine.clone();
    let labels = owner_labels(config, platform, environment);
    let deadline = config.wait.map(|w| std::time::Instant::now() + w);
    let mut waiting_said = false;
    let mut settle = 0u64;
    loop {
        match engine.create_lock(&lock, &labels).await {
            Ok(id) => {
                let held = Held {
                    id,
                    name: lock.clone(),
                    ttl: config.ttl,
                    beats: 0,
                    last_beat: None,
                    resource: labels::for_resource(platform, environment),
                };
                // Heartbeats of locks that are gone: nobody will remove them otherwise.
                if let Ok((_, strays)) = observe(engine, &lock).await {
                    for s in strays {
                        let _ = engine.remove_lock(&s).await;
                    }
                }
                return Ok(held);
            }
            Err(EngineError::Conflict { what }) => tracing::debug!("{host}: {what}"),
            Err(e) => return Err(e.into()),
        }
        let (observed, _) = observe(engine, &lock).await?;
        let Some(o) = observed else {
            // Docker reserves a name before the container can be listed: a lock being created
            // by another run shows as a conflict with nothing behind it for a moment.
            settle += 1;
            if settle > 40 {
                return Err(LockError::Engine(EngineError::Conflict {
                    what: format!("lock {lock} (taken and released repeatedly; try again)"),
                }));
            }
            tokio::time::sleep(Duration::from_millis(50 + 10 * settle)).await;
            continue;
        };
        let now = engine.clock().await?;
        match judge(&o, now, here.as_deref()) {
            Stale::Fresh => {}
            why => {
                tracing::warn!(
                    "{host}: taking over the lock of {} ({})",
                    o.lock
                        .labels
                        .get(labels::LOCK_OWNER)
                        .map(String::as_str)
                        .unwrap_or("?"),
                    if why == Stale::Expired {
                        "expired: no heartbeat within its time to live, by the engine's clock"
                    } else {
                        "its process on this machine is gone"
                    }
                );
                engine.remove_lock(&o.lock.id).await?;
                for s in &o.strays {
                    let _ = engine.remove_lock(s).await;
                }
                continue;
            }
        }
        match deadline {
            Some(d) if std::time::Instant::now() < d => {
                if !waiting_said {
                    progress(&format!(
                        "waiting for the lock held by {}",
                        o.lock
                            .labels
                            .get(labels::LOCK_OWNER)
                            .map(String::as_str)
                            .unwrap_or("?")
                    ));
                    waiting_said = true;
                }
                tokio::time::sleep(WAIT_POLL).await;
            }
            _ => return Err(held_error(&o, now, environment, host)),
        }
    }
}

/// Renews a held lock once: a new heartbeat, then the previous one goes.
pub async fn renew<E: Engine>(engine: &E, held: &mut Held) -> Result<(), EngineError> {
    held.beats += 1;
    let name = format!(
        "{}{}-{}",
        beat_prefix(&held.name),
        &held.id[..held.id.len().min(12)],
        held.beats
    );
    let mut labels = held.resource.clone();
    labels.insert(labels::LOCK_OF.to_string(), held.id.clone());
    let id = engine.create_lock(&name, &labels).await?;
    if let Some(old) = held.last_beat.replace(id) {
        let _ = engine.remove_lock(&old).await;
    }
    Ok(())
}

/// Renews the lock every third of its TTL for as long as it is polled: run it beside the work
/// (the work's end drops it).
pub async fn heartbeat<E: Engine>(engine: &E, held: &mut Held) {
    let every = held.ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = renew(engine, held).await {
            tracing::warn!("could not renew the lock {}: {e}", held.name);
        }
    }
}

/// Releases a lock this run holds (its heartbeats first).
pub async fn release<E: Engine>(engine: &E, held: &Held) {
    if let Ok((Some(o), _)) = observe(engine, &held.name).await
        && o.lock.id == held.id
    {
        let prefix = beat_prefix(&held.name);
        if let Ok(list) = engine.list_containers(&prefix).await {
            for b in list
                .iter()
                .filter(|b| b.labels.get(labels::LOCK_OF) == Some(&held.id))
            {
                let _ = engine.remove_lock(&b.id).await;
            }
        }
    }
    if let Some(b) = &held.last_beat {
        let _ = engine.remove_lock(b).await;
    }
    if let Err(e) = engine.remove_lock(&held.id).await {
        tracing::warn!(
            "could not release the lock {}: {e}; it expires by itself",
            held.name
        );
    }
}

/// Removes the lock whoever holds it (`fleetpin unlock`); returns its owner when there was one.
pub async fn force_release<E: Engine>(
    engine: &E,
    platform: &str,
    environment: &str,
) -> Result<Option<String>, EngineError> {
    let lock = name(platform, environment);
    let (observed, strays) = observe(engine, &lock).await?;
    for s in strays {
        let _ = engine.remove_lock(&s).await;
    }
    match observed {
        Some(o) => {
            let prefix = beat_prefix(&lock);
            for b in engine.list_containers(&prefix).await? {
                if b.labels.get(labels::LOCK_OF) == Some(&o.lock.id) {
                    let _ = engine.remove_lock(&b.id).await;
                }
            }
            engine.remove_lock(&o.lock.id).await?;
            Ok(Some(
                o.lock
                    .labels
                    .get(labels::LOCK_OWNER)
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

    fn quiet(_: &str) {}

    fn config(who: &str, ttl: u64) -> LockConfig {
        LockConfig {
            identity: who.into(),
            operation: "apply apply-1".into(),
            machine: Some("this-machine".into()),
            ttl: Duration::from_secs(ttl),
            wait: None,
        }
    }

    fn foreign_lock(engine: &MemoryEngine, machine: &str, pid: &str) -> String {
        let labels = BTreeMap::from([
            (labels::LOCK_OWNER.to_string(), "alice".to_string()),
            (labels::LOCK_MACHINE.to_string(), machine.to_string()),
            (labels::LOCK_PID.to_string(), pid.to_string()),
            (labels::LOCK_TTL.to_string(), "60".to_string()),
        ]);
        futures::executor::block_on(engine.create_lock(&name("acme", "prod"), &labels)).unwrap()
    }

    #[tokio::test]
    async fn a_held_lock_refuses_until_it_expires_by_the_engines_clock() {
        let engine = MemoryEngine::new(vec![]);
        foreign_lock(&engine, "other-machine", "1");
        match acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet).await {
            Err(LockError::Held { owner, .. }) => assert_eq!(owner, "alice"),
            other => panic!("{other:?}"),
        }
        engine.advance(61);
        let held = acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet)
            .await
            .unwrap();
        let list = engine.list_containers(&name("acme", "prod")).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].labels[labels::LOCK_OWNER], "bob");
        release(&engine, &held).await;
        assert!(
            engine
                .list_containers(&name("acme", "prod"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_held_lock_names_the_operation_that_holds_it() {
        let engine = MemoryEngine::new(vec![]);
        let alice = LockConfig {
            operation: "rollback rollback-9".into(),
            ..config("alice", 60)
        };
        let held = acquire(&engine, "acme", "prod", "h1", &alice, &quiet)
            .await
            .unwrap();
        let list = engine.list_containers(&name("acme", "prod")).await.unwrap();
        assert_eq!(
            list[0].labels[labels::LOCK_OPERATION],
            "rollback rollback-9"
        );
        // Another machine's run finds it held, and by what.
        let bob = LockConfig {
            machine: Some("other-machine".into()),
            ..config("bob", 60)
        };
        let e = acquire(&engine, "acme", "prod", "h1", &bob, &quiet)
            .await
            .unwrap_err();
        assert!(
            e.to_string().starts_with("locked by alice on ")
                && e.to_string().contains(") for rollback rollback-9 since "),
            "{e}"
        );
        release(&engine, &held).await;
    }

    #[tokio::test]
    async fn heartbeats_keep_a_long_run_locked_past_its_ttl() {
        let engine = MemoryEngine::new(vec![]);
        let mut held = acquire(&engine, "acme", "prod", "h1", &config("alice", 30), &quiet)
            .await
            .unwrap();
        for _ in 0..6 {
            engine.advance(10);
            renew(&engine, &mut held).await.unwrap();
        }
        // 60 s after it was taken, twice its TTL, the lock is still fresh.
        assert!(matches!(
            acquire(&engine, "acme", "prod", "h1", &config("bob", 30), &quiet).await,
            Err(LockError::Held { .. })
        ));
        let beats = engine
            .list_containers(&beat_prefix(&name("acme", "prod")))
            .await
            .unwrap();
        assert_eq!(beats.len(), 1, "one heartbeat at a time: {beats:?}");
        // A prune filtered on the platform label spares heartbeats as it spares the lock.
        assert_eq!(beats[0].labels[labels::PLATFORM], "acme");
        assert_eq!(beats[0].labels[labels::ENVIRONMENT], "prod");
        assert_eq!(beats[0].labels[labels::LOCK_OF], held.id);
        // Once the holder stops renewing, it expires.
        engine.advance(31);
        acquire(&engine, "acme", "prod", "h1", &config("bob", 30), &quiet)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_dead_holder_is_taken_over_only_on_this_machine() {
        let engine = MemoryEngine::new(vec![]);
        // Another machine, a pid that does not exist here: not ours to judge.
        foreign_lock(&engine, "some-other-machine", &(u32::MAX - 1).to_string());
        assert!(matches!(
            acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet).await,
            Err(LockError::Held { .. })
        ));
        // No machine id recorded (a laptop without one): never taken over on a guess.
        let engine = MemoryEngine::new(vec![]);
        foreign_lock(&engine, "", &(u32::MAX - 1).to_string());
        assert!(
            acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet)
                .await
                .is_err()
        );
        // This machine without an id of its own: it cannot tell either.
        let engine = MemoryEngine::new(vec![]);
        foreign_lock(&engine, "this-machine", &(u32::MAX - 1).to_string());
        let mut anonymous = config("bob", 60);
        anonymous.machine = None;
        assert!(
            acquire(&engine, "acme", "prod", "h1", &anonymous, &quiet)
                .await
                .is_err()
        );
        // This machine, a dead pid: taken over at once.
        acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet)
            .await
            .unwrap();
        // This machine, a live process (pid 1 is always there): held.
        let engine = MemoryEngine::new(vec![]);
        foreign_lock(&engine, "this-machine", "1");
        assert!(matches!(
            acquire(&engine, "acme", "prod", "h1", &config("bob", 60), &quiet).await,
            Err(LockError::Held { .. })
        ));
    }
}
