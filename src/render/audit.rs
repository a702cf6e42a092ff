//! The audit's four faces: a terminal table, JSON (serde, in `audit`), Markdown for pasting into a
//! ticket, and one self-contained HTML file (no external asset: it is opened from a mail or a
//! ticket, offline) that sorts and filters in the browser. All start with the platform matrix —
//! services down, environments across, each cell the pin, marked where a host differs — because
//! that one screen is what an operations team looks at every morning.

use crate::ops::audit::{Audit, Row, Status};
use crate::ops::swarm::SwarmAuditRow;
use crate::render::Style;

/// A pin short enough for a matrix cell: `2.4.1@3b8d168`.
pub fn short_pin(pin: &str) -> String {
    match pin.split_once("@sha256:") {
        Some((tag, d)) => {
            let tag = if tag.chars().count() > 12 {
                format!("{}…", tag.chars().take(11).collect::<String>())
            } else {
                tag.to_string()
            };
            format!("{tag}@{}", &d[..7.min(d.len())])
        }
        None if pin.chars().count() > 20 => {
            format!("{}…", pin.chars().take(19).collect::<String>())
        }
        None => pin.to_string(),
    }
}

/// `short_pin` of a pin that may be absent (`-`).
fn short_opt_pin(pin: &Option<String>) -> String {
    pin.as_deref().map(short_pin).unwrap_or_else(|| "-".into())
}

/// The columns of the hosts' rows, the pull agents and a Swarm environment: one list each for
/// the table, Markdown and HTML faces, so that they cannot disagree.
const HOST_COLUMNS: [&str; 11] = [
    "env",
    "host",
    "service",
    "pinned",
    "running",
    "digest",
    "state",
    "since",
    "deployed by",
    "commit",
    "status",
];
const AGENT_COLUMNS: [&str; 6] = ["env", "host", "agent", "commit", "synced at", "reason"];
const SWARM_COLUMNS: [&str; 7] = [
    "service",
    "pinned",
    "running",
    "digest",
    "replicas",
    "tasks per node",
    "status",
];

fn short_digest(d: &Option<String>) -> String {
    d.as_deref()
        .map(|d| d.trim_start_matches("sha256:").chars().take(12).collect())
        .unwrap_or_else(|| "-".into())
}

fn since(r: &Row) -> String {
    r.since
        .as_deref()
        .map(|s| s.replace('T', " ").chars().take(16).collect())
        .unwrap_or_else(|| "-".into())
}

