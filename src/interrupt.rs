//! Ctrl-C during apply or rollback: the step in flight is finished or undone (a swap always ends
//! healthy or restored), no new service or host is started, locks are released, and fleetpin
//! exits 130 with its report. Killing fleetpin outright (SIGKILL) is what `repair` is for.
//! The agent also takes SIGTERM (what systemd and `docker stop` send) the same way, and waits
//! between syncs on `until_interrupted`, so an idle agent stops at once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU32 = AtomicU32::new(0);
static TERMINATE: AtomicBool = AtomicBool::new(false);
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn raise() {
    PRESSES.fetch_add(1, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
    WAKE.notify_waiters();
}

/// Resolves once interrupted (at once when it already is).
pub async fn until_interrupted() {
    loop {
        let woken = WAKE.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if interrupted() {
            return;
        }
        woken.await;
    }
}

/// Also takes SIGTERM as an interruption, on the current tokio runtime (once): the agent's way.
pub fn install_terminate() {
    install();
    if TERMINATE.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        while term.recv().await.is_some() {
            let first = !interrupted();
            raise();
            if first {
                eprintln!("terminated: finishing the step in flight, then stopping…");
            }
        }
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How many times Ctrl-C was pressed so far: a hook (`ops::hooks`) stops at a press during its
/// run, also after the one that interrupted the command.
pub fn presses() -> u32 {
    PRESSES.load(Ordering::SeqCst)
}

/// Starts listening for SIGINT on `rt`.
pub fn install_on(rt: &tokio::runtime::Runtime) {
    let _guard = rt.enter();
    install();
}

/// Starts listening for SIGINT on the current tokio runtime (once: later calls do nothing).
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            raise();
            eprintln!(
                "\ninterrupted: finishing the step in flight, then stopping (service stays up)…"
            );
            // A second Ctrl-C is not a way out of a half-done swap: keep finishing.
            while tokio::signal::ctrl_c().await.is_ok() {
                PRESSES.fetch_add(1, Ordering::SeqCst);
                eprintln!(
                    "still finishing the step in flight; `kill -9` would leave it for the next run to repair"
                );
            }
        }
    });
}

/// Fault injection for the reliability tests: with `FLEETPIN_FAULT_PAUSE=NAME`, fleetpin stops at
/// the step NAME of a swap (`pulling`, `created`, `stopped`, `renamed-old`, `renamed-new`,
/// `started`, and start-first's `aliased`),
/// prints `fault point NAME` to stderr and waits `FLEETPIN_FAULT_PAUSE_SECS` (default 600), so a
/// test can kill it, its engine or its network there. Unset, it costs one environment lookup per
/// step.
pub async fn fault_point(name: &str) {
    if std::env::var("FLEETPIN_FAULT_PAUSE").is_ok_and(|v| v == name) {
        eprintln!("fault point {name}");
        let secs = std::env::var("FLEETPIN_FAULT_PAUSE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600);
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
}
