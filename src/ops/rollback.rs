//! `rollback`: start the previous kept container of each selected service again, on every
//! selected host, through the one host runner and the one swap; then pin what now runs and commit
//! (the manifest file alone), and push where asked. On a Swarm environment each service goes back
//! through fleetpin's own history (its service label) and Swarm rolls the tasks.
//!
//! Everything that can refuse does so in `prepare`, before any host is touched: a service the
//! environment does not pin, a service with nothing to go back to, hosts that would go back to
//! different versions (`--to` settles it), a manifest that could not be committed afterwards.
//! With `--host` on a subset of the environment's hosts, only those hosts go back, nothing is
//! committed (the pin is the environment's), and the notes name the hosts that now differ.
//!
//! `outcome` (pure) decides what a rollback writes down once the hosts are done: the pins to move
//! (to exactly the `io.fleetpin.version` the hosts now run) and what the operator should know.

use crate::host::report::{ActionStatus, HostReport};
use crate::manifest::Environment;
use std::collections::BTreeMap;

/// What the operator must know when a container started again holds other secret values than
/// the reference's current ones (names of services and hosts only).
pub fn secret_notes(
    env_name: &str,
    stale: &BTreeMap<String, Vec<String>>,
    reports: &[HostReport],
) -> Vec<String> {
    stale
        .iter()
        .filter_map(|(service, hosts)| {
            let back: Vec<&str> = reports
                .iter()
                .filter(|r| hosts.contains(&r.host))
                .filter(|r| {
                    r.actions
                        .iter()
                        .any(|a| &a.service == service && a.status == ActionStatus::Done)
                })
                .map(|r| r.host.as_str())
                .collect();
            (!back.is_empty()).then(|| format!(
                "{service} on {} runs again with secret values that differ from the reference's current ones: `fleetpin plan {env_name}` shows it as reconfigure, `fleetpin apply {env_name}` gives it the current values",
                back.join(", ")
            ))
        })
        .collect()
}

/// Pin moves (service, from, to) and notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinMoves {
    pub moves: Vec<(String, String, String)>,
    pub notes: Vec<String>,
}