fn state(r: &Row) -> String {
    match (&r.state, &r.health) {
        (Some(s), Some(h)) if h != "none" => format!("{s}/{h}"),
        (Some(s), _) => s.clone(),
        _ => "-".into(),
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

fn commit(r: &Row) -> String {
    match r.commit.as_deref() {
        Some(c) if c.len() == 40 => c[..8].to_string(),
        Some(c) => c.to_string(),
        None => "-".into(),
    }
}

fn matrix_cell(a: &Audit, env: &str, service: &str) -> (String, bool) {
    match a.pins.get(env).and_then(|p| p.get(service)) {
        Some(pin) => (short_pin(pin), a.differs(env, service)),
        None => ("-".into(), a.differs(env, service)),
    }
}

fn summary_line(a: &Audit) -> String {
    let parts: Vec<String> = a.summary.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        "{} rows on {} environment(s): {}",
        a.rows.len(),
        a.environments.len(),
        parts.join(", ")
    )
}

pub fn table(a: &Audit, style: Style) -> String {
    use tabled::builder::Builder;
    use tabled::settings::Style as TStyle;
    let mut out = format!(
        "{} — fleet audit at {} (manifest {})\n\n",
        style.bold(&a.platform),
        a.generated_at,
        short_commit(&a.commit)
    );
    let mut b = Builder::default();
    let mut head = vec!["service".to_string()];
    head.extend(a.environments.iter().cloned());
    b.push_record(head);
    for s in &a.services {
        let mut line = vec![s.clone()];
        for e in &a.environments {
            let (cell, differs) = matrix_cell(a, e, s);
            line.push(if differs {
                style.red(&format!("{cell} *"))
            } else {
                cell
            });
        }
        b.push_record(line);
    }
    let mut t = b.build();
    t.with(TStyle::rounded());
    out.push_str(&t.to_string());
    out.push_str("\n  * a host of that environment differs from the pin (see below)\n\n");

    let mut b = Builder::default();
    b.push_record(HOST_COLUMNS);
    for r in &a.rows {
        let status = match r.status {
            Status::Ok => style.green("ok"),
            Status::Unreachable | Status::Conflict => style.red(r.status.as_str()),
            _ => style.yellow(r.status.as_str()),
        };
        b.push_record([
            r.environment.clone(),
            r.host.clone(),
            r.service.clone(),
            short_opt_pin(&r.pinned),
            short_opt_pin(&r.running),
            short_digest(&r.digest),
            state(r),
            since(r),
            opt(&r.deployed_by),
            commit(r),
            status,
        ]);
    }
    let mut t = b.build();
    t.with(TStyle::sharp());
    out.push_str(&t.to_string());
    out.push('\n');
    let problems: Vec<&Row> = a.rows.iter().filter(|r| r.status != Status::Ok).collect();
    if !problems.is_empty() {
        out.push('\n');
        for r in problems {
            out.push_str(&format!(
                "{} {}/{}/{}: {}\n",
                style.yellow(r.status.as_str()),
                r.environment,
                r.host,
                r.service,
                r.detail.as_deref().unwrap_or("")
            ));
        }
    }
    if !a.agents.is_empty() {
        out.push_str(&agents_table(a, style));
    }
    for (env, why) in &a.held {
        out.push_str(&style.yellow(&format!("\n{env}: changes are {why}\n")));
    }
    out.push_str(&format!("\n{}\n", summary_line(a)));
    out
}

/// The pull agents, one line per host.
fn agents_table(a: &Audit, style: Style) -> String {
    use tabled::builder::Builder;
    use tabled::settings::Style as TStyle;
    let mut b = Builder::default();
    b.push_record(AGENT_COLUMNS);
    for r in &a.agents {
        let state = match r.state.as_str() {
            "ok" => style.green("ok"),
            "unreachable" | "error" | "failed" => style.red(&r.state),
            other => style.yellow(other),
        };
        b.push_record([
            r.environment.clone(),
            r.host.clone(),
            state,
            agent_commit(r),
            opt(&r.synced_at),
            opt(&r.reason),
        ]);
    }
    let mut t = b.build();
    t.with(TStyle::sharp());
    format!("\nPull agents:\n{t}\n")
}

/// The commit an agent synced, and the artifact it came from when it follows a registry.
fn agent_commit(r: &crate::ops::audit::AgentRow) -> String {
    let commit = r
        .commit
        .as_deref()
        .map(|c| short_commit(c).to_string())
        .unwrap_or_else(|| "-".into());
    match &r.digest {
        Some(d) => format!("{commit} ({})", &d[..d.len().min(19)]),
        None => commit,
    }
}

fn short_commit(c: &str) -> &str {
    if c.len() == 40 { &c[..12] } else { c }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn markdown(a: &Audit) -> String {
    let mut out = format!(
        "# {} — fleet audit\n\nGenerated {} from manifest commit `{}`. {}.\n\n## Platform matrix\n\n",
        a.platform,
        a.generated_at,
        short_commit(&a.commit),
        summary_line(a)
    );
    out.push_str(&format!("| service | {} |\n", a.environments.join(" | ")));
    out.push_str(&format!(
        "| --- |{}\n",
        " --- |".repeat(a.environments.len())
    ));
    for s in &a.services {
        let cells: Vec<String> = a
            .environments
            .iter()
            .map(|e| {
                let (cell, differs) = matrix_cell(a, e, s);
                if differs {
                    format!("**{}** ⚠", md_escape(&cell))
                } else {
                    md_escape(&cell)
                }
            })
            .collect();
        out.push_str(&format!("| {s} | {} |\n", cells.join(" | ")));
    }
    out.push_str("\n⚠ = a host of that environment differs from the pin.\n\n## Hosts\n\n");
    out.push_str(&md_header(&HOST_COLUMNS));
    for r in &a.rows {
        let status = if r.status == Status::Ok {
            "ok".to_string()
        } else {
            format!("**{}**", r.status.as_str())
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` | {} | {} | {} | `{}` | {} |\n",
            r.environment,
            r.host,
            r.service,
            md_escape(&short_opt_pin(&r.pinned)),
            md_escape(&short_opt_pin(&r.running)),
            short_digest(&r.digest),
            state(r),
            since(r),
            md_escape(&opt(&r.deployed_by)),
            commit(r),
            status
        ));
    }
    let problems: Vec<&Row> = a.rows.iter().filter(|r| r.status != Status::Ok).collect();
    if !problems.is_empty() {
        out.push_str("\n## What is off\n\n");
        for r in problems {
            out.push_str(&format!(
                "- **{}** {}/{}/{}: {}\n",
                r.status.as_str(),
                r.environment,
                r.host,
                r.service,
                md_escape(r.detail.as_deref().unwrap_or(""))
            ));
        }
    }
    if !a.agents.is_empty() {
        out.push_str("\n## Pull agents\n\n");
        out.push_str(&md_header(&AGENT_COLUMNS));
        for r in &a.agents {
            out.push_str(&format!(
                "| {} | {} | {} | `{}` | {} | {} |\n",
                r.environment,
                r.host,
                if r.drift() {
                    format!("**{}**", r.state)
                } else {
                    r.state.clone()
                },
                agent_commit(r),
                opt(&r.synced_at),
                md_escape(&opt(&r.reason))
            ));
        }
    }
    out
}

/// A Markdown table's header and separator lines.
fn md_header(columns: &[&str]) -> String {
    format!(
        "| {} |\n{}|\n",
        columns.join(" | "),
        "| --- ".repeat(columns.len())
    )
}

/// An HTML table's head, up to the opening of its body.
fn html_header(columns: &[&str]) -> String {
    let mut h = String::from("<thead><tr>");
    for c in columns {
        h.push_str(&format!("<th>{c}</th>"));
    }
    h.push_str("</tr></thead><tbody>");
    h
}

/// A cell's short text in `<code>`, the whole of it on hover.
fn code_cell(full: &str, short: &str) -> String {
    format!("<code title=\"{}\">{}</code>", esc(full), esc(short))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d232a;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#5b6570;margin-bottom:16px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}
th,td{border:1px solid #d8dee4;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#f0f3f6;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
td.drift,tr.off td.status{background:#ffe3e0;color:#8a1c12;font-weight:600}
td.ok{color:#1a7f37}
code{font-family:ui-monospace,monospace;font-size:12px}
.controls{margin:8px 0}.controls input,.controls select{font:inherit;padding:3px 6px;margin-right:8px}
.legend{color:#5b6570;font-size:12px;margin-top:4px}
"#;

const JS: &str = r#"
(function(){
  function sortable(table){
    var ths=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,i){
      th.addEventListener('click',function(){
        var asc=!th.classList.contains('sorted-asc');
        Array.prototype.forEach.call(ths,function(o){o.classList.remove('sorted-asc','sorted-desc')});
        th.classList.add(asc?'sorted-asc':'sorted-desc');
        var rows=Array.prototype.slice.call(table.tBodies[0].rows);
        rows.sort(function(a,b){
          var x=a.cells[i].textContent,y=b.cells[i].textContent;
          return asc?x.localeCompare(y,undefined,{numeric:true}):y.localeCompare(x,undefined,{numeric:true});
        });
        rows.forEach(function(r){table.tBodies[0].appendChild(r)});
      });
    });
  }
  document.querySelectorAll('table.sortable').forEach(sortable);
  var text=document.getElementById('filter'),status=document.getElementById('status');
  function filter(){
    var q=text.value.toLowerCase(),s=status.value,shown=0;
    document.querySelectorAll('#rows tbody tr').forEach(function(r){
      var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!s||(s==='off'?r.classList.contains('off'):r.dataset.status===s));
      r.style.display=ok?'':'none';if(ok)shown++;
    });
    document.getElementById('shown').textContent=shown;
  }
  text.addEventListener('input',filter);status.addEventListener('change',filter);filter();
  document.body.dataset.driftCells=document.querySelectorAll('td.drift').length;
  document.body.dataset.ready='1';
})();
"#;

pub fn html(a: &Audit) -> String {
    html_with(a, "")
}

/// The HTML report with `extra` sections (the Swarm environments) after the hosts and agents.
pub fn html_with(a: &Audit, extra: &str) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>{} — fleet audit</title><meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style></head><body>",
        esc(&a.platform)
    ));
    h.push_str(&format!(
        "<h1>{} — fleet audit</h1><div class=\"meta\">Generated {} from manifest commit <code>{}</code>. {}.</div>",
        esc(&a.platform),
        esc(&a.generated_at),
        esc(short_commit(&a.commit)),
        esc(&summary_line(a))
    ));
    h.push_str("<h2>Platform matrix</h2><table id=\"matrix\" class=\"sortable\"><thead><tr><th>service</th>");
    for e in &a.environments {
        h.push_str(&format!("<th>{}</th>", esc(e)));
    }
    h.push_str("</tr></thead><tbody>");
    for s in &a.services {
        h.push_str(&format!("<tr><td>{}</td>", esc(s)));
        for e in &a.environments {
            let (cell, differs) = matrix_cell(a, e, s);
            let full = a
                .pins
                .get(e)
                .and_then(|p| p.get(s))
                .cloned()
                .unwrap_or_default();
            if differs {
                h.push_str(&format!(
                    "<td class=\"drift\" title=\"{}\">{} ⚠</td>",
                    esc(&full),
                    esc(&cell)
                ));
            } else {
                h.push_str(&format!("<td title=\"{}\">{}</td>", esc(&full), esc(&cell)));
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table><div class=\"legend\">⚠ a host of that environment differs from the pin. Click a header to sort.</div>");
    h.push_str("<h2>Hosts</h2><div class=\"controls\"><input id=\"filter\" placeholder=\"filter…\" aria-label=\"filter\"><select id=\"status\" aria-label=\"status\"><option value=\"\">all statuses</option><option value=\"off\">not ok</option>");
    for st in [
        "ok",
        "drift",
        "missing",
        "stopped",
        "unhealthy",
        "rolled-back",
        "orphan",
        "conflict",
        "unreachable",
    ] {
        h.push_str(&format!("<option value=\"{st}\">{st}</option>"));
    }
    h.push_str("</select><span id=\"shown\"></span> rows shown</div>");
    h.push_str("<table id=\"rows\" class=\"sortable\">");
    h.push_str(&html_header(&[&HOST_COLUMNS[..], &["detail"]].concat()));
    for r in &a.rows {
        let off = r.status != Status::Ok;
        h.push_str(&format!(
            "<tr data-status=\"{}\"{}>",
            r.status.as_str(),
            if off { " class=\"off\"" } else { "" }
        ));
        let cells = [
            esc(&r.environment),
            esc(&r.host),
            esc(&r.service),
            code_cell(&opt(&r.pinned), &short_opt_pin(&r.pinned)),
            code_cell(&opt(&r.running), &short_opt_pin(&r.running)),
            code_cell(&opt(&r.digest), &short_digest(&r.digest)),
            esc(&state(r)),
            esc(&since(r)),
            esc(&opt(&r.deployed_by)),
            code_cell(&opt(&r.commit), &commit(r)),
        ];
        for c in cells {
            h.push_str(&format!("<td>{c}</td>"));
        }
        h.push_str(&format!(
            "<td class=\"status{}\">{}</td><td>{}</td></tr>",
            if off { "" } else { " ok" },
            r.status.as_str(),
            esc(r.detail.as_deref().unwrap_or(""))
        ));
    }
    h.push_str("</tbody></table>");
    if !a.agents.is_empty() {
        h.push_str(&agents_html(a));
    }
    h.push_str(extra);
    h.push_str(&format!("<script>{JS}</script></body></html>\n"));
    h
}

/// A Swarm environment audited through its manager: its services, or why it could not be read.
pub type SwarmAudit = (String, std::result::Result<Vec<SwarmAuditRow>, String>);

fn swarm_tasks(r: &SwarmAuditRow) -> String {
    if r.tasks.is_empty() {
        return "-".into();
    }
    r.tasks
        .iter()
        .map(|(node, n)| format!("{node}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Swarm environments after the host matrix, one table each, for the Markdown report.
pub fn swarm_markdown(swarms: &[SwarmAudit]) -> String {
    let mut out = String::new();
    for (env, rows) in swarms {
        out.push_str(&format!("\n## Swarm environment `{env}`\n\n"));
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                out.push_str(&format!("**unreachable**: {}\n", md_escape(e)));
                continue;
            }
        };
        out.push_str(&md_header(&SWARM_COLUMNS));
        for r in rows {
            out.push_str(&format!(
                "| {} | `{}` | `{}` | `{}` | {}/{} | {} | {} |\n",
                r.service,
                short_pin(&r.pinned),
                short_opt_pin(&r.running),
                short_digest(&r.digest),
                r.replicas_running.unwrap_or(0),
                r.replicas,
                swarm_tasks(r),
                if r.status == "ok" {
                    r.status.clone()
                } else {
                    format!("**{}**", r.status)
                }
            ));
        }
    }
    out
}

/// The Swarm environments for the HTML report: one sortable table each.
pub fn swarm_html(swarms: &[SwarmAudit]) -> String {
    let mut h = String::new();
    for (env, rows) in swarms {
        h.push_str(&format!(
            "<h2>Swarm environment <code>{}</code></h2>",
            esc(env)
        ));
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                h.push_str(&format!("<p class=\"status\">unreachable: {}</p>", esc(e)));
                continue;
            }
        };
        h.push_str("<table class=\"sortable swarm\">");
        h.push_str(&html_header(&SWARM_COLUMNS));
        for r in rows {
            let off = r.status != "ok";
            h.push_str(&format!(
                "<tr data-status=\"{}\"{}><td>{}</td><td><code title=\"{}\">{}</code></td><td><code title=\"{}\">{}</code></td><td><code title=\"{}\">{}</code></td><td>{}/{}</td><td>{}</td><td class=\"status{}\">{}</td></tr>",
                esc(&r.status),
                if off { " class=\"off\"" } else { "" },
                esc(&r.service),
                esc(&r.pinned),
                esc(&short_pin(&r.pinned)),
                esc(&opt(&r.running)),
                esc(&short_opt_pin(&r.running)),
                esc(&opt(&r.digest)),
                esc(&short_digest(&r.digest)),
                r.replicas_running.unwrap_or(0),
                r.replicas,
                esc(&swarm_tasks(r)),
                if off { "" } else { " ok" },
                esc(&r.status)
            ));
        }
        h.push_str("</tbody></table>");
    }
    h
}

/// The pull agents, one row per host, as the Markdown and table show them.
fn agents_html(a: &Audit) -> String {
    let mut h = String::from("<h2>Pull agents</h2><table id=\"agents\" class=\"sortable\">");
    h.push_str(&html_header(&AGENT_COLUMNS));
    for r in &a.agents {
        let off = r.drift();
        h.push_str(&format!(
            "<tr data-status=\"{}\"{}><td>{}</td><td>{}</td><td class=\"status{}\">{}</td><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&r.state),
            if off { " class=\"off\"" } else { "" },
            esc(&r.environment),
            esc(&r.host),
            if off { "" } else { " ok" },
            esc(&r.state),
            esc(&opt(&r.commit)),
            esc(&agent_commit(r)),
            esc(&opt(&r.synced_at)),
            esc(&opt(&r.reason))
        ));
    }
    h.push_str("</tbody></table><div class=\"legend\">An agent that is not <b>ok</b> is drift: behind the manifest's commit, holding a release back, failing, or silent for 3 intervals.</div>");
    h
}

/// A Swarm environment's services: pinned and running version, digest, replicas and the running
/// tasks per node.
pub fn swarm_table(env: &str, rows: &[crate::ops::swarm::SwarmAuditRow], style: Style) -> String {
    let mut out = format!("\nswarm {env}\n");
    for r in rows {
        let tasks: Vec<String> = r.tasks.iter().map(|(n, k)| format!("{n}:{k}")).collect();
        let status = if r.status == "ok" {
            style.green("ok")
        } else {
            style.yellow(&r.status)
        };
        out.push_str(&format!(
            "  {:<20} {:<10} running {:<10} {}/{} tasks  {}  {}  {}\n",
            r.service,
            r.pinned,
            r.running.as_deref().unwrap_or("-"),
            r.replicas_running.unwrap_or(0),
            r.replicas,
            if tasks.is_empty() {
                "-".to_string()
            } else {
                tasks.join(" ")
            },
            r.digest
                .as_deref()
                .map(|d| &d[..d.len().min(19)])
                .unwrap_or("-"),
            status
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_shortened_for_cells() {
        let d = "sha256:3b8d16830723a6d7b4f6a7ab503d4c828d8d72dd28ccfaaae581352f32b5a4bf";
        assert_eq!(short_pin(&format!("2.4.1@{d}")), "2.4.1@3b8d168");
        assert_eq!(short_pin("2.4.1"), "2.4.1");
        assert!(
            short_pin(&format!("a-very-long-release-name@{d}"))
                .chars()
                .count()
                <= 20
        );
    }

    #[test]
    fn the_html_report_has_the_pull_agents_with_their_state_and_reason() {
        use crate::ops::audit::AgentRow;
        let agent = |host: &str, state: &str, reason: Option<&str>| AgentRow {
            environment: "prod".into(),
            host: host.into(),
            state: state.into(),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            synced_at: Some("2026-11-30T06:00:00Z".into()),
            result: Some(state.into()),
            reason: reason.map(str::to_string),
            interval_secs: Some(30),
            follows: None,
            digest: None,
        };
        let a = Audit {
            platform: "shop".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            generated_at: "2026-11-30T06:01:00Z".into(),
            environments: vec!["prod".into()],
            services: vec![],
            pins: Default::default(),
            rows: vec![],
            agents: vec![
                agent("web-1", "ok", None),
                agent("web-2", "refused", Some("web <broken> failed its gate")),
            ],
            summary: Default::default(),
            held: Default::default(),
        };
        let page = html(&a);
        let section = page
            .split_once("<h2>Pull agents</h2>")
            .expect("a Pull agents section")
            .1;
        assert!(
            section.contains("<td>web-1</td><td class=\"status ok\">ok</td>"),
            "{section}"
        );
        assert!(
            section.contains("<tr data-status=\"refused\" class=\"off\"><td>prod</td><td>web-2</td><td class=\"status\">refused</td><td><code title=\"0123456789abcdef0123456789abcdef01234567\">0123456789ab</code></td>"),
            "{section}"
        );
        assert!(
            section.contains("web &lt;broken&gt; failed its gate"),
            "{section}"
        );
        let no_agents = html(&Audit {
            agents: vec![],
            ..a
        });
        assert!(!no_agents.contains("Pull agents"));
    }

    #[test]
    fn swarm_environments_have_their_section_in_markdown_and_html() {
        let row = |service: &str, status: &str, tasks: &[(&str, u64)]| SwarmAuditRow {
            service: service.into(),
            pinned: "1.1.0".into(),
            running: Some("1.0.0".into()),
            digest: Some("sha256:3b8d168f00aa".into()),
            replicas: 2,
            replicas_running: Some(tasks.iter().map(|(_, n)| n).sum()),
            tasks: tasks.iter().map(|(n, k)| (n.to_string(), *k)).collect(),
            status: status.into(),
            task_digests: Default::default(),
        };
        let swarms: Vec<SwarmAudit> = vec![
            (
                "prod".into(),
                Ok(vec![
                    row("web", "ok", &[("s1", 1), ("s2", 1)]),
                    row("api", "scale", &[("s1", 3)]),
                ]),
            ),
            ("edge".into(), Err("cannot connect to <manager>".into())),
        ];
        let md = swarm_markdown(&swarms);
        assert!(md.contains("## Swarm environment `prod`"), "{md}");
        assert!(
            md.contains("| web | `1.1.0` | `1.0.0` | `3b8d168f00aa` | 2/2 | s1:1 s2:1 | ok |"),
            "{md}"
        );
        assert!(
            md.contains("| api | `1.1.0` | `1.0.0` | `3b8d168f00aa` | 3/2 | s1:3 | **scale** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "## Swarm environment `edge`\n\n**unreachable**: cannot connect to <manager>"
            ),
            "{md}"
        );
        let h = swarm_html(&swarms);
        assert!(
            h.contains("<h2>Swarm environment <code>prod</code></h2>"),
            "{h}"
        );
        assert!(
            h.contains("<td>3/2</td><td>s1:3</td><td class=\"status\">scale</td>"),
            "{h}"
        );
        assert!(
            h.contains("unreachable: cannot connect to &lt;manager&gt;"),
            "{h}"
        );
    }

    #[test]
    fn html_escapes_everything_it_prints() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
