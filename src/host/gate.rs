//! The health gate a container must pass before the one it replaces is let go.
//!
//! With a healthcheck (the manifest's or the image's) it must report `healthy`; `unhealthy`
//! fails at once. Without one — most Tomcat-style images have none — it must keep running for the
//! service's `update.monitor`: an exit, a restart (RestartCount grows) or a new StartedAt inside
//! that window fails the gate, so a crash-looping release cannot pass by being "up" at the
//! instant it is looked at. `--health-timeout` bounds the whole wait. The decision is the pure
//! `judge`; `watch` polls the engine and asks it.

use crate::engine::{ContainerDetails, Engine, Health, RunState};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);
const SLOWEST_POLL: Duration = Duration::from_millis(500);

/// Gates being watched at once, per engine. A wave of independent services gates them together:
/// twenty containers polled every 100 ms would be 200 inspects a second on one engine, CPU that
/// the starting containers need, so the polling slows as watches add up (one to seven: 100 ms;
/// twenty: 500 ms), about 40 inspects a second per engine at most.
static WATCHING: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// How often a gate looks when `watching` gates are watched on its engine.
pub fn poll_every(watching: usize) -> Duration {
    (POLL * (watching / 4).max(1) as u32).min(SLOWEST_POLL)
}

/// One watch counted on its engine while it lives.
struct Watching(String);

impl Watching {
    fn start(endpoint: &str) -> Watching {
        let mut w = WATCHING.lock().unwrap_or_else(|e| e.into_inner());
        *w.entry(endpoint.to_string()).or_default() += 1;
        Watching(endpoint.to_string())
    }

    fn poll(&self) -> Duration {
        let w = WATCHING.lock().unwrap_or_else(|e| e.into_inner());
        poll_every(w.get(&self.0).copied().unwrap_or(1))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut w = WATCHING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.remove(&self.0);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The longest wait for `healthy` (`--health-timeout`).
    pub timeout: Duration,
    /// How long a container without healthcheck must keep running (`update.monitor`).
    pub monitor: Duration,
}

impl Gate {
    pub fn new(timeout: Duration, monitor: Duration) -> Gate {
        Gate { timeout, monitor }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Wait,
}

/// What the container looked like when the watch began: later restarts are measured from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub started_at: Option<String>,
    pub restart_count: i64,
}

impl Baseline {
    pub fn of(d: &ContainerDetails) -> Baseline {
        Baseline {
            started_at: d.started_at.clone(),
            restart_count: d.restart_count,
        }
    }
}

/// The gate's decision on one look at the container, `elapsed` after the watch began.
pub fn judge(base: &Baseline, now: &ContainerDetails, elapsed: Duration, gate: &Gate) -> Verdict {
    match now.state {
        RunState::Exited | RunState::Dead | RunState::Removing => {
            return Verdict::Fail(format!(
                "the container exited (exit code {})",
                now.exit_code.unwrap_or(-1)
            ));
        }
        RunState::Restarting => {
            return Verdict::Fail("the container is restarting: its process exits".into());
        }
        RunState::Created | RunState::Paused => {
            return Verdict::Fail(
                format!("the container is {:?}, not running", now.state).to_lowercase(),
            );
        }
        RunState::Running => {}
    }
    if now.restart_count > base.restart_count || now.started_at != base.started_at {
        return Verdict::Fail(format!(
            "the container restarted (restart count {}): its process exits",
            now.restart_count
        ));
    }
    match now.health {
        Health::Healthy => return Verdict::Pass,
        Health::Unhealthy => return Verdict::Fail("the health check reports unhealthy".into()),
        Health::None if elapsed >= gate.monitor => return Verdict::Pass,
        Health::None | Health::Starting => {}
    }
    // Without a healthcheck the watch is `monitor` long, whatever `--health-timeout` says.
    if elapsed >= gate.timeout && now.health != Health::None {
        return Verdict::Fail(format!(
            "not healthy after {}s (--health-timeout)",
            gate.timeout.as_secs()
        ));
    }
    Verdict::Wait
}

/// Why a watch did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Judged {
    /// The container failed its gate.
    #[error("{0}")]
    Failed(String),
    /// The engine stopped answering: the container was not judged (interrupted is not failed;
    /// the next run's repair judges it).
    #[error("could not be judged: {0}")]
    Unjudged(String),
}

