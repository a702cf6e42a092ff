//! The plan (in the spirit of `terraform plan`: every host named, one line per change, a
//! summary) and the per-host report of what apply and rollback did.

use crate::host::report::{ActionStatus, HostReport, HostStatus};
use crate::ops::deploy::PlanDoc;
use crate::plan::{Change, ChangeKind};
use crate::render::Style;

fn kind_mark(kind: ChangeKind, style: Style) -> String {
    use ChangeKind::*;
    match kind {
        Create => style.green("+"),
        Upgrade | Downgrade | Change | Reconfigure | Restart | Scale => style.yellow("~"),
        RemoveOrphan => style.red("-"),
        Conflict => style.red("!"),
        Unchanged => " ".into(),
    }
}

fn versions(c: &Change) -> String {
    match (&c.from, &c.to) {
        (Some(f), Some(t)) if f == t => t.clone(),
        (Some(f), Some(t)) => format!("{f} -> {t}"),
        (None, Some(t)) => format!("-> {t}"),
        (Some(f), None) => format!("{f} ->"),
        (None, None) => String::new(),
    }
}

/// A plan in the spirit of `terraform plan`: every host named, one line per change, a summary.
pub fn plan(doc: &PlanDoc, verbose: bool, style: Style) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Plan for {} ({}, manifest {})\n\n",
        style.bold(&doc.environment),
        doc.platform,
        crate::git::short_id(&doc.commit)
    ));
    let width = doc
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .map(|c| c.service.len())
        .max()
        .unwrap_or(8);
    let vwidth = doc
        .hosts
        .iter()
        .flat_map(|h| &h.changes)
        .map(|c| versions(c).len())
        .max()
        .unwrap_or(8);
    for h in &doc.hosts {
        out.push_str(&format!(
            "{}  {}\n",
            style.bold(&h.host),
            style.dim(&h.endpoint)
        ));
        if let Some(e) = &h.error {
            out.push_str(&format!("  {}\n", style.red(e)));
            continue;
        }
        if h.repair {
            out.push_str(&format!(
                "  {} an interrupted run left unfinished work here; apply repairs it first\n",
                style.yellow("!")
            ));
        }
        let shown: Vec<_> = h
            .changes
            .iter()
            .filter(|c| verbose || c.kind != ChangeKind::Unchanged)
            .collect();
        if h.changes.iter().all(|c| c.kind == ChangeKind::Unchanged) && !verbose && !h.repair {
            out.push_str(&format!("  {}\n", style.dim("no changes")));
            continue;
        }
        for c in shown {
            let mut line = format!(
                "  {} {:<width$}  {:<vwidth$}  {}{}",
                kind_mark(c.kind, style),
                c.service,
                versions(c),
                c.kind.as_str(),
                if c.relaunch.is_some() {
                    " (retained)"
                } else {
                    ""
                },
            );
            if let Some(o) = c.order {
                line.push_str(&style.dim(&format!("  {}", o.as_str())));
            }
            if c.interruption {
                line.push_str(&style.yellow(", brief interruption (it publishes a host port)"));
            }
            if let Some(r) = &c.reason
                && (c.kind != ChangeKind::Reconfigure || verbose)
            {
                line.push_str(&style.dim(&format!("  ({r})")));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let mut parts: Vec<String> = doc
        .summary
        .iter()
        .filter(|(k, _)| k.as_str() != "unchanged" && k.as_str() != "unreachable")
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        parts.push("no changes".into());
    }
    let unreachable = doc.summary.get("unreachable").copied().unwrap_or(0);
    out.push_str(&format!(
        "\nPlan: {} on {} host{}{}.\n",
        parts.join(", "),
        doc.hosts.len(),
        if doc.hosts.len() == 1 { "" } else { "s" },
        if unreachable > 0 {
            style.red(&format!(", {unreachable} unreachable"))
        } else {
            String::new()
        }
    ));
    if let Some(h) = &doc.held {
        out.push_str(&style.yellow(&format!(
            "Changes are {h}: apply refuses them until then (--override-window \"REASON\" for an emergency).\n"
        )));
    }
    out
}

/// What apply or rollback did, per host.
pub fn apply_report(reports: &[HostReport], style: Style) -> String {
    let mut out = String::from("\n");
    for r in reports {
        let status = match r.status {
            HostStatus::Converged => style.green("converged"),
            HostStatus::Unchanged => style.dim("unchanged"),
            HostStatus::Skipped => style.yellow("skipped"),
            HostStatus::RolledBack => style.yellow("rolled-back"),
            other => style.red(&format!("{other:?}").to_lowercase()),
        };
        out.push_str(&format!("{}  {status}\n", style.bold(&r.host)));
        for a in &r.actions {
            let st = match a.status {
                ActionStatus::Done => style.green("done"),
                ActionStatus::Failed => style.red("FAILED"),
                ActionStatus::Skipped => style.yellow("skipped"),
            };
            let from_to = match (&a.from, &a.to) {
                (Some(f), Some(t)) if f != t => format!("{f} -> {t}"),
                (_, Some(t)) => t.clone(),
                (Some(f), None) => f.clone(),
                _ => String::new(),
            };
            let kind = if a.relaunched {
                format!("{} (retained)", a.kind.as_str())
            } else {
                a.kind.as_str().to_string()
            };
            out.push_str(&format!(
                "  {:<12} {:<14} {:<24} {st}  {}\n",
                a.service,
                kind,
                from_to,
                style.dim(&format!(
                    "{:.1}s (health {:.1}s)",
                    a.seconds, a.health_seconds
                ))
            ));
            if let Some(d) = &a.detail
                && a.status != ActionStatus::Done
            {
                out.push_str(&format!("      {d}\n"));
            }
            if let Some(u) = &a.unstartable
                && a.status == ActionStatus::Done
            {
                out.push_str(&format!("      {}\n", style.yellow(&u.describe())));
            }
        }
        for n in &r.repaired {
            out.push_str(&format!("  {} {n}\n", style.yellow("repaired:")));
        }
        for i in &r.images_removed {
            let line = if i.deleted {
                format!("unused image removed: {}", i.reference)
            } else {
                format!(
                    "unused tag removed: {} (other tags still name the image)",
                    i.reference
                )
            };
            out.push_str(&format!("  {}\n", style.dim(&line)));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("  {}\n", style.red(e)));
        }
        if let Some(f) = &r.failure {
            if !f.health_log.is_empty() {
                out.push_str("  last health checks:\n");
                for l in &f.health_log {
                    out.push_str(&format!("    {l}\n"));
                }
            }
            if !f.logs.trim().is_empty() {
                out.push_str("  last log lines of the failed container:\n");
                for l in f.logs.lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
    }
    out.push_str(&rollout_summary(reports));
    out
}

/// After a failure, where each host stands: changed, put back, failed, untouched.
fn rollout_summary(reports: &[HostReport]) -> String {
    if reports.len() < 2
        || reports
            .iter()
            .all(|r| r.ok() || r.status == HostStatus::Unreachable)
    {
        return String::new();
    }
    let of = |f: &dyn Fn(&HostReport) -> bool| -> Vec<&str> {
        reports
            .iter()
            .filter(|r| f(r))
            .map(|r| r.host.as_str())
            .collect()
    };
    let mut parts = Vec::new();
    for (what, hosts) in [
        ("changed", of(&|r| r.status == HostStatus::Converged)),
        ("put back", of(&|r| r.status == HostStatus::RolledBack)),
        (
            "failed",
            of(&|r| {
                matches!(
                    r.status,
                    HostStatus::Failed | HostStatus::Locked | HostStatus::Refused
                )
            }),
        ),
        ("unreachable", of(&|r| r.status == HostStatus::Unreachable)),
        (
            "untouched",
            of(&|r| {
                matches!(
                    r.status,
                    HostStatus::Skipped | HostStatus::Interrupted | HostStatus::Unchanged
                )
            }),
        ),
    ] {
        if !hosts.is_empty() {
            parts.push(format!("{what}: {}", hosts.join(", ")));
        }
    }
    format!("\nHosts — {}.\n", parts.join("; "))
}

/// A Swarm environment's plan: one target (the cluster), one line per service with its replicas.
pub fn swarm_plan(p: &crate::ops::swarm::SwarmPlan, style: Style) -> String {
    let mut out = format!("{} {} (swarm {})\n", p.platform, p.environment, p.endpoint);
    for c in &p.changes {
        let v = match &c.from {
            Some(f) if *f == c.to => c.to.clone(),
            Some(f) => format!("{f} -> {}", c.to),
            None => format!("-> {}", c.to),
        };
        let r = match c.replicas_from {
            Some(f) if f != c.replicas => format!("replicas {f} -> {}", c.replicas),
            _ => format!("replicas {}", c.replicas),
        };
        out.push_str(&format!(
            "  {} {:<20} {:<12} {}  {}\n",
            kind_mark(c.kind, style),
            c.service,
            c.kind.as_str(),
            v,
            r
        ));
    }
    for r in &p.retire {
        out.push_str(&format!(
            "  retires on {} ({}), moving {} from plain hosts:\n",
            r.host, r.endpoint, p.environment
        ));
        for c in &r.containers {
            out.push_str(&format!(
                "    stop {} ({}): kept aside until the services converged, started again if one fails\n",
                c.name, c.version
            ));
        }
        for k in &r.kept {
            out.push_str(&format!("    remove {k} once the move succeeded\n"));
        }
        for n in &r.networks {
            out.push_str(&format!(
                "    remove network {n}: the overlay of that name replaces it\n"
            ));
        }
    }
    if !p.retire.is_empty() {
        out.push_str(&format!(
            "  {}: the plain containers stop before the Swarm services start (a published port moves to the tasks)\n",
            style.yellow("interruption")
        ));
    }
    let pending = p.pending();
    out.push_str(&format!(
        "{pending} change{} pending\n",
        if pending == 1 { "" } else { "s" }
    ));
    out
}
