//! Where fleetpin runs: the user and host names (for people), the machine (a stable machine id, not a host name: two jump hosts may both be called `ubuntu`),
//! and whether a process of this machine is still alive. When a fact cannot be known here — no
//! machine id, no /proc (a macOS laptop) — the answer is "unknown", never a guess.

use std::path::Path;

pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The host name, for people to read (never to decide anything).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

/// A stable id of this machine (`/etc/machine-id` on Linux, the platform UUID on macOS), or
/// `None` when there is none to read. `FLEETPIN_MACHINE_ID` overrides it (tests, containers that
/// share one image).
pub fn machine_id() -> Option<String> {
    if let Ok(id) = std::env::var("FLEETPIN_MACHINE_ID") {
        return Some(id).filter(|s| !s.is_empty());
    }
    for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return Some(s.to_string());
            }
        }
    }
    platform_uuid()
}

#[cfg(target_os = "macos")]
fn platform_uuid() -> Option<String> {
    let out = std::process::Command::new("ioreg")
        .args(["-rd1", "-c", "IOPlatformExpertDevice"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("IOPlatformUUID"))
        .and_then(|l| l.split('"').nth(3))
        .map(str::to_string)
}

#[cfg(not(target_os = "macos"))]
fn platform_uuid() -> Option<String> {
    None
}

/// When the process `pid` started (clock ticks since boot, from /proc), so that a pid reused by
/// another process is not taken for the one that held a lock.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is the 1st, starttime the 20th.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a process of this machine is alive: `Some(false)` only when /proc positively says it
/// is gone, a zombie, or another process now has its pid; `None` when this machine cannot tell.
pub fn process_alive(pid: u32, started: Option<u64>) -> Option<bool> {
    if !Path::new("/proc/self/stat").exists() {
        return None;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(false);
    };
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return Some(false);
    }
    match (started, fields.nth(18).and_then(|s| s.parse::<u64>().ok())) {
        (Some(want), Some(have)) if want != have => Some(false),
        _ => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_its_start_time_tells_a_reused_pid() {
        let me = std::process::id();
        let start = process_start(me);
        assert!(start.is_some());
        assert_eq!(process_alive(me, start), Some(true));
        assert_eq!(
            process_alive(me, start.map(|s| s + 1)),
            Some(false),
            "same pid, other start time: another process"
        );
        assert_eq!(process_alive(u32::MAX - 1, None), Some(false));
    }
}