/// Watches a started container until the gate passes or fails.
pub async fn watch<E: Engine>(engine: &E, id: &str, gate: &Gate) -> Result<(), Judged> {
    let started = Instant::now();
    let watching = Watching::start(engine.endpoint());
    let look = || async {
        engine.inspect_container(id).await.map_err(|e| {
            if e.is_unreachable() {
                Judged::Unjudged(e.to_string())
            } else {
                Judged::Failed(e.to_string())
            }
        })
    };
    let first = look().await?;
    let base = Baseline::of(&first);
    // An engine that never runs the check (Podman without systemd) would leave it `starting`
    // until --health-timeout: `starting` is judged as no healthcheck there (the monitor watch).
    let checks_run = first.health == Health::None || engine.runs_healthchecks().await;
    if !checks_run {
        tracing::warn!(
            "{}: {} has a healthcheck, but this engine (Podman) runs healthchecks only from \
             systemd timers: gated by `update.monitor` ({}s) while it reports `starting`",
            engine.endpoint(),
            first.name,
            gate.monitor.as_secs()
        );
    }
    let mut now = first;
    loop {
        if !checks_run && now.health == Health::Starting {
            now.health = Health::None;
        }
        match judge(&base, &now, started.elapsed(), gate) {
            Verdict::Pass => return Ok(()),
            Verdict::Fail(reason) => return Err(Judged::Failed(reason)),
            Verdict::Wait => {}
        }
        tokio::time::sleep(watching.poll()).await;
        now = look().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_slows_as_gates_add_up_on_one_engine() {
        assert_eq!(poll_every(0), POLL);
        assert_eq!(poll_every(1), POLL);
        assert_eq!(poll_every(7), POLL);
        assert_eq!(poll_every(8), Duration::from_millis(200));
        assert_eq!(poll_every(12), Duration::from_millis(300));
        assert_eq!(poll_every(20), SLOWEST_POLL);
        assert_eq!(poll_every(1000), SLOWEST_POLL);
        let a = Watching::start("tcp://gate-test-a:2375");
        let others: Vec<Watching> = (0..11)
            .map(|_| Watching::start("tcp://gate-test-a:2375"))
            .collect();
        let b = Watching::start("tcp://gate-test-b:2375");
        assert_eq!(a.poll(), Duration::from_millis(300), "12 on engine a");
        assert_eq!(b.poll(), POLL, "engine b has its own count");
        drop(others);
        assert_eq!(a.poll(), POLL);
    }
    use std::collections::BTreeMap;

    fn details(state: RunState, health: Health, restarts: i64, started: &str) -> ContainerDetails {
        ContainerDetails {
            id: "c".into(),
            name: "n".into(),
            state,
            health,
            health_log: vec![],
            started_at: Some(started.into()),
            restart_count: restarts,
            exit_code: Some(1),
            restart_policy: "unless-stopped".into(),
            image: "r/app:1".into(),
            image_id: "i".into(),
            labels: BTreeMap::new(),
            networks: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        }
    }

    const GATE: Gate = Gate {
        timeout: Duration::from_secs(120),
        monitor: Duration::from_secs(10),
    };
    const T0: &str = "2026-11-30T00:00:00.1Z";

    fn base() -> Baseline {
        Baseline::of(&details(RunState::Running, Health::None, 0, T0))
    }

    #[test]
    fn without_healthcheck_it_must_keep_running_for_the_monitor_window() {
        let up = details(RunState::Running, Health::None, 0, T0);
        assert_eq!(
            judge(&base(), &up, Duration::from_secs(4), &GATE),
            Verdict::Wait
        );
        assert_eq!(
            judge(&base(), &up, Duration::from_secs(10), &GATE),
            Verdict::Pass
        );
    }

    #[test]
    fn a_short_health_timeout_does_not_cut_the_monitor_window() {
        let short = Gate::new(Duration::from_secs(5), Duration::from_secs(10));
        let up = details(RunState::Running, Health::None, 0, T0);
        assert_eq!(
            judge(&base(), &up, Duration::from_secs(7), &short),
            Verdict::Wait
        );
        assert_eq!(
            judge(&base(), &up, Duration::from_secs(10), &short),
            Verdict::Pass
        );
    }

    #[test]
    fn an_exit_or_a_restart_inside_the_window_fails_it() {
        let exited = details(RunState::Exited, Health::None, 0, T0);
        assert!(matches!(
            judge(&base(), &exited, Duration::from_secs(4), &GATE),
            Verdict::Fail(r) if r.contains("exited")
        ));
        // Restarted by the engine between two looks: running again, but not the same process.
        let restarted = details(RunState::Running, Health::None, 1, "2026-11-30T00:00:04.2Z");
        assert!(matches!(
            judge(&base(), &restarted, Duration::from_secs(5), &GATE),
            Verdict::Fail(r) if r.contains("restarted")
        ));
        let moved = details(RunState::Running, Health::None, 0, "2026-11-30T00:00:04.2Z");
        assert!(matches!(
            judge(&base(), &moved, Duration::from_secs(5), &GATE),
            Verdict::Fail(_)
        ));
        let restarting = details(RunState::Restarting, Health::None, 3, T0);
        assert!(matches!(
            judge(&base(), &restarting, Duration::from_secs(1), &GATE),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn with_healthcheck_healthy_passes_and_unhealthy_fails_at_once() {
        let b = base();
        let starting = details(RunState::Running, Health::Starting, 0, T0);
        assert_eq!(
            judge(&b, &starting, Duration::from_secs(60), &GATE),
            Verdict::Wait
        );
        assert!(matches!(
            judge(&b, &starting, Duration::from_secs(120), &GATE),
            Verdict::Fail(r) if r.contains("--health-timeout")
        ));
        let healthy = details(RunState::Running, Health::Healthy, 0, T0);
        assert_eq!(
            judge(&b, &healthy, Duration::from_millis(1), &GATE),
            Verdict::Pass
        );
        let sick = details(RunState::Running, Health::Unhealthy, 0, T0);
        assert!(matches!(
            judge(&b, &sick, Duration::ZERO, &GATE),
            Verdict::Fail(_)
        ));
    }
}
