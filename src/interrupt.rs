//! Ctrl-C during apply or rollback: the step in flight is finished or undone (a swap always ends
//! healthy or restored), no new service or host is started, locks are released, and fleetpin
//! exits 130 with its report. Killing fleetpin outright (SIGKILL) is what `repair` is for.
//! The agent also takes SIGTERM (what systemd and `docker stop` send) the same way, and waits
//! between syncs on `until_interrupted`, so an idle agent stops at once.

use crate::cancel::Cancel;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static TOKEN: OnceLock<Cancel> = OnceLock::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
static TERMINATE: AtomicBool = AtomicBool::new(false);
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether the token was cancelled by SIGTERM (the agent's `docker stop`) rather than Ctrl-C.
pub fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// The command line's one cancellation token: Ctrl-C (and SIGTERM for the agent) cancel it. Only
/// the faces read it; they hand it to the operations they call.
pub fn token() -> Cancel {
    TOKEN.get_or_init(Cancel::new).clone()
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
            TERMINATED.store(true, Ordering::SeqCst);
            token().cancel();
        }
    });
}

/// Whether Ctrl-C (or SIGTERM) reached this process.
pub fn interrupted() -> bool {
    token().is_cancelled()
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
        // A second Ctrl-C is not a way out of a half-done swap: it only counts (the CLI's
        // progress sink says so; a hook stops at it).
        while tokio::signal::ctrl_c().await.is_ok() {
            token().cancel();
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
    use std::io::Write;
    if std::env::var("FLEETPIN_FAULT_PAUSE").is_ok_and(|v| v == name) {
        // A test hook, not output: the fault tests wait for this exact line on stderr.
        let _ = writeln!(std::io::stderr(), "fault point {name}");
        let secs = std::env::var("FLEETPIN_FAULT_PAUSE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600);
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    }
}
