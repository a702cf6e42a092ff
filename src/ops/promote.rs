//! Promotion (`fleetpin promote FROM TO`): move a tested release one step down the path by copying FROM's
//! pins to TO as the digests FROM's hosts actually run, so what reaches prod is byte for byte what
//! was tested. Nothing is deployed; the manifest is edited in place and committed (a commit is
//! reversible, so no confirmation is asked).
//!
//! The gates are pure functions of the observed state and the manifest: the path (TO right after
//! FROM), convergence (FROM runs exactly its pins, healthy), one digest per service across FROM's
//! hosts, and semver order. `--force` skips the first two (the hotfix path), never the digest.

use crate::engine::{Engine, Health, reference};
use crate::manifest::Manifest;
use crate::manifest::pin::VersionPin;
use crate::ops::deploy::Prepared;
use crate::ops::swarm::SwarmAuditRow;
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

pub use crate::ops::event::PinMove;

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
    converged(
        off,
        force,
        format!(
            "every host runs its pins, healthy ({} hosts)",
            prepared.len()
        ),
    )
}

/// The convergence gate: passed with `ok_line`, or refused (overridable) with what is off.
fn converged(off: Vec<String>, force: bool, ok_line: String) -> Gate {
    let ok = off.is_empty();
    Gate {
        name: "converged",
        passed: ok,
        overridden: !ok && force,
        details: if ok { vec![ok_line] } else { off },
    }
}

/// The convergence gate of a Swarm FROM: every selected service runs its pin (same spec), with
/// all its replicas running.
pub fn swarm_converged_gate(rows: &[SwarmAuditRow], force: bool) -> Gate {
    let mut off = Vec::new();
    for r in rows {
        let running = r.replicas_running.unwrap_or(0);
        if r.status != "ok" {
            off.push(format!(
                "{}: {} (runs {}, pinned {})",
                r.service,
                r.status,
                r.running.as_deref().unwrap_or("nothing"),
                r.pinned
            ));
        } else if running != r.replicas {
            off.push(format!(
                "{}: {running} of {} replicas running",
                r.service, r.replicas
            ));
        }
    }
    converged(
        off,
        force,
        format!(
            "every service runs its pin with all its replicas ({} services)",
            rows.len()
        ),
    )
}

