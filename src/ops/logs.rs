//! `logs`: the output of the current container of each selected service, from every selected host
//! at once, merged into one stream — what an operator looks at first when something is wrong,
//! without an ssh session per host. Nothing here changes a host.
//!
//! Each (host, service) is one source: its engine's stream of lines (stdout and stderr, with the
//! engine's times) and then one event that says why it ended — every line asked for was shown,
//! the container stopped, the host was lost — so a followed fleet says what went quiet and keeps
//! showing the rest.

use crate::engine::swarm::SwarmEngine;
use crate::engine::{ContainerSummary, Engine, EngineError, LogLine, LogOptions, RunState};
use crate::plan::view;
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Lines shown per container when neither `--tail` nor `--since` says otherwise: a fleet's whole
/// history on one screen is never what is wanted.
pub const DEFAULT_TAIL: usize = 100;

/// `--since`: a duration back from now (`10m`, by each engine's own clock), or a point in time
/// (RFC 3339).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Ago(Duration),
    At(SystemTime),
}

/// A `--since` or `--tail` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(String);

impl Since {
    pub fn parse(s: &str) -> Result<Since, BadValue> {
        let t = s.trim();
        if let Some(at) = crate::clock::parse_rfc3339(t) {
            return Ok(Since::At(at));
        }
        if !t.is_empty()
            && !t.chars().all(|c| c.is_ascii_digit())
            && let Ok(d) = humantime::parse_duration(t)
        {
            return Ok(Since::Ago(d));
        }
        Err(BadValue(format!(
            "`{s}` is neither a duration (10m, 1h30m, 2d) nor an RFC 3339 time (2026-03-01T12:00:00Z)"
        )))
    }

    /// Unix seconds, a duration counted back from `engine_now`.
    pub fn resolve(&self, engine_now: SystemTime) -> i64 {
        match self {
            Since::Ago(d) => {
                crate::clock::unix(engine_now.checked_sub(*d).unwrap_or(SystemTime::UNIX_EPOCH))
            }
            Since::At(t) => crate::clock::unix(*t),
        }
    }
}

/// `--tail`: the last N lines of each container, or all of them (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail(pub Option<usize>);

pub fn parse_tail(s: &str) -> Result<Tail, BadValue> {
    match s.trim() {
        "all" => Ok(Tail(None)),
        n => n
            .parse::<usize>()
            .map(|n| Tail(Some(n)))
            .map_err(|_| BadValue(format!("`{s}` is not a number of lines (or `all`)"))),
    }
}

/// The current container of each of `services` in a host's list (as listed with the
/// environment's prefix), and the services that have none there.
pub fn current<'a>(
    platform: &str,
    environment: &str,
    services: &[&'a str],
    list: &[ContainerSummary],
) -> (Vec<(String, ContainerSummary)>, Vec<&'a str>) {
    let v = view::classify(platform, environment, list);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for s in services {
        match v.current.get(*s) {
            Some(c) => found.push((s.to_string(), c.clone())),
            None => missing.push(*s),
        }
    }
    (found, missing)
}

/// One (host, service) whose current container is read.
pub struct Source<E> {
    pub host: String,
    pub service: String,
    /// The container's name.
    pub container: String,
    pub id: String,
    pub engine: Arc<E>,
}

/// What the merged stream says.
#[derive(Debug)]
pub enum Event {
    /// A line of source `source` (an index into the sources).
    Line { source: usize, line: LogLine },
    /// Source `source` will say nothing more.
    End { source: usize, end: End },
}

#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// Every line asked for was shown (without follow).
    Done,
    /// The container is not running (any more): nothing more will come from it.
    Stopped(RunState),
    /// Following, the stream ended while the container still runs (the engine closed it).
    Closed,
    /// The host stopped answering.
    Lost(EngineError),
    /// The engine refused (the container was removed, …).
    Failed(EngineError),
}

/// What `logs` asks of every container: `since` counted back from each host's own clock.
pub async fn options_for<E: Engine>(
    engine: &E,
    since: Option<Since>,
    tail: Option<usize>,
    follow: bool,
) -> LogOptions {
    let since = match since {
        None => None,
        Some(s @ Since::At(_)) => Some(s.resolve(SystemTime::now())),
        // The engine's clock, as everywhere in fleetpin; if it does not answer, the log request
        // that follows will say so.
        Some(s) => Some(s.resolve(engine.clock().await.unwrap_or_else(|_| SystemTime::now()))),
    };
    LogOptions {
        since,
        tail,
        follow,
    }
}

