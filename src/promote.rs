//! `fleetpin promote FROM TO`: move a tested release one step down the path by copying FROM's
//! pins to TO as the digests FROM's hosts actually run, so what reaches prod is byte for byte what
//! was tested. Nothing is deployed; the manifest is edited in place and committed (a commit is
//! reversible, so no confirmation is asked).
//!
//! The gates are pure functions of the observed state and the manifest: the path (TO right after
//! FROM), convergence (FROM runs exactly its pins, healthy), one digest per service across FROM's
//! hosts, and semver order. `--force` skips the first two (the hotfix path), never the digest.

use crate::app::{Config, Exit};
use crate::cli::{Format, PromoteArgs, Selection};
use crate::deploy::{self, Prepared};
use crate::engine::{Engine, Health};
use crate::git;
use crate::manifest::Manifest;
use crate::manifest::pin::VersionPin;
use crate::ops::pins;
use crate::plan::ChangeKind;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub name: &'static str,
    pub passed: bool,
    /// Skipped with --force / --allow-downgrade.
    pub overridden: bool,
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinMove {
    pub service: String,
    /// TO's pin before (none when TO did not pin the service yet).
    pub from: Option<String>,
    /// The pin written: `tag@sha256:…`.
    pub to: String,
}

/// The path gate: TO must come right after FROM in the order of `environments`.
pub fn path_gate(m: &Manifest, from: &str, to: &str, force: bool) -> Gate {
    let order: Vec<&String> = m.environments.keys().collect();
    let i = order.iter().position(|e| *e == from);
    let j = order.iter().position(|e| *e == to);
    let ok = matches!((i, j), (Some(i), Some(j)) if j == i + 1);
    let path = order
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" -> ");
    Gate {
        name: "path",
        passed: ok,
        overridden: !ok && force,
        details: if ok {
            vec![format!("{from} -> {to} follows the path {path}")]
        } else {
            vec![format!(
                "{to} does not come right after {from} in the path {path} (going backwards or skipping a stage needs --force)"
            )]
        },
    }
}

/// The convergence gate: every host of FROM runs exactly FROM's pins, running and healthy.
pub fn converged_gate(prepared: &[Prepared], force: bool) -> Gate {
    let mut off = Vec::new();
    for p in prepared {
        if let Some(e) = &p.error {
            off.push(format!("{}: {e}", p.host.name));
            continue;
        }
        for c in &p.changes {
            match c.kind {
                ChangeKind::Unchanged => {
                    if let Some(cur) = p.view.current.get(&c.service)
                        && cur.health == Health::Starting
                    {
                        off.push(format!("{}: {} is still starting", p.host.name, c.service));
                    }
                }
                ChangeKind::RemoveOrphan => {}
                kind => off.push(format!(
                    "{}: {} {} ({})",
                    p.host.name,
                    c.service,
                    kind.as_str(),
                    match (&c.from, &c.to) {
                        (Some(f), Some(t)) if f != t => format!("runs {f}, pinned {t}"),
                        (_, Some(t)) => format!(
                            "pinned {t}{}",
                            c.reason
                                .as_ref()
                                .map(|r| format!(", {r}"))
                                .unwrap_or_default()
                        ),
                        _ => c.reason.clone().unwrap_or_default(),
                    }
                )),
            }
        }
    }
    let ok = off.is_empty();
    Gate {
        name: "converged",
        passed: ok,
        overridden: !ok && force,
        details: if ok {
            vec![format!(
                "every host runs its pins, healthy ({} hosts)",
                prepared.len()
            )]
        } else {
            off
        },
    }
}

/// The semver gate over the moves.
pub fn order_gate(m: &Manifest, to: &str, moves: &[PinMove], allow_downgrade: bool) -> Gate {
    let mut down = Vec::new();
    for mv in moves {
        let Some(old) = m.environments[to].versions.get(&mv.service) else {
            continue;
        };
        let Ok(new) = VersionPin::parse(&mv.to) else {
            continue;
        };
        if old.value.compare(&new) == Some(std::cmp::Ordering::Greater) {
            down.push(format!(
                "{}: {} -> {} goes down",
                mv.service, old.value.tag, new.tag
            ));
        }
    }
    let ok = down.is_empty();
    Gate {
        name: "semver",
        passed: ok,
        overridden: !ok && allow_downgrade,
        details: if ok {
            vec!["no pin goes down".into()]
        } else {
            down
        },
    }
}

