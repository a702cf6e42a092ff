//! What each command shows of its operation's outcome, on stdout (stderr for errors): the same
//! text and JSON documents whether the outcome came from hosts or from a Swarm cluster. The
//! commands only pick the function; the operations never print.

use crate::cli::Format;
use crate::ops::apply::{ApplyOutcome, ApplyPlan};
use crate::ops::around::Pushed;
use crate::ops::promote::Promoted;
use crate::ops::rollback::RollbackOutcome;
use crate::ops::unlock::{HostUnlock, UnlockOutcome};
use crate::render::{Style, term};
use serde_json::json;

/// How the command line shows things, from its global flags.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub format: Format,
    pub out: Style,
    pub err: Style,
    pub quiet: bool,
    pub verbose: u8,
}

impl Look {
    fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// `error: …` on stderr.
pub fn error(look: Look, message: &str) {
    term::err(&format!("{} {message}", look.err.red("error:")));
}

/// After a run's report, when Ctrl-C stopped it: what that left, so a report whose every line is
/// `done` (the steps in flight finished) is not read as a finished run.
fn say_interrupted(interrupted: bool, command: &str, env: &str) {
    if interrupted {
        term::out(&format!(
            "\ninterrupted: the steps in flight finished and every service kept serving; nothing \
             else was started. Run `fleetpin {command} {env}` again to finish.\n"
        ));
    }
}

fn committed(id: &str, message: &str) {
    term::out(&format!(
        "\ncommitted {}: {message}\n",
        crate::git::short_id(id)
    ));
}

fn pushed(look: Look, commit: &str, p: &Pushed) {
    match (&p.to, &p.error) {
        (Some(to), _) if p.ok => {
            if !look.json() {
                term::out(&format!(
                    "pushed {} to {to}\n",
                    crate::git::short_id(commit)
                ));
                if let Some(pb) = &p.published {
                    term::out(&format!(
                        "published it to {}@{} (tags {})\n",
                        pb.repository,
                        pb.digest,
                        pb.tags.join(", ")
                    ));
                }
            }
        }
        (_, e) => error(look, e.as_deref().unwrap_or("the push failed")),
    }
}

/// The plan `apply` is about to carry out (before it asks).
pub fn apply_plan(look: Look, plan: &ApplyPlan) {
    if look.json() || look.quiet {
        return;
    }
    match plan {
        ApplyPlan::Hosts(h) => term::out(&crate::render::plan::plan(
            h.shown(),
            look.verbose > 0,
            look.out,
        )),
        ApplyPlan::Swarm(s) => {
            term::out(&crate::render::plan::swarm_plan(&s.plan, look.out));
            for w in &s.warnings {
                term::err(&format!("warning: {w}"));
            }
        }
    }
}

pub fn apply(look: Look, outcome: &ApplyOutcome) {
    match outcome {
        ApplyOutcome::Hosts(h) => {
            if h.nothing_to_do && !look.json() && !look.quiet {
                term::out(
                    "Nothing to do: the selected hosts already run what the manifest pins.\n",
                );
            }
            if look.json() {
                term::json(h);
            } else if !look.quiet || !h.ok || h.interrupted {
                term::out(&crate::render::plan::apply_report(&h.hosts, look.out));
                say_interrupted(h.interrupted, "apply", &h.environment);
            }
        }
        ApplyOutcome::Swarm(s) if s.nothing_to_do => {
            if look.json() {
                term::json(&json!({"environment": s.environment, "ok": true, "services": []}));
            } else if !look.quiet {
                term::out("Nothing to do: the services already run what the manifest pins.\n");
            }
        }
        ApplyOutcome::Swarm(s) => {
            if look.json() {
                term::json(s);
            } else if !look.quiet || !s.ok {
                for r in &s.services {
                    term::out(&format!(
                        "{} {} {}: {}\n",
                        if r.ok { "ok    " } else { "FAILED" },
                        r.kind.as_str(),
                        r.service,
                        r.message
                    ));
                }
                for n in &s.notes {
                    term::out(&format!("note: {n}\n"));
                }
            }
        }
    }
}

pub fn rollback(look: Look, outcome: &RollbackOutcome) {
    match outcome {
        RollbackOutcome::Hosts(h) => {
            if look.json() {
                if let (Some(id), Some(p)) = (&h.commit, &h.push) {
                    pushed(look, id, p);
                }
                term::json(h);
                return;
            }
            term::out(&crate::render::plan::apply_report(&h.hosts, look.out));
            say_interrupted(h.interrupted, "rollback", &h.environment);
            if let (Some(id), Some(message)) = (&h.commit, &h.message) {
                committed(id, message);
            }
            if let (Some(id), Some(p)) = (&h.commit, &h.push) {
                pushed(look, id, p);
            }
            for n in &h.notes {
                term::out(&format!("note: {n}\n"));
            }
        }
        RollbackOutcome::Swarm(s) => {
            if look.json() {
                term::json(s);
                return;
            }
            for r in &s.services {
                term::out(&format!(
                    "{} rollback {}: {}\n",
                    if r.ok { "ok    " } else { "FAILED" },
                    r.service,
                    r.message
                ));
            }
            if let (Some(id), Some(message)) = (&s.commit, &s.message) {
                committed(id, message);
            }
            for n in &s.notes {
                term::out(&format!("note: {n}\n"));
            }
        }
    }
}

pub fn promote(look: Look, p: &Promoted) {
    if look.json() {
        if let (Some(id), Some(push)) = (&p.commit, &p.push) {
            pushed(look, id, push);
        }
        term::json(p);
        return;
    }
    let st = look.out;
    let mut text = format!(
        "Promote {} -> {}\n\nGates:\n",
        st.bold(&p.from),
        st.bold(&p.to)
    );
    for g in &p.gates {
        let mark = if g.passed {
            st.green("✓")
        } else if g.overridden {
            st.yellow("!")
        } else {
            st.red("✗")
        };
        let note = if g.overridden { " (overridden)" } else { "" };
        text.push_str(&format!("  {mark} {}{note}\n", g.name));
        for d in &g.details {
            text.push_str(&format!("      {d}\n"));
        }
    }
    text.push('\n');
    if p.pins.is_empty() && !p.refused {
        text.push_str(&format!(
            "Nothing to promote: {} already pins what {} runs.\n",
            p.to, p.from
        ));
    } else if !p.pins.is_empty() {
        text.push_str(&format!("Pins of {}:\n", p.to));
        for mv in &p.pins {
            text.push_str(&format!(
                "  {}  {} -> {}\n",
                mv.service,
                mv.from.as_deref().unwrap_or("(not pinned)"),
                mv.to
            ));
        }
    }
    term::out(&text);
    if p.refused {
        term::out(&format!("\n{}\n", st.red("Refused: nothing was written.")));
    } else if p.dry_run {
        term::out("\n--dry-run: nothing was written.\n");
    } else if let Some(id) = &p.commit {
        committed(id, p.message.as_deref().unwrap_or_default());
        if let Some(push) = &p.push {
            pushed(look, id, push);
        }
        term::out(&format!("deploy it with: fleetpin apply {}\n", p.to));
    } else if p.written {
        term::out(&format!(
            "\n--no-commit: {} edited, not committed.\n",
            p.file
        ));
    }
    if let Some(e) = &p.error {
        error(look, e);
    }
}

/// `fleetpin publish`: where the reference went.
pub fn published(look: Look, p: &crate::ops::publish::Published) {
    if look.json() {
        term::json(p);
        return;
    }
    term::out(&format!(
        "published commit {} to {}@{}\n  tags: {}\n  {} git objects, {} bytes{}\n",
        crate::git::short_id(&p.commit),
        p.repository,
        p.digest,
        p.tags.join(", "),
        p.objects,
        p.bytes,
        if p.files.is_empty() {
            String::new()
        } else {
            format!("; SOPS files: {}", p.files.join(", "))
        }
    ));
}

pub fn unlock(look: Look, outcome: &UnlockOutcome) {
    match outcome {
        UnlockOutcome::Hosts { environment, hosts } => {
            if look.json() {
                term::json(
                    &json!({"environment": environment, "ok": !outcome.failed(), "hosts": hosts}),
                );
                return;
            }
            for h in hosts {
                match h {
                    HostUnlock::Done {
                        host,
                        owner: Some(owner),
                        ..
                    } => term::out(&format!("{host}: removed the lock held by {owner}\n")),
                    HostUnlock::Done { host, .. } => term::out(&format!("{host}: not locked\n")),
                    HostUnlock::Failed { host, error, .. } => {
                        term::err(&format!("{host}: {error}"))
                    }
                }
            }
        }
        UnlockOutcome::Swarm { environment, owner } => {
            if look.json() {
                term::json(
                    &json!({"environment": environment, "ok": true, "removed": owner.is_some(), "owner": owner}),
                );
            } else if !look.quiet {
                match owner {
                    Some(o) => term::out(&format!(
                        "removed the lock of {environment} (held by {o})\n"
                    )),
                    None => term::out(&format!("{environment} was not locked\n")),
                }
            }
        }
    }
}

pub fn plan(look: Look, outcome: &crate::ops::plan::PlanOutcome) {
    use crate::ops::plan::PlanOutcome;
    match outcome {
        PlanOutcome::Hosts { doc, saved } => {
            if let Some(out) = saved
                && !look.quiet
            {
                term::err(&format!(
                    "plan saved to {}; apply it with: fleetpin apply {} --plan {}",
                    out.display(),
                    doc.environment,
                    out.display()
                ));
            }
            if look.json() {
                term::json(doc);
            } else {
                term::out(&crate::render::plan::plan(doc, look.verbose > 0, look.out));
            }
        }
        PlanOutcome::Swarm(p) => {
            if look.json() {
                term::json(p);
            } else {
                term::out(&crate::render::plan::swarm_plan(p, look.out));
            }
        }
    }
}

pub fn history(look: Look, file: &std::path::Path, rows: &[crate::ops::history::Row]) {
    if look.json() {
        term::json(&rows);
    } else if rows.is_empty() {
        term::out(&format!(
            "No pin change in the history of {}.\n",
            file.display()
        ));
    } else {
        term::out(&crate::render::history::table(rows));
    }
}

/// A manifest that is valid: its warnings, then the summary (or the JSON document).
pub fn schema() {
    term::out(&format!("{}\n", crate::manifest::schema::schema_json()));
}

/// The audit in the asked format, as one text (for stdout or `--out FILE`); `plain`: no colour
/// (a file).
pub fn audit_text(look: Look, a: &crate::ops::audit::AuditOutcome, plain: bool) -> String {
    use crate::render::audit as r;
    let style = if plain {
        Style { color: false }
    } else {
        look.out
    };
    let swarm_pages: Vec<r::SwarmAudit> = a
        .swarms
        .iter()
        .map(|(env, rows)| (env.clone(), rows.clone().map_err(|e| e.to_string())))
        .collect();
    let mut text = match (&a.hosts, look.format) {
        (None, _) => String::new(),
        (Some(h), Format::Table) => r::table(h, style),
        (Some(h), Format::Json) if a.swarms.is_empty() => {
            serde_json::to_string_pretty(h).expect("serialises") + "\n"
        }
        (Some(_), Format::Json) => String::new(),
        (Some(h), Format::Markdown) => r::markdown(h) + &r::swarm_markdown(&swarm_pages),
        (Some(h), Format::Html) => r::html_with(h, &r::swarm_html(&swarm_pages)),
    };
    let mut swarm_json = serde_json::Map::new();
    for (env, rows) in &a.swarms {
        match rows {
            Ok(rows) => {
                if look.format == Format::Table {
                    text.push_str(&r::swarm_table(env, rows, style));
                }
                swarm_json.insert(env.clone(), json!({"services": rows}));
            }
            Err(e) => {
                if look.format == Format::Table {
                    text.push_str(&format!("\nswarm {env}: unreachable: {e}\n"));
                }
                swarm_json.insert(env.clone(), json!({"error": e.to_string()}));
            }
        }
    }
    if look.format == Format::Json && !a.swarms.is_empty() {
        let mut doc = a
            .hosts
            .as_ref()
            .map(|h| serde_json::to_value(h).expect("serialises"))
            .unwrap_or_else(|| json!({}));
        if let Some(o) = doc.as_object_mut() {
            o.insert("swarm".into(), serde_json::Value::Object(swarm_json));
        }
        text = serde_json::to_string_pretty(&doc).expect("serialises") + "\n";
    }
    text
}

/// Where the audit went, when it was written to a file.
pub fn audit_written(look: Look, path: &std::path::Path) {
    if !look.quiet {
        term::err(&format!("audit written to {}", path.display()));
    }
}

/// `logs` found no container to read.
pub fn nothing_to_read(look: Look, env: &str) {
    term::err(&format!(
        "{} no container to read in {env} for this selection",
        look.err.yellow("warning:")
    ));
}

/// `import`: every problem of the compose files, located (or one JSON document).
pub fn import_problems(look: Look, list: &[crate::manifest::diagnostics::ManifestError]) {
    if look.json() {
        let problems: Vec<_> = list.iter().flat_map(|m| m.to_json()).collect();
        term::json(&json!({"imported": false, "problems": problems}));
    } else {
        for m in list {
            eprint!("{}", crate::render::manifest_error(m, look.err));
        }
    }
}

/// `import`: where meaning changed, on stderr.
pub fn import_warnings(look: Look, warnings: &[impl std::fmt::Display]) {
    if !look.quiet {
        for w in warnings {
            term::err(&format!("{} {w}", look.err.yellow("warning:")));
        }
    }
}

/// `import`: the manifest on stdout, or where it was written and what to do next.
pub fn imported(look: Look, out: &crate::import::Output, file: Option<&std::path::Path>) {
    let file = file.map(|p| p.display().to_string());
    if look.json() {
        let warnings: Vec<_> = out
            .warnings
            .iter()
            .map(|w| {
                json!({"file": w.file, "line": w.span.line, "column": w.span.column, "message": w.message})
            })
            .collect();
        let mut doc = json!({
            "imported": true,
            "file": file,
            "platform": out.platform,
            "environment": out.environment,
            "services": out.services,
            "hosts": out.hosts,
            "warnings": warnings,
        });
        if file.is_none() {
            doc["manifest"] = json!(out.text);
        }
        term::json(&doc);
    } else if let Some(file) = file {
        if !look.quiet {
            term::out(&format!(
                "{} wrote {file}: platform {}, {} service{}, environment {} on {} host{}\n",
                look.out.green("✓"),
                look.out.bold(&out.platform),
                out.services.len(),
                if out.services.len() == 1 { "" } else { "s" },
                out.environment,
                out.hosts.len(),
                if out.hosts.len() == 1 { "" } else { "s" },
            ));
            term::out(&format!(
                "  next: fleetpin -f {file} validate && fleetpin -f {file} plan {}\n",
                out.environment
            ));
        }
    } else {
        term::out(&out.text);
    }
}

/// `validate`: the warnings, then what the manifest describes (or one JSON document).
pub fn valid(look: Look, loaded: &crate::manifest::Loaded, warnings: &[String]) {
    let m = &loaded.manifest;
    import_warnings(look, warnings);
    let file = loaded.path.display().to_string();
    if look.json() {
        let envs: Vec<_> = m
            .environments
            .iter()
            .map(|(name, e)| {
                json!({
                    "name": name,
                    "hosts": e.hosts.keys().collect::<Vec<_>>(),
                    "pins": e.versions.iter().map(|(s, p)| (s.clone(), serde_json::Value::String(p.value.to_string()))).collect::<serde_json::Map<String, serde_json::Value>>(),
                })
            })
            .collect();
        term::json(&json!({
            "valid": true,
            "file": file,
            "platform": m.platform,
            "services": m.services.keys().collect::<Vec<_>>(),
            "environments": envs,
            "warnings": warnings,
        }));
    } else if !look.quiet {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let path: Vec<String> = m
            .environments
            .iter()
            .map(|(name, e)| {
                format!(
                    "{name} ({} host{}, {} pin{})",
                    e.hosts.len(),
                    plural(e.hosts.len()),
                    e.versions.len(),
                    plural(e.versions.len())
                )
            })
            .collect();
        term::out(&format!(
            "{} {file} is valid: platform {}, {} service{}\n  path: {}\n",
            look.out.green("✓"),
            look.out.bold(&m.platform),
            m.services.len(),
            plural(m.services.len()),
            path.join(" -> ")
        ));
    }
}