/// The lines of every source, merged as they arrive, each source closed by one `End`.
pub fn merged<E: Engine + 'static>(
    sources: &[Source<E>],
    options: &[LogOptions],
) -> impl Stream<Item = Event> + Send + 'static {
    let streams = sources
        .iter()
        .zip(options)
        .enumerate()
        .map(|(i, (s, o))| one(i, s.engine.clone(), s.id.clone(), o.clone()).boxed());
    futures::stream::select_all(streams)
}

/// The lines of Swarm tasks, one source each (`tasks` in source order), merged as they arrive.
/// A task's stream ends with its task when following (`Closed`: a rolling update replaced it),
/// or once every line asked for was shown.
pub fn merged_tasks<S: SwarmEngine + 'static>(
    engine: &S,
    tasks: &[String],
    options: &LogOptions,
) -> impl Stream<Item = Event> + Send + 'static {
    let follow = options.follow;
    let streams = tasks.iter().enumerate().map(|(source, id)| {
        let lines = Box::pin(engine.task_logs(id, options));
        futures::stream::unfold(Some(lines), move |lines| async move {
            let mut lines = lines?;
            let end = match lines.next().await {
                Some(Ok(line)) => return Some((Event::Line { source, line }, Some(lines))),
                Some(Err(e)) if e.is_unreachable() => End::Lost(e),
                Some(Err(e)) => End::Failed(e),
                None if follow => End::Closed,
                None => End::Done,
            };
            Some((Event::End { source, end }, None))
        })
        .boxed()
    });
    futures::stream::select_all(streams)
}

/// One source: its lines, then why it ended.
fn one<E: Engine + 'static>(
    source: usize,
    engine: Arc<E>,
    id: String,
    options: LogOptions,
) -> impl Stream<Item = Event> + Send + 'static {
    let lines = engine.logs(&id, &options);
    let follow = options.follow;
    let state = (Box::pin(lines), Some((engine, id)), None::<EngineError>);
    futures::stream::unfold(state, move |(mut lines, mut rest, mut error)| async move {
        // Ended and said so: the line stream is not polled again.
        rest.as_ref()?;
        if error.is_none() {
            match lines.next().await {
                Some(Ok(line)) => {
                    return Some((Event::Line { source, line }, (lines, rest, error)));
                }
                Some(Err(e)) => error = Some(e),
                None => {}
            }
        }
        // The end, once.
        let (engine, id) = rest.take()?;
        let end = match error.take() {
            Some(e) if e.is_unreachable() => End::Lost(e),
            Some(e) => End::Failed(e),
            None if !follow => End::Done,
            None => match engine.inspect_container(&id).await {
                Ok(d) if d.state != RunState::Running => End::Stopped(d.state),
                Ok(_) => End::Closed,
                Err(e) if e.is_unreachable() => End::Lost(e),
                Err(EngineError::NotFound { .. }) => End::Stopped(RunState::Removing),
                Err(e) => End::Failed(e),
            },
        };
        Some((Event::End { source, end }, (lines, None, None)))
    })
}