/// Per service of a Swarm FROM, the tag and the one digest its running tasks run, and what
/// prevents one (no task, no registry digest, tasks on two digests during an update).
pub fn swarm_digests(rows: &[SwarmAuditRow]) -> (BTreeMap<String, (String, String)>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for r in rows {
        let tag = r
            .running
            .as_deref()
            .and_then(|v| VersionPin::parse(v).ok())
            .map(|v| v.tag)
            .unwrap_or_default();
        match r.task_digests.len() {
            1 => {
                let d = r.task_digests.iter().next().expect("one").clone();
                out.insert(r.service.clone(), (tag, d));
            }
            0 if r.replicas_running.unwrap_or(0) == 0 => {
                problems.push(format!("{}: no task runs", r.service))
            }
            0 => problems.push(format!(
                "{}: its tasks run an image without a registry digest (pushed nowhere?)",
                r.service
            )),
            n => problems.push(format!(
                "{}: its tasks run {n} different digests (an update under way?)",
                r.service
            )),
        }
    }
    (out, problems)
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

/// Per service, the tag and the one registry digest FROM's hosts run (from the image's
/// RepoDigests), and what prevents one.
pub async fn running_digests(
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
                Ok(Some(img)) => reference::digest_for(&img.repo_digests, repo),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, status: &str, running: (u64, u64), digests: &[&str]) -> SwarmAuditRow {
        SwarmAuditRow {
            service: service.into(),
            pinned: "1.1.0".into(),
            running: Some(if status == "ok" { "1.1.0" } else { "1.0.0" }.into()),
            digest: digests.first().map(|d| d.to_string()),
            replicas: running.1,
            replicas_running: Some(running.0),
            tasks: Default::default(),
            status: status.into(),
            task_digests: digests.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_swarm_is_converged_when_each_service_runs_its_pin_on_every_replica() {
        let ok = [row("web", "ok", (2, 2), &["sha256:aa"])];
        assert!(swarm_converged_gate(&ok, false).passed);
        let off = [
            row("web", "upgrade", (2, 2), &["sha256:aa"]),
            row("api", "ok", (1, 2), &["sha256:bb"]),
        ];
        let g = swarm_converged_gate(&off, false);
        assert!(!g.passed && !g.overridden);
        assert_eq!(
            g.details,
            [
                "web: upgrade (runs 1.0.0, pinned 1.1.0)",
                "api: 1 of 2 replicas running"
            ]
        );
        assert!(swarm_converged_gate(&off, true).overridden);
    }

    #[test]
    fn a_swarm_service_promotes_the_one_digest_its_tasks_run() {
        let rows = [
            row("web", "ok", (2, 2), &["sha256:aa"]),
            row("api", "ok", (2, 2), &["sha256:aa", "sha256:bb"]),
            row("db", "missing", (0, 1), &[]),
        ];
        let (digests, problems) = swarm_digests(&rows);
        assert_eq!(
            digests.get("web"),
            Some(&("1.1.0".to_string(), "sha256:aa".to_string()))
        );
        assert_eq!(digests.len(), 1);
        assert_eq!(
            problems,
            [
                "api: its tasks run 2 different digests (an update under way?)",
                "db: no task runs"
            ]
        );
    }
}

pub use op::*;

/// The operation: the gates, then the pins of TO written and committed (authored by the actor)
/// and pushed. Nothing is deployed.
mod op {
    use super::{
        Gate, PinMove, converged_gate, order_gate, path_gate, running_digests,
        swarm_converged_gate, swarm_digests,
    };
    use crate::manifest::Loaded;
    use crate::manifest::pin::VersionPin;
    use crate::ops::around::{self, Pushed};
    use crate::ops::context::Ctx;
    use crate::ops::deploy::{self, Selection};
    use crate::ops::error::OpResult;
    use crate::ops::event::{Event, Outcome};
    use serde::Serialize;

    #[derive(Debug, Clone, Default)]
    pub struct PromoteInput {
        pub from: String,
        pub to: String,
        pub services: Vec<String>,
        /// Override the path and converged gates.
        pub force: bool,
        pub allow_downgrade: bool,
        pub dry_run: bool,
        pub no_commit: bool,
        pub push: bool,
        pub no_push: bool,
        /// `--override-window "REASON"`: promote although a deploy window of TO holds changes.
        pub override_window: Option<String>,
    }

    /// The JSON `promote --format json` prints.
    #[derive(Debug, Clone, Serialize)]
    pub struct Promoted {
        pub from: String,
        pub to: String,
        pub dry_run: bool,
        pub refused: bool,
        pub gates: Vec<Gate>,
        pub pins: Vec<PinMove>,
        pub written: bool,
        pub commit: Option<String>,
        pub push: Option<Pushed>,
        pub error: Option<String>,
        #[serde(skip)]
        pub message: Option<String>,
        /// The manifest file, for "edited, not committed".
        #[serde(skip)]
        pub file: String,
    }

    impl Promoted {
        pub fn failed(&self) -> bool {
            self.refused || self.error.is_some() || self.push.as_ref().is_some_and(|p| !p.ok)
        }
    }

    pub async fn promote(ctx: &Ctx, loaded: &Loaded, input: PromoteInput) -> OpResult<Promoted> {
        let m = &loaded.manifest;
        for e in [&input.from, &input.to] {
            deploy::environment(loaded, e)?;
        }
        if input.from == input.to {
            return Err(crate::ops::error::OpError::Invalid(
                "FROM and TO are the same environment".into(),
            ));
        }
        let from_env = &m.environments[&input.from];
        deploy::check_pinned(
            &input.from,
            from_env,
            &input.services,
            "so there is nothing to promote",
        )?;
        if !input.dry_run {
            around::require_push_for_pull(
                loaded,
                &input.to,
                !input.no_commit,
                around::wants_push_in(loaded, &input.to, input.push, input.no_push),
                "promote",
            )?;
        }
        if !input.dry_run && !input.no_commit {
            crate::git::ensure_committable(&loaded.path)?;
        }
        let select = Selection {
            services: input.services.clone(),
            hosts: vec![],
        };
        let services: Vec<String> = from_env
            .versions
            .keys()
            .filter(|s| input.services.is_empty() || input.services.contains(s))
            .cloned()
            .collect();

        // The digest FROM runs, per service: all its hosts (or all a Swarm service's tasks) agree.
        let (converged, (digests, digest_problems)) = if from_env.is_swarm() {
            let engine =
                crate::ops::swarm::connect(loaded, &input.from, ctx.connect_timeout).await?;
            let rows =
                crate::ops::swarm::audit(loaded, &input.from, &select, &engine, &ctx.keys).await?;
            (
                swarm_converged_gate(&rows, input.force),
                swarm_digests(&rows),
            )
        } else {
            let prepared =
                deploy::prepare(loaded, &input.from, &select, ctx.connect_timeout, &ctx.keys)
                    .await?;
            (
                converged_gate(&prepared, input.force),
                running_digests(m, &prepared, &services).await,
            )
        };
        let mut gates = vec![path_gate(m, &input.from, &input.to, input.force), converged];
        let digest_gate = Gate {
            name: "digest",
            passed: digest_problems.is_empty(),
            overridden: false,
            details: if digest_problems.is_empty() {
                vec![format!(
                    "{} service(s), one digest each across {}",
                    digests.len(),
                    input.from
                )]
            } else {
                digest_problems
            },
        };
        let to_env = &m.environments[&input.to];
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
        gates.push(order_gate(m, &input.to, &moves, input.allow_downgrade));
        let refused = gates.iter().any(|g| !g.passed && !g.overridden);

        let mut out = Promoted {
            from: input.from.clone(),
            to: input.to.clone(),
            dry_run: input.dry_run,
            refused,
            gates,
            pins: moves,
            written: false,
            commit: None,
            push: None,
            error: None,
            message: None,
            file: loaded.path.display().to_string(),
        };
        if refused || out.pins.is_empty() || input.dry_run {
            return Ok(out);
        }
        // Promoting into TO changes it: a deploy window of TO holds it like apply.
        let hold = crate::ops::windows::hold_of(ctx, loaded, &input.to).await;
        let window = crate::ops::windows::gate(
            "promote into",
            &input.to,
            hold.as_ref(),
            input.override_window.as_deref(),
        )?;
        let op = ctx.op("promote", &input.to);
        let mut event = Event::new(
            "promote",
            &m.platform,
            &input.to,
            deploy::source_commit(loaded)
                .as_deref()
                .unwrap_or("uncommitted"),
            &ctx.actor.id,
        )
        .pins(&input.from, &out.pins, None);
        event.window_override = window.clone();
        around::pre_hook(&op, loaded, &event).await?;
        let edits: Vec<(String, String)> = out
            .pins
            .iter()
            .map(|m| (m.service.clone(), m.to.clone()))
            .collect();
        let tag_of = |p: &str| {
            VersionPin::parse(p)
                .map(|v| v.tag)
                .unwrap_or_else(|_| p.to_string())
        };
        let message = crate::ops::pins::message(
            "promote",
            &format!("{} -> {}", input.from, input.to),
            &out.pins
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
        let message = crate::ops::pins::CommitHow {
            signing: None,
            trailer: window,
        }
        .message(&message);
        let commit_message = (!input.no_commit).then_some(message.as_str());
        let signing = if input.no_commit {
            None
        } else {
            crate::ops::trust::signing(loaded, &input.to)?
        };
        match crate::ops::pins::write_and_commit(
            &loaded.path,
            &loaded.text,
            &input.to,
            &edits,
            commit_message,
            &ctx.actor,
            signing.as_ref(),
        ) {
            Ok(id) => {
                out.written = true;
                out.commit = id;
                out.message = out.commit.as_ref().map(|_| message.clone());
            }
            Err(e) => {
                out.written = e.written();
                out.error = Some(e.to_string());
            }
        }
        if let Some(id) = &out.commit
            && around::wants_push_in(loaded, &input.to, input.push, input.no_push)
        {
            out.push = Some(around::push(loaded, &input.to, id).await);
        }
        let mut event =
            event
                .pins(&input.from, &out.pins, Some(out.written))
                .ended(if out.error.is_some() {
                    Outcome::Failure
                } else {
                    Outcome::Success
                });
        event.pin_commit = out.commit.clone();
        event.notes.extend(out.error.clone());
        around::after_work(&op, loaded, &event).await;
        Ok(out)
    }
}
