//! `fleetpin promote FROM TO`: pin TO to the digests FROM runs, behind the gates of
//! `ops::promote`, and commit (the manifest file alone), then push it with `--push` or
//! `git: {push: true}`. Nothing is deployed. The manifest's hooks and webhooks bracket the
//! write: `pre_promote` once the gates passed (a failure writes nothing), `post_promote` or
//! `on_failure` and the notifications after; `--dry-run`, a refusal and nothing to promote run
//! none.

use crate::cli::{Format, PromoteArgs};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::git;
use crate::manifest::pin::VersionPin;
use crate::ops::deploy::{self, Selection};
use crate::ops::event::{Event, Outcome};
use crate::ops::pins;
use crate::ops::promote::{
    Gate, PinMove, converged_gate, order_gate, path_gate, running_digests, swarm_converged_gate,
    swarm_digests,
};

pub fn run(config: &Config, args: &PromoteArgs) -> Result<Exit> {
    let fail = |msg: &str| Err(Error::msg(msg));
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let m = &loaded.manifest;
    for e in [&args.from, &args.to] {
        super::environment(&loaded, e)?;
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
    if !args.dry_run {
        super::require_push_for_pull(
            &loaded,
            &args.to,
            !args.no_commit,
            super::wants_push(m, args.push, args.no_push),
            "promote",
        )?;
    }
    if !args.dry_run && !args.no_commit {
        git::ensure_committable(&loaded.path)?;
    }
    let select = Selection {
        services: args.services.clone(),
        hosts: vec![],
    };
    let rt = super::runtime();
    let services: Vec<String> = from_env
        .versions
        .keys()
        .filter(|s| args.services.is_empty() || args.services.contains(s))
        .cloned()
        .collect();

    // The digest FROM runs, per service: all its hosts (or all a Swarm service's tasks) agree.
    let (converged, (digests, digest_problems)) = if from_env.is_swarm() {
        let rows = rt.block_on(async {
            let engine =
                crate::ops::swarm::connect(&loaded, &args.from, config.connect_timeout).await?;
            crate::ops::swarm::audit(&loaded, &args.from, &select, &engine).await
        })?;
        (
            swarm_converged_gate(&rows, args.force),
            swarm_digests(&rows),
        )
    } else {
        let prepared = rt.block_on(deploy::prepare(
            &loaded,
            &args.from,
            &select,
            config.connect_timeout,
        ))?;
        (
            converged_gate(&prepared, args.force),
            rt.block_on(running_digests(m, &prepared, &services)),
        )
    };
    let mut gates = vec![path_gate(m, &args.from, &args.to, args.force), converged];
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
    let mut push_failed = false;
    let mut wrote = false;
    let mut error = None;
    let will_write = !refused && !moves.is_empty() && !args.dry_run;
    let event = Event::new(
        "promote",
        &m.platform,
        &args.to,
        deploy::source_commit(&loaded)
            .as_deref()
            .unwrap_or("uncommitted"),
        &deploy::operator(&loaded.path),
    )
    .pins(&args.from, &moves, None);
    if will_write {
        super::pre_hook(config, &loaded, &rt, &event)?;
    }
    if will_write {
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

    let push = super::wants_push(m, args.push, args.no_push);
    if config.format == Format::Json {
        let pushed = match &committed {
            Some((id, _)) if push => {
                let (doc, failed) = super::push_commit(config, &loaded.path, id);
                push_failed = failed;
                doc
            }
            _ => serde_json::Value::Null,
        };
        let doc = serde_json::json!({
            "from": args.from,
            "to": args.to,
            "dry_run": args.dry_run,
            "refused": refused,
            "gates": gates,
            "pins": moves,
            "written": wrote,
            "commit": committed.as_ref().map(|(id, _)| id),
            "push": pushed,
            "error": error,
        });
        super::print_json(&doc);
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
            if push {
                push_failed = super::push_commit(config, &loaded.path, id).1;
            }
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
    if will_write {
        let mut event = event
            .pins(&args.from, &moves, Some(wrote))
            .ended(if error.is_some() {
                Outcome::Failure
            } else {
                Outcome::Success
            });
        event.pin_commit = committed.map(|(id, _)| id);
        event.notes.extend(error.clone());
        super::after_work(config, &loaded, &rt, &event);
    }
    Ok(if refused || error.is_some() || push_failed {
        Exit::Failure
    } else {
        Exit::Success
    })
}