/// Lines of several containers in the order they were written: by the engine's time (a line
/// without one keeps its place among its own container's lines, first).
pub fn by_time(lines: &mut [(usize, LogLine)]) {
    lines.sort_by_cached_key(|(_, l)| {
        l.time
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LogStream;
    use crate::engine::memory::{MemContainer, MemoryEngine};
    use std::collections::BTreeMap;

    fn line(time: &str, text: &str) -> LogLine {
        LogLine {
            stream: LogStream::Stdout,
            time: Some(time.into()),
            line: text.into(),
        }
    }

    fn labels(service: &str) -> BTreeMap<String, String> {
        [
            ("io.fleetpin.platform", "acme"),
            ("io.fleetpin.environment", "prod"),
            ("io.fleetpin.service", service),
            ("io.fleetpin.version", "1.0.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn since_reads_durations_and_times() {
        let now = crate::clock::from_unix(1_000_000);
        assert_eq!(Since::parse("10m").unwrap().resolve(now), 1_000_000 - 600);
        assert_eq!(
            Since::parse("2d").unwrap().resolve(now),
            1_000_000 - 172_800
        );
        assert_eq!(
            Since::parse("2026-03-01T12:00:00Z").unwrap(),
            Since::At(crate::clock::parse_rfc3339("2026-03-01T12:00:00Z").unwrap())
        );
        assert!(Since::parse("10").is_err(), "a unit is needed");
        assert!(Since::parse("yesterday").is_err());
        assert_eq!(parse_tail("all"), Ok(Tail(None)));
        assert_eq!(parse_tail("5"), Ok(Tail(Some(5))));
        assert!(parse_tail("-1").is_err());
    }

    #[test]
    fn two_hosts_merge_by_time_with_tail_and_an_end_each() {
        let a = Arc::new(MemoryEngine::new(vec![]));
        let b = Arc::new(MemoryEngine::new(vec![]));
        for e in [&a, &b] {
            e.add_container(MemContainer::new(
                "acme-prod-web",
                "web:1",
                RunState::Running,
                labels("web"),
            ));
        }
        a.write_logs(
            "acme-prod-web",
            &[
                line("2026-01-01T00:00:01Z", "a1"),
                line("2026-01-01T00:00:03Z", "a2"),
                line("2026-01-01T00:00:05Z", "a3"),
            ],
        );
        b.write_logs(
            "acme-prod-web",
            &[
                line("2026-01-01T00:00:02Z", "b1"),
                line("2026-01-01T00:00:04.5Z", "b2"),
            ],
        );
        let sources: Vec<Source<MemoryEngine>> = [("h1", &a), ("h2", &b)]
            .into_iter()
            .map(|(h, e)| {
                let list = futures::executor::block_on(e.list_containers("acme-prod-")).unwrap();
                let (found, missing) = current("acme", "prod", &["web", "db"], &list);
                assert_eq!(missing, ["db"]);
                let (service, c) = found.into_iter().next().unwrap();
                Source {
                    host: h.into(),
                    service,
                    container: c.name,
                    id: c.id,
                    engine: e.clone(),
                }
            })
            .collect();
        let options = vec![
            LogOptions {
                tail: Some(2),
                ..Default::default()
            };
            2
        ];
        let events: Vec<Event> = futures::executor::block_on(merged(&sources, &options).collect());
        let mut lines = Vec::new();
        let mut ends = Vec::new();
        for e in events {
            match e {
                Event::Line { source, line } => lines.push((source, line)),
                Event::End { source, end } => ends.push((source, end)),
            }
        }
        ends.sort_by_key(|(s, _)| *s);
        assert_eq!(ends, vec![(0, End::Done), (1, End::Done)]);
        by_time(&mut lines);
        let shown: Vec<(&str, &str)> = lines
            .iter()
            .map(|(s, l)| (sources[*s].host.as_str(), l.line.as_str()))
            .collect();
        assert_eq!(
            shown,
            [("h2", "b1"), ("h1", "a2"), ("h2", "b2"), ("h1", "a3")]
        );
    }

    #[test]
    fn a_followed_container_that_stopped_says_so() {
        let a = Arc::new(MemoryEngine::new(vec![]));
        let id = a.add_container(MemContainer::new(
            "acme-prod-web",
            "web:1",
            RunState::Exited,
            labels("web"),
        ));
        let sources = vec![Source {
            host: "h1".into(),
            service: "web".into(),
            container: "acme-prod-web".into(),
            id,
            engine: a,
        }];
        let options = vec![LogOptions {
            follow: true,
            ..Default::default()
        }];
        let events: Vec<Event> = futures::executor::block_on(merged(&sources, &options).collect());
        assert!(matches!(
            events.as_slice(),
            [Event::End {
                source: 0,
                end: End::Stopped(RunState::Exited)
            }]
        ));
    }
}

pub use op::*;

/// The operation: find the sources of a `logs` run (warning about what is missing) and merge
/// their lines into one stream; the face shows the lines and says why each source ended.
mod op {
    use super::{DEFAULT_TAIL, Event, Since, Source};
    use crate::engine::swarm::SwarmEngine;
    use crate::host::fleet;
    use crate::manifest::Loaded;
    use crate::ops::context::{Ctx, Op};
    use crate::ops::deploy::{self, Selection};
    use crate::ops::error::OpResult;
    use crate::plan::view;
    use futures::StreamExt;

    #[derive(Debug, Clone, Default)]
    pub struct LogsInput {
        pub env: String,
        pub select: Selection,
        pub since: Option<Since>,
        /// `--tail`: `Some(None)` is all lines.
        pub tail: Option<Option<usize>>,
        pub follow: bool,
    }

    /// Where a source's lines come from: a host's container, or a Swarm task on its node.
    pub struct Label {
        pub host: String,
        pub service: String,
        pub container: String,
    }

    /// The sources of a `logs` run and their merged lines.
    pub struct Found {
        pub labels: Vec<Label>,
        pub stream: futures::stream::BoxStream<'static, Event>,
        /// A host could not be read at all.
        pub failed: bool,
    }

    pub async fn logs(ctx: &Ctx, loaded: &Loaded, input: LogsInput) -> OpResult<Found> {
        let env = deploy::environment(loaded, &input.env)?;
        deploy::check_services(loaded, &input.select)?;
        deploy::check_pinned(
            &input.env,
            env,
            &input.select.services,
            "so no container of it runs there",
        )?;
        let tail = match (input.tail, input.since) {
            (Some(t), _) => t,
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAIL),
        };
        let op = ctx.op("logs", &input.env);
        if env.is_swarm() {
            swarm_sources(&op, loaded, &input, tail).await
        } else {
            host_sources(&op, loaded, &input, tail).await
        }
    }

    /// The current container of each selected service on every selected host.
    async fn host_sources(
        op: &Op,
        loaded: &Loaded,
        input: &LogsInput,
        tail: Option<usize>,
    ) -> OpResult<Found> {
        let select = &input.select;
        let hosts = fleet::hosts(loaded, &input.env, &select.hosts)?;
        let platform = loaded.manifest.platform.clone();
        let prefix = view::prefix(&platform, &input.env);
        let observed = fleet::observe_all(hosts, &prefix, op.ctx.connect_timeout).await;
        let mut failed = false;
        let mut sources = Vec::new();
        for o in observed {
            let name = o.host.name.clone();
            let (engine, list) = match o.result {
                Ok(r) => r,
                Err(e) => {
                    op.warn(format!("{name} is unreachable, its logs are missing: {e}"));
                    failed = true;
                    continue;
                }
            };
            let wanted: Vec<&str> = loaded
                .manifest
                .services_on(&input.env, &name)
                .into_iter()
                .filter(|s| select.services.is_empty() || select.services.iter().any(|x| x == s))
                .collect();
            let (found, missing) = super::current(&platform, &input.env, &wanted, &list);
            for s in missing {
                op.warn(format!(
                    "{name} {s}: no container (not deployed there yet: `fleetpin plan {}` shows it)",
                    input.env
                ));
            }
            for (service, c) in found {
                sources.push(Source {
                    host: name.clone(),
                    service,
                    container: c.name,
                    id: c.id,
                    engine: engine.clone(),
                });
            }
        }
        // `since` is counted back from each host's own clock.
        let mut options = Vec::new();
        for s in &sources {
            options
                .push(super::options_for(s.engine.as_ref(), input.since, tail, input.follow).await);
        }
        let stream = super::merged(&sources, &options).boxed();
        let labels = sources
            .into_iter()
            .map(|s| Label {
                host: s.host,
                service: s.service,
                container: s.container,
            })
            .collect();
        Ok(Found {
            labels,
            stream,
            failed,
        })
    }

    /// A Swarm environment: the running tasks of each selected service, read through the
    /// manager (which fetches them from their nodes), each labelled with its node's name.
    async fn swarm_sources(
        op: &Op,
        loaded: &Loaded,
        input: &LogsInput,
        tail: Option<usize>,
    ) -> OpResult<Found> {
        let select = &input.select;
        crate::ops::swarm::check_selection(&input.env, select)?;
        let engine = crate::ops::swarm::connect(loaded, &input.env, op.ctx.connect_timeout).await?;
        let nodes = crate::ops::swarm::node_names(&engine).await?;
        let env = &loaded.manifest.environments[&input.env];
        let mut labels = Vec::new();
        let mut tasks = Vec::new();
        for service in env.versions.keys() {
            if !(select.services.is_empty() || select.services.contains(service)) {
                continue;
            }
            let name = format!(
                "{}{service}",
                view::prefix(&loaded.manifest.platform, &input.env)
            );
            let Some(state) = engine.service(&name).await? else {
                op.warn(format!(
                    "{service}: no service {name} (not deployed yet: `fleetpin plan {}` shows it)",
                    input.env
                ));
                continue;
            };
            let mut running: Vec<_> = engine
                .tasks(&state.id)
                .await?
                .into_iter()
                .filter(|t| t.state == "running")
                .collect();
            running.sort_by_key(|t| t.slot);
            if running.is_empty() {
                op.warn(format!(
                    "{service}: no running task (`fleetpin audit {}`)",
                    input.env
                ));
            }
            for t in running {
                labels.push(Label {
                    host: nodes.get(&t.node_id).cloned().unwrap_or(t.node_id.clone()),
                    service: service.clone(),
                    container: format!("{name}.{}", t.slot.unwrap_or(0)),
                });
                tasks.push(t.id);
            }
        }
        // `since` is counted back from the manager's clock.
        let since = match input.since {
            None => None,
            Some(s) => Some(
                s.resolve(
                    engine
                        .clock()
                        .await
                        .unwrap_or_else(|_| std::time::SystemTime::now()),
                ),
            ),
        };
        let options = crate::engine::LogOptions {
            since,
            tail,
            follow: input.follow,
        };
        let stream = super::merged_tasks(&engine, &tasks, &options).boxed();
        Ok(Found {
            labels,
            stream,
            failed: false,
        })
    }
}