/// `targets`: service → the agreed version; `hosts`: every selected host with the services that
/// run there; `subset`: only some of the environment's hosts were selected.
pub fn outcome(
    env_name: &str,
    env: &Environment,
    targets: &BTreeMap<String, String>,
    reports: &[HostReport],
    hosts: &[(String, Vec<String>)],
    subset: bool,
) -> PinMoves {
    // What each host now runs, per service it rolled back.
    let mut running: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in reports {
        for a in r.actions.iter().filter(|a| a.status == ActionStatus::Done) {
            if let Some(v) = &a.to {
                running
                    .entry(a.service.as_str())
                    .or_default()
                    .push((r.host.as_str(), v.as_str()));
            }
        }
    }
    let mut out = PinMoves::default();
    for (service, on) in &running {
        let now = on[0].1;
        let pinned = env.versions.get(*service).map(|p| p.value.to_string());
        if pinned.as_deref() != Some(now) {
            out.moves.push((
                service.to_string(),
                pinned.unwrap_or_else(|| "-".into()),
                now.to_string(),
            ));
        }
    }
    if subset {
        for (service, pinned, now) in &out.moves {
            let on: Vec<&str> = running[service.as_str()].iter().map(|(h, _)| *h).collect();
            out.notes.push(format!(
                "{} now run{} {service} {now} while {env_name} pins {pinned}: the pin is the environment's, so it was not changed; `fleetpin apply {env_name}` would put them back",
                on.join(", "),
                if on.len() == 1 { "s" } else { "" },
            ));
        }
        return out;
    }
    // Hosts that did not get there (failed, skipped, unreachable) differ from the new pin.
    for (service, target) in targets {
        let Some(on) = running.get(service.as_str()) else {
            continue;
        };
        let behind: Vec<&str> = hosts
            .iter()
            .filter(|(_, services)| services.contains(service))
            .map(|(h, _)| h.as_str())
            .filter(|h| !on.iter().any(|(host, v)| host == h && v == target))
            .collect();
        if !behind.is_empty() {
            out.notes.push(format!(
                "{} did not go back to {service} {target}; `fleetpin apply {env_name}` brings them to the pin",
                behind.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::report::{Action, HostStatus};
    use crate::plan::ChangeKind;

    fn env() -> Environment {
        let m = crate::manifest::parse_str(
            "platform: acme\nservices:\n  web: {image: r/web}\nenvironments:\n  prod:\n    hosts:\n      h1: {endpoint: \"unix:///a.sock\"}\n      h2: {endpoint: \"unix:///b.sock\"}\n    versions: {web: \"2.0.0\"}\n",
        )
        .unwrap();
        m.environments["prod"].clone()
    }

    fn report(host: &str, to: Option<&str>) -> HostReport {
        let mut r = HostReport::new(host, "x", HostStatus::Converged);
        if let Some(v) = to {
            r.actions.push(Action::new(
                "web",
                ChangeKind::Downgrade,
                Some("2.0.0".into()),
                Some(v.into()),
            ));
        } else {
            r.status = HostStatus::Failed;
        }
        r
    }

    #[test]
    fn the_pin_moves_to_what_runs_and_hosts_left_behind_are_named() {
        let targets = BTreeMap::from([("web".to_string(), "1.1.0".to_string())]);
        let hosts = vec![
            ("h1".to_string(), vec!["web".to_string()]),
            ("h2".to_string(), vec!["web".to_string()]),
        ];
        let o = outcome(
            "prod",
            &env(),
            &targets,
            &[report("h1", Some("1.1.0")), report("h2", None)],
            &hosts,
            false,
        );
        assert_eq!(
            o.moves,
            vec![("web".into(), "2.0.0".into(), "1.1.0".into())]
        );
        assert_eq!(o.notes.len(), 1);
        assert!(
            o.notes[0].starts_with("h2 did not go back to web 1.1.0"),
            "{:?}",
            o.notes
        );
        let o = outcome(
            "prod",
            &env(),
            &targets,
            &[report("h2", Some("1.1.0"))],
            &hosts[1..],
            true,
        );
        assert!(
            o.notes[0].starts_with("h2 now runs web 1.1.0 while prod pins 2.0.0"),
            "{:?}",
            o.notes
        );
    }
}

pub use op::*;

/// The operation: prepare (everything that can refuse), then run.
mod op {
    use super::{PinMoves, outcome, secret_notes};
    use crate::engine::Engine;
    use crate::engine::docker::DockerEngine;
    use crate::engine::swarm::DockerSwarm;
    use crate::host::fleet::{Connect, Docker};
    use crate::host::report::HostReport;
    use crate::host::rollback::Rollback;
    use crate::manifest::Loaded;
    use crate::ops::around::{self, Pushed};
    use crate::ops::context::Ctx;
    use crate::ops::deploy::{self, Prepared, Selection};
    use crate::ops::error::{OpError, OpResult};
    use crate::ops::event::{Event, Outcome as Ended};
    use crate::ops::run::RunOptions;
    use crate::ops::swarm::{self, SwarmPlan, SwarmResult};
    use crate::plan::rollback::agree;
    use crate::plan::view::HostView;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, Default)]
    pub struct RollbackInput {
        pub env: String,
        pub select: Selection,
        /// `--to VERSION`: go to this kept version (back or forward).
        pub to: Option<String>,
        /// `--no-commit`.
        pub no_commit: bool,
        /// `--push` / `--no-push` (with the manifest's `git: {push}`).
        pub push: bool,
        pub no_push: bool,
        pub run: RunOptions,
        /// `--override-window "REASON"`: `--to` a newer version although a window holds it.
        pub override_window: Option<String>,
    }

    /// What `run` will do.
    pub enum RollbackPlan<E = DockerEngine> {
        Hosts(Box<HostsRollback<E>>),
        Swarm(Box<SwarmRollback>),
    }

    pub struct HostsRollback<E = DockerEngine> {
        pub input: RollbackInput,
        /// service → the version every selected host goes back to.
        pub targets: BTreeMap<String, String>,
        pub prepared: Vec<Prepared<E>>,
        /// Only some of the environment's hosts: nothing is committed.
        pub subset: bool,
        commit: bool,
        /// service → the hosts where the container going back has other secret values than
        /// the reference's current ones.
        pub stale_secrets: BTreeMap<String, Vec<String>>,
        /// How the pins' commit is signed (checked before any host is touched).
        signing: Option<crate::trust::Signing>,
        /// Said when a deploy window holds changes now: going back runs all the same.
        window: Option<String>,
        /// `--override-window`: the line recorded (rollback --to a newer version only).
        window_override: Option<String>,
    }

    pub struct SwarmRollback {
        pub input: RollbackInput,
        pub plan: SwarmPlan,
        engine: DockerSwarm,
        signing: Option<crate::trust::Signing>,
    }

    impl<E> RollbackPlan<E> {
        /// What is about to go back, one line each (`Rolling back billing to 2.4.0 on h1, h2.`).
        pub fn intents(&self) -> Vec<String> {
            match self {
                RollbackPlan::Hosts(h) => {
                    let hosts: Vec<&str> =
                        h.prepared.iter().map(|p| p.host.name.as_str()).collect();
                    h.targets
                        .iter()
                        .map(|(s, v)| format!("Rolling back {s} to {v} on {}.", hosts.join(", ")))
                        .collect()
                }
                RollbackPlan::Swarm(s) => s
                    .plan
                    .changes
                    .iter()
                    .map(|c| {
                        format!(
                            "Rolling back {} from {} to {} on swarm {}.",
                            c.service,
                            c.from.as_deref().unwrap_or("?"),
                            c.to,
                            s.plan.endpoint
                        )
                    })
                    .collect(),
            }
        }
    }

    /// What a prepared rollback will do, as the operator confirms it (the console's rollback
    /// plan): read off the plan `prepare` made, never planned again.
    #[derive(Debug, Clone, Serialize)]
    pub struct RollbackPreview {
        pub environment: String,
        /// `hosts` or `swarm`.
        pub kind: &'static str,
        pub steps: Vec<RollbackStep>,
        /// Whether the pins will be moved and committed (not on a subset of the hosts, nor with
        /// `--no-commit`).
        pub commits: bool,
        /// What the operator should know first: stale secrets, a deploy window, hosts out of
        /// reach, a subset that leaves the pin alone.
        pub notes: Vec<String>,
    }

    /// One service on one host (or one Swarm service): the version it runs and the one it goes to.
    #[derive(Debug, Clone, Serialize)]
    pub struct RollbackStep {
        /// The host; none for a Swarm service.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub host: Option<String>,
        pub service: String,
        pub from: Option<String>,
        pub to: String,
        /// `downgrade`, `upgrade`, `change` or `unchanged` (already there).
        pub change: String,
        /// How: `relaunch` (a kept container started again), `create` (from the image),
        /// `finish` (an interrupted rollback), `none` (already there), `swarm`.
        pub how: &'static str,
        /// The kept container started again: its name and short id.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub container: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub container_id: Option<String>,
    }

    impl<E> RollbackPlan<E> {
        pub fn preview(&self) -> RollbackPreview {
            match self {
                RollbackPlan::Hosts(h) => h.preview(),
                RollbackPlan::Swarm(s) => RollbackPreview {
                    environment: s.input.env.clone(),
                    kind: "swarm",
                    steps: s
                        .plan
                        .changes
                        .iter()
                        .map(|c| RollbackStep {
                            host: None,
                            service: c.service.clone(),
                            from: c.from.clone(),
                            to: c.to.clone(),
                            change: c.kind.as_str().into(),
                            how: "swarm",
                            container: None,
                            container_id: None,
                        })
                        .collect(),
                    commits: !s.input.no_commit,
                    notes: Vec::new(),
                },
            }
        }
    }

    impl<E> HostsRollback<E> {
        fn preview(&self) -> RollbackPreview {
            use crate::plan::rollback::{Choice, choose, version_of};
            let mut steps = Vec::new();
            let mut notes = Vec::new();
            for p in &self.prepared {
                if p.engine.is_none() {
                    notes.push(format!(
                        "{} cannot be reached: {}",
                        p.host.name,
                        p.error.as_deref().unwrap_or("unreachable")
                    ));
                    continue;
                }
                for r in &p.desired {
                    let Some(to) = self.targets.get(&r.service) else {
                        continue;
                    };
                    let from = p
                        .view
                        .current
                        .get(&r.service)
                        .map(|c| version_of(c).to_string());
                    let (how, kept) = if from.as_deref() == Some(to.as_str()) {
                        ("none", None)
                    } else {
                        // The same choice the host runner makes under the lock.
                        match choose(&p.view, &r.service, self.input.to.as_deref()) {
                            Ok(Choice::Retained(c)) => ("relaunch", Some(c)),
                            Ok(Choice::Finish(c)) => ("finish", Some(c)),
                            Ok(Choice::Recreate(_)) | Err(_) => ("create", None),
                        }
                    };
                    let change = if how == "none" {
                        crate::plan::ChangeKind::Unchanged
                    } else {
                        crate::host::rollback::kind(from.as_deref(), to)
                    };
                    steps.push(RollbackStep {
                        host: Some(p.host.name.clone()),
                        service: r.service.clone(),
                        from,
                        to: to.clone(),
                        change: change.as_str().into(),
                        how,
                        container_id: kept.as_ref().map(|c| c.id.chars().take(12).collect()),
                        container: kept.map(|c| c.name),
                    });
                }
            }
            for (service, hosts) in &self.stale_secrets {
                notes.push(format!(
                    "{service} on {} would run again with secret values that differ from the reference's current ones: `fleetpin apply {}` gives it the current values",
                    hosts.join(", "),
                    self.input.env
                ));
            }
            notes.extend(self.window.clone());
            if self.subset {
                notes.push(format!(
                    "only some of {}'s hosts go back: the pin is the environment's, so nothing is committed",
                    self.input.env
                ));
            }
            RollbackPreview {
                environment: self.input.env.clone(),
                kind: "hosts",
                steps,
                commits: self.commit,
                notes,
            }
        }
    }

    /// How a rollback of plain hosts ended: the JSON `rollback --format json` prints.
    #[derive(Debug, Clone, Serialize)]
    pub struct HostsRolledBack {
        pub environment: String,
        pub ok: bool,
        pub hosts: Vec<HostReport>,
        pub pins: Vec<PinMove>,
        pub pinned: bool,
        pub commit: Option<String>,
        pub push: Option<Pushed>,
        pub notes: Vec<String>,
        pub interrupted: bool,
        /// The commit's message, when one was written.
        #[serde(skip)]
        pub message: Option<String>,
    }

    /// How a rollback of a Swarm environment ended.
    #[derive(Debug, Clone, Serialize)]
    pub struct SwarmRolledBack {
        pub environment: String,
        pub ok: bool,
        pub services: Vec<SwarmResult>,
        pub pins: Vec<PinMove>,
        pub commit: Option<String>,
        pub notes: Vec<String>,
        #[serde(skip)]
        pub message: Option<String>,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct PinMove {
        pub service: String,
        pub from: String,
        pub to: String,
    }

    pub enum RollbackOutcome {
        Hosts(HostsRolledBack),
        Swarm(SwarmRolledBack),
    }

    impl RollbackOutcome {
        pub fn failed(&self) -> bool {
            match self {
                RollbackOutcome::Hosts(h) => !h.ok,
                RollbackOutcome::Swarm(s) => !s.ok,
            }
        }

        pub fn interrupted(&self) -> bool {
            matches!(self, RollbackOutcome::Hosts(h) if h.interrupted)
        }
    }

    /// Every reason the hosts (or the Swarm services) cannot go back, one per line.
    fn nothing_rolled_back(problems: &[impl std::fmt::Display]) -> OpError {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        OpError::Refused(format!(
            "nothing was rolled back:\n  {}",
            lines.join("\n  ")
        ))
    }

    fn pin_moves(moves: &[(String, String, String)]) -> Vec<PinMove> {
        moves
            .iter()
            .map(|(s, f, t)| PinMove {
                service: s.clone(),
                from: f.clone(),
                to: t.clone(),
            })
            .collect()
    }

    /// Everything that can refuse, before any host is touched.
    pub async fn prepare(
        ctx: &Ctx,
        loaded: &Loaded,
        input: RollbackInput,
    ) -> OpResult<RollbackPlan> {
        prepare_on(ctx, &Docker, loaded, input).await
    }

    /// `prepare`, the hosts reached through `connect`.
    pub async fn prepare_on<C: Connect>(
        ctx: &Ctx,
        connect: &C,
        loaded: &Loaded,
        input: RollbackInput,
    ) -> OpResult<RollbackPlan<C::Engine>> {
        let env = deploy::environment(loaded, &input.env)?;
        deploy::check_pinned(
            &input.env,
            env,
            &input.select.services,
            "so it has nothing to roll back",
        )?;
        if env.is_swarm() {
            return prepare_swarm(ctx, loaded, input).await;
        }
        // A subset of the hosts goes back without touching the environment's pin.
        let subset = !input.select.hosts.is_empty()
            && env.hosts.keys().any(|h| !input.select.hosts.contains(h));
        let commit = !input.no_commit && !subset;
        around::require_push_for_pull(
            loaded,
            &input.env,
            commit,
            around::wants_push_in(loaded, &input.env, input.push, input.no_push),
            "rollback",
        )?;
        if commit {
            crate::git::ensure_committable(&loaded.path)?;
        }
        let prepared = deploy::prepare_on(
            connect,
            loaded,
            &input.env,
            &input.select,
            ctx.connect_timeout,
            false,
            &ctx.keys,
        )
        .await?;
        let services: Vec<String> = env
            .versions
            .keys()
            .filter(|s| input.select.services.is_empty() || input.select.services.contains(s))
            .cloned()
            .collect();
        let reachable: Vec<(String, &HostView, Vec<String>)> = prepared
            .iter()
            .filter(|p| p.engine.is_some())
            .map(|p| {
                (
                    p.host.name.clone(),
                    &p.view,
                    p.desired.iter().map(|r| r.service.clone()).collect(),
                )
            })
            .collect();
        let targets = agree(&reachable, &services, input.to.as_deref())
            .map_err(|problems| nothing_rolled_back(&problems))?;
        if targets.is_empty() {
            return Err(OpError::Refused(format!(
                "nothing to roll back: no selected host of {} runs the selected services",
                input.env
            )));
        }
        let stale_secrets = stale_secrets(&prepared, &targets).await;
        let input_env = input.env.clone();
        // Going back is never held; `--to` a newer version than a host runs is a change like
        // apply's, and held like it.
        let hold = crate::ops::windows::hold(
            loaded,
            &input.env,
            prepared.iter().filter_map(|p| p.engine.as_deref()),
        )
        .await;
        let forward = prepared.iter().any(|p| {
            p.view.current.iter().any(|(service, c)| {
                let (Some(target), Some(running)) = (
                    targets.get(service),
                    c.labels.get(crate::plan::labels::VERSION),
                ) else {
                    return false;
                };
                crate::manifest::pin::VersionPin::parse(target).is_ok_and(|t| {
                    crate::plan::compare(running, &t) == crate::plan::ChangeKind::Upgrade
                })
            })
        });
        let (window, window_override) = match &hold {
            Some(h) if forward => {
                let o = crate::ops::windows::gate(
                    "rollback --to",
                    &input.env,
                    Some(h),
                    input.override_window.as_deref(),
                )?;
                (o.clone(), o)
            }
            Some(h) => (
                Some(format!(
                    "rolled back while changes are {}: going back is never held",
                    h.message
                )),
                None,
            ),
            None => (None, None),
        };
        Ok(RollbackPlan::Hosts(Box::new(HostsRollback {
            input,
            targets,
            prepared,
            subset,
            commit,
            stale_secrets,
            window,
            window_override,
            signing: if commit {
                crate::ops::trust::signing(loaded, &input_env)?
            } else {
                None
            },
        })))
    }

    /// Where a kept container of the target version has other secret values than the ones the
    /// reference holds now (read from its environment, compared in memory, dropped).
    async fn stale_secrets<E: Engine>(
        prepared: &[Prepared<E>],
        targets: &BTreeMap<String, String>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in prepared {
            let Some(engine) = &p.engine else { continue };
            for r in p.desired.iter().filter(|r| !r.secret_env.is_empty()) {
                let Some(target) = targets.get(&r.service) else {
                    continue;
                };
                for c in p.view.kept(&r.service) {
                    if c.labels.get(crate::plan::labels::VERSION) != Some(target) {
                        continue;
                    }
                    let differs = match engine.container_env(&c.id).await {
                        Ok(env) => crate::plan::secrets_differ(r, &env),
                        Err(_) => false,
                    };
                    if differs {
                        out.entry(r.service.clone())
                            .or_default()
                            .push(p.host.name.clone());
                        break;
                    }
                }
            }
        }
        out
    }

    async fn prepare_swarm<E>(
        ctx: &Ctx,
        loaded: &Loaded,
        input: RollbackInput,
    ) -> OpResult<RollbackPlan<E>> {
        if !input.no_commit {
            crate::git::ensure_committable(&loaded.path)?;
        }
        let engine = swarm::connect(loaded, &input.env, ctx.connect_timeout).await?;
        let plan = swarm::plan(loaded, &input.env, &input.select, &engine, &ctx.keys).await?;
        let changes = swarm::rollback_plan(&plan, input.to.as_deref())
            .map_err(|problems| nothing_rolled_back(&problems))?;
        let plan = SwarmPlan { changes, ..plan };
        let signing = if input.no_commit {
            None
        } else {
            crate::ops::trust::signing(loaded, &input.env)?
        };
        Ok(RollbackPlan::Swarm(Box::new(SwarmRollback {
            input,
            plan,
            engine,
            signing,
        })))
    }

    /// Rolls back as planned: the `pre_rollback` hook, the hosts, the pins written and committed
    /// (authored by the actor) and pushed, then `post_rollback` or `on_failure` and the webhooks.
    pub async fn run<E: Engine + 'static>(
        ctx: &Ctx,
        loaded: &Loaded,
        plan: RollbackPlan<E>,
    ) -> OpResult<RollbackOutcome> {
        match plan {
            RollbackPlan::Hosts(h) => run_hosts(ctx, loaded, *h).await.map(RollbackOutcome::Hosts),
            RollbackPlan::Swarm(s) => run_swarm(ctx, loaded, *s).await.map(RollbackOutcome::Swarm),
        }
    }

    async fn run_hosts<E: Engine + 'static>(
        ctx: &Ctx,
        loaded: &Loaded,
        plan: HostsRollback<E>,
    ) -> OpResult<HostsRolledBack> {
        let HostsRollback {
            input,
            targets,
            prepared,
            subset,
            commit,
            stale_secrets,
            signing,
            window,
            window_override,
        } = plan;
        let m = &loaded.manifest;
        let env = &m.environments[&input.env];
        let op = ctx.op("rollback", &input.env);
        let stamp = deploy::stamp(&op, loaded, deploy::source_commit(loaded), false);
        let event = Event::new(
            "rollback",
            &m.platform,
            &input.env,
            &stamp.commit,
            &stamp.deployed_by,
        )
        .planned_rollback(&prepared, &targets);
        around::pre_hook(&op, loaded, &event).await?;
        let mut settings = input
            .run
            .settings(&op, loaded, &input.env, prepared.len(), stamp);
        // A rollback honours max_parallel and canaries, but always stops at the first failure.
        settings.rollout.on_failure = crate::manifest::OnFailure::Stop;
        let work = Rollback {
            targets: targets.clone(),
            to: input.to.clone(),
        };
        // Canaries are the first hosts that have something to roll back.
        let reports = crate::ops::run::on_hosts(&op, &prepared, &settings, &work, &|p| {
            p.engine.is_none() || p.desired.iter().any(|r| targets.contains_key(&r.service))
        })
        .await;
        let failed = reports.iter().any(|r| !r.ok());
        let hosts: Vec<(String, Vec<String>)> = prepared
            .iter()
            .map(|p| {
                (
                    p.host.name.clone(),
                    p.desired.iter().map(|d| d.service.clone()).collect(),
                )
            })
            .collect();
        let PinMoves { moves, mut notes } =
            outcome(&input.env, env, &targets, &reports, &hosts, subset);
        notes.extend(secret_notes(&input.env, &stale_secrets, &reports));
        notes.extend(window.clone());
        // Nothing to write on a subset: the pin is the environment's (`outcome` named the
        // hosts that differ).
        let written = if subset {
            Ok(None)
        } else {
            around::write_pins(
                &op,
                loaded,
                &input.env,
                &moves,
                commit,
                &mut notes,
                &crate::ops::pins::CommitHow {
                    signing,
                    trailer: window_override.clone(),
                },
            )
        };
        let pin_commit_failed = written.is_err();
        let committed = written.ok().flatten();
        let push = around::wants_push_in(loaded, &input.env, input.push, input.no_push);
        if push && committed.is_none() && input.push {
            notes.push("--push: nothing was committed, so nothing was pushed".into());
        }
        let pushed = match &committed {
            Some((id, _)) if push => Some(around::push(loaded, &input.env, id).await),
            _ => None,
        };
        let push_failed = pushed.as_ref().is_some_and(|p| !p.ok);
        let interrupted = ctx.cancelled();
        let mut event = event.ran(
            &reports,
            Ended::of_run(failed || pin_commit_failed, interrupted),
        );
        event.pin_commit = committed.as_ref().map(|(id, _)| id.clone());
        event.notes = notes.clone();
        event.window_override = window_override;
        around::after_work(&op, loaded, &event).await;
        Ok(HostsRolledBack {
            environment: input.env,
            ok: !failed && !pin_commit_failed && !push_failed,
            hosts: reports,
            pins: pin_moves(&moves),
            pinned: !subset && commit && committed.is_some(),
            commit: committed.as_ref().map(|(id, _)| id.clone()),
            push: pushed,
            notes,
            interrupted,
            message: committed.map(|(_, m)| m),
        })
    }

    async fn run_swarm(ctx: &Ctx, loaded: &Loaded, s: SwarmRollback) -> OpResult<SwarmRolledBack> {
        let SwarmRollback {
            input,
            plan,
            engine,
            signing,
        } = s;
        let env = &loaded.manifest.environments[&input.env];
        let op = ctx.op("rollback", &input.env);
        let results = crate::ops::run::on_swarm(&op, loaded, &plan, &engine, &input.run).await?;
        let failed = results.iter().any(|r| !r.ok) || results.len() < plan.changes.len();
        let moves: Vec<(String, String, String)> = plan
            .changes
            .iter()
            .filter(|c| results.iter().any(|r| r.ok && r.service == c.service))
            .filter_map(|c| {
                let from = env.versions.get(&c.service)?.value.to_string();
                (from != c.to).then(|| (c.service.clone(), from, c.to.clone()))
            })
            .collect();
        let commit = !input.no_commit;
        let mut notes = Vec::new();
        let written = around::write_pins(
            &op,
            loaded,
            &input.env,
            &moves,
            commit,
            &mut notes,
            &crate::ops::pins::CommitHow {
                signing,
                trailer: None,
            },
        );
        let pin_failed = written.is_err() || (!notes.is_empty() && commit);
        let committed = written.ok().flatten();
        Ok(SwarmRolledBack {
            environment: input.env,
            ok: !failed && !pin_failed,
            services: results,
            pins: pin_moves(&moves),
            commit: committed.as_ref().map(|(id, _)| id.clone()),
            notes,
            message: committed.map(|(_, m)| m),
        })
    }
}
