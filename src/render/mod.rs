//! How fleetpin talks to people: colours only on a terminal and never with NO_COLOR or
//! `--no-color`, miette snippets for manifest problems, and a plain `file:line:column` first line
//! that editors and grep understand.

pub mod audit;

use crate::manifest::diagnostics::ManifestError;
use miette::{GraphicalReportHandler, GraphicalTheme};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when asked not to refuse it and the stream is a terminal.
    pub fn detect(no_color_flag: bool, stream_is_tty: bool) -> Style {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color_flag && !no_color_env && stream_is_tty,
        }
    }

    pub fn for_stderr(no_color_flag: bool) -> Style {
        Style::detect(no_color_flag, std::io::stderr().is_terminal())
    }

    pub fn for_stdout(no_color_flag: bool) -> Style {
        Style::detect(no_color_flag, std::io::stdout().is_terminal())
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Every problem of a manifest, rendered with its snippet, then a count.
pub fn manifest_error(e: &ManifestError, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    // Beyond this many, snippets stop helping: the rest is counted (JSON has them all).
    const SHOWN: usize = 100;
    for d in e.diagnostics(SHOWN) {
        let _ = handler.render_report(&mut out, &d);
        out.push('\n');
    }
    if e.problems.len() > SHOWN {
        out.push_str(&format!(
            "… and {} more problems (all of them with --format json)\n",
            e.problems.len() - SHOWN
        ));
    }
    out.push_str(&style.red(&format!("error: {e}")));
    out.push('\n');
    out
}

fn kind_mark(kind: crate::plan::ChangeKind, style: Style) -> String {
    use crate::plan::ChangeKind::*;
    match kind {
        Create => style.green("+"),
        Upgrade | Downgrade | Change | Reconfigure | Restart => style.yellow("~"),
        RemoveOrphan => style.red("-"),
        Conflict => style.red("!"),
        Unchanged => " ".into(),
    }
}

fn versions(c: &crate::plan::Change) -> String {
    match (&c.from, &c.to) {
        (Some(f), Some(t)) if f == t => t.clone(),
        (Some(f), Some(t)) => format!("{f} -> {t}"),
        (None, Some(t)) => format!("-> {t}"),
        (Some(f), None) => format!("{f} ->"),
        (None, None) => String::new(),
    }
}

/// A plan in the spirit of `terraform plan`: every host named, one line per change, a summary.
pub fn plan(doc: &crate::deploy::PlanDoc, verbose: bool, style: Style) -> String {
    use crate::plan::ChangeKind;
    let mut out = String::new();
    out.push_str(&format!(
        "Plan for {} ({}, manifest {})\n\n",
        style.bold(&doc.environment),
        doc.platform,
        short_commit(&doc.commit)
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
                "  {} {:<width$}  {:<vwidth$}  {}",
                kind_mark(c.kind, style),
                c.service,
                versions(c),
                c.kind.as_str(),
            );
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
    out
}

fn short_commit(c: &str) -> &str {
    if c.len() == 40 && c.chars().all(|x| x.is_ascii_hexdigit()) {
        &c[..12]
    } else {
        c
    }
}

/// What apply or rollback did, per host.
pub fn apply_report(reports: &[crate::apply::HostReport], style: Style) -> String {
    use crate::apply::{ActionStatus, HostStatus};
    let mut out = String::from("\n");
    for r in reports {
        let status = match r.status {
            HostStatus::Converged => style.green("converged"),
            HostStatus::Unchanged => style.dim("unchanged"),
            HostStatus::Skipped => style.yellow("skipped"),
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
            out.push_str(&format!(
                "  {:<12} {:<14} {:<24} {st}  {}\n",
                a.service,
                a.kind.as_str(),
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
        }
        for n in &r.repaired {
            out.push_str(&format!("  {} {n}\n", style.yellow("repaired:")));
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
    out
}