pub fn run(config: &Config, args: &PromoteArgs) -> Exit {
    let fail = |msg: &str| {
        eprintln!("{} {msg}", config.err.red("error:"));
        Exit::Failure
    };
    if matches!(config.format, Format::Markdown | Format::Html) {
        return fail("--format markdown and html are for `fleetpin audit`; use table or json");
    }
    let loaded = match crate::app::load_or_report(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let m = &loaded.manifest;
    for e in [&args.from, &args.to] {
        if !m.environments.contains_key(e) {
            return fail(&format!(
                "there is no environment `{e}` (environments: {})",
                m.environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if args.from == args.to {
        return fail("FROM and TO are the same environment");
    }
    let from_env = &m.environments[&args.from];
    for s in &args.services {
        if !from_env.versions.contains_key(s) {
            return fail(&format!(
                "`{s}` is not pinned in {}, so there is nothing to promote",
                args.from
            ));
        }
    }
    if !args.dry_run
        && !args.no_commit
        && let Err(e) = git::ensure_clean(&loaded.path)
    {
        return fail(&e.to_string());
    }
    let select = Selection {
        services: args.services.clone(),
        hosts: vec![],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let prepared = match rt.block_on(deploy::prepare(config, &loaded, &args.from, &select)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let services: Vec<String> = from_env
        .versions
        .keys()
        .filter(|s| args.services.is_empty() || args.services.contains(s))
        .cloned()
        .collect();

    // The digest FROM's hosts run, per service: all hosts must agree.
    let (digests, digest_problems) = rt.block_on(running_digests(m, &prepared, &services));
    let mut gates = vec![
        path_gate(m, &args.from, &args.to, args.force),
        converged_gate(&prepared, args.force),
    ];
    let digest_gate = Gate {
        name: "digest",
        passed: digest_problems.is_empty(),
        overridden: false,
        details: if digest_problems.is_empty() {
            vec![format!(
                "{} service(s), one digest each across {}",
                digests.len(),
                args.from
            )]
        } else {
            digest_problems
        },
    };
    let to_env = &m.environments[&args.to];
    let moves: Vec<PinMove> = services
        .iter()
        .filter_map(|s| {
            // The tag of what runs, not of FROM's pin: with --force they may differ.
            let (tag, digest) = digests.get(s)?;
            let new = format!("{tag}@{digest}");
            let old = to_env.versions.get(s).map(|p| p.value.to_string());
            (old.as_deref() != Some(new.as_str())).then(|| PinMove {
                service: s.clone(),
                from: old,
                to: new,
            })
        })
        .collect();
    gates.push(digest_gate);
    gates.push(order_gate(m, &args.to, &moves, args.allow_downgrade));
    let refused = gates.iter().any(|g| !g.passed && !g.overridden);

    let mut committed = None;
    let mut wrote = false;
    let mut error = None;
    if !refused && !moves.is_empty() && !args.dry_run {
        let edits: Vec<(String, String)> = moves
            .iter()
            .map(|m| (m.service.clone(), m.to.clone()))
            .collect();
        let tag_of = |p: &str| {
            VersionPin::parse(p)
                .map(|v| v.tag)
                .unwrap_or_else(|_| p.to_string())
        };
        let message = pins::message(
            "promote",
            &format!("{} -> {}", args.from, args.to),
            &moves
                .iter()
                .map(|mv| {
                    (
                        mv.service.clone(),
                        mv.from
                            .as_deref()
                            .map(tag_of)
                            .unwrap_or_else(|| "none".into()),
                        tag_of(&mv.to),
                    )
                })
                .collect::<Vec<_>>(),
        );
        let commit_message = (!args.no_commit).then_some(message.as_str());
        match pins::write_and_commit(&loaded.path, &loaded.text, &args.to, &edits, commit_message) {
            Ok(id) => {
                wrote = true;
                committed = id.map(|id| (id, message.clone()));
            }
            Err((written, e)) => {
                wrote = written;
                error = Some(e);
            }
        }
    }

    if config.format == Format::Json {
        let doc = serde_json::json!({
            "from": args.from,
            "to": args.to,
            "dry_run": args.dry_run,
            "refused": refused,
            "gates": gates,
            "pins": moves,
            "written": wrote,
            "commit": committed.as_ref().map(|(id, _)| id),
            "error": error,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        let st = config.out;
        println!("Promote {} -> {}\n", st.bold(&args.from), st.bold(&args.to));
        println!("Gates:");
        for g in &gates {
            let mark = if g.passed {
                st.green("✓")
            } else if g.overridden {
                st.yellow("!")
            } else {
                st.red("✗")
            };
            let note = if g.overridden { " (overridden)" } else { "" };
            println!("  {mark} {}{note}", g.name);
            for d in &g.details {
                println!("      {d}");
            }
        }
        println!();
        if moves.is_empty() && !refused {
            println!(
                "Nothing to promote: {} already pins what {} runs.",
                args.to, args.from
            );
        } else if !moves.is_empty() {
            println!("Pins of {}:", args.to);
            for mv in &moves {
                println!(
                    "  {}  {} -> {}",
                    mv.service,
                    mv.from.as_deref().unwrap_or("(not pinned)"),
                    mv.to
                );
            }
        }
        if refused {
            println!("\n{}", st.red("Refused: nothing was written."));
        } else if args.dry_run {
            println!("\n--dry-run: nothing was written.");
        } else if let Some((id, message)) = &committed {
            println!("\ncommitted {}: {message}", &id[..12]);
            println!("deploy it with: fleetpin apply {}", args.to);
        } else if wrote {
            println!(
                "\n--no-commit: {} edited, not committed.",
                loaded.path.display()
            );
        }
        if let Some(e) = &error {
            eprintln!("{} {e}", config.err.red("error:"));
        }
    }
    if refused || error.is_some() {
        Exit::Failure
    } else {
        Exit::Success
    }
}

/// Per service, the tag and the one registry digest FROM's hosts run (from the image's
/// RepoDigests), and what prevents one.
async fn running_digests(
    m: &Manifest,
    prepared: &[Prepared],
    services: &[String],
) -> (BTreeMap<String, (String, String)>, Vec<String>) {
    let mut seen: BTreeMap<String, BTreeMap<String, Vec<(String, String)>>> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in prepared {
        let Some(engine) = &p.engine else { continue };
        for s in services {
            if !p.desired.iter().any(|r| &r.service == s) {
                continue;
            }
            let Some(cur) = p.view.current.get(s) else {
                problems.push(format!("{}: {s} does not run there", p.host.name));
                continue;
            };
            let repo = &m.services[s].image;
            let digest = match engine.inspect_image(&cur.image_id).await {
                Ok(Some(img)) => img
                    .repo_digests
                    .iter()
                    .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string)),
                Ok(None) => None,
                Err(e) => {
                    problems.push(format!("{}: {s}: {e}", p.host.name));
                    continue;
                }
            };
            let tag = cur
                .labels
                .get(crate::plan::labels::VERSION)
                .and_then(|v| VersionPin::parse(v).ok())
                .map(|v| v.tag)
                .unwrap_or_default();
            match digest {
                Some(d) => seen
                    .entry(s.clone())
                    .or_default()
                    .entry(d)
                    .or_default()
                    .push((p.host.name.clone(), tag)),
                None => problems.push(format!(
                    "{}: the image {s} runs has no registry digest for {repo} (built locally, never pushed?)",
                    p.host.name
                )),
            }
        }
    }
    let mut out = BTreeMap::new();
    for (s, by_digest) in seen {
        if by_digest.len() > 1 {
            let list: Vec<String> = by_digest
                .iter()
                .map(|(d, hosts)| {
                    let names: Vec<&str> = hosts.iter().map(|(h, _)| h.as_str()).collect();
                    format!("{} on {}", &d[..19.min(d.len())], names.join(", "))
                })
                .collect();
            problems.push(format!(
                "{s}: the hosts run different images under one pin: {}",
                list.join("; ")
            ));
        } else if let Some((d, hosts)) = by_digest.into_iter().next() {
            let tag = hosts.first().map(|(_, t)| t.clone()).unwrap_or_default();
            out.insert(s, (tag, d));
        }
    }
    (out, problems)
}
