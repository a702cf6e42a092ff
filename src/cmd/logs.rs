//! `fleetpin logs ENV`: the output of the current container of each selected service on every
//! selected host, at once, each line prefixed by host and service (JSON Lines with
//! `--format json`). Reads only; takes no lock. In a Swarm environment the sources are the running
//! tasks of each service, read through the manager and labelled with their node's name.
//!
//! Exit codes: 0 when every selected host answered (also when following ends with Ctrl-C, the
//! way to stop following: nothing was interrupted, so not 130), 1 when a host was unreachable or
//! lost, or a container's logs could not be read — the lines of the others are still shown.

use crate::cli::{Format, LogsArgs};
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::host::fleet;
use crate::ops::deploy;
use crate::ops::logs::{self, DEFAULT_TAIL, End, Event, Source};
use crate::plan::view;
use crate::render::logs::{LogPrinter, json_line};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

pub fn run(config: &Config, args: &LogsArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let select = super::selection(&args.select);
    let env = super::environment(&loaded, &args.env)?;
    deploy::check_services(&loaded, &select)?;
    for s in &select.services {
        if !env.versions.contains_key(s) {
            return Err(Error::msg(format!(
                "`{s}` is not pinned in {}, so no container of it runs there (pinned: {})",
                args.env,
                env.versions.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let tail = match (args.tail, args.since) {
        (Some(t), _) => t.0,
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAIL),
    };
    let rt = super::runtime();
    let found = if env.is_swarm() {
        rt.block_on(swarm_sources(config, args, &loaded, &select, tail))?
    } else {
        rt.block_on(host_sources(config, args, &loaded, &select, tail))?
    };
    let Found {
        labels,
        stream,
        failed,
    } = found;
    if labels.is_empty() {
        if !failed {
            warn(
                config,
                format!("no container to read in {} for this selection", args.env),
            );
        }
        return Ok(if failed { Exit::Failure } else { Exit::Success });
    }
    let incomplete = rt.block_on(show_all(config, args, &labels, stream));
    Ok(if failed || incomplete {
        Exit::Failure
    } else {
        Exit::Success
    })
}

fn warn(config: &Config, msg: String) {
    eprintln!("{} {msg}", config.err.yellow("warning:"));
}

/// Where a source's lines come from: a host's container, or a Swarm task on its node.
struct Label {
    host: String,
    service: String,
    container: String,
}

/// The sources of a `logs` run and their merged lines.
struct Found {
    labels: Vec<Label>,
    stream: futures::stream::BoxStream<'static, Event>,
    /// A host could not be read at all.
    failed: bool,
}

/// The current container of each selected service on every selected host.
async fn host_sources(
    config: &Config,
    args: &LogsArgs,
    loaded: &crate::manifest::Loaded,
    select: &deploy::Selection,
    tail: Option<usize>,
) -> Result<Found> {
    let hosts = fleet::hosts(loaded, &args.env, &select.hosts)?;
    let platform = loaded.manifest.platform.clone();
    let prefix = view::prefix(&platform, &args.env);
    let observed = fleet::observe_all(hosts, &prefix, config.connect_timeout).await;
    let mut failed = false;
    let mut sources = Vec::new();
    for o in observed {
        let name = o.host.name.clone();
        let (engine, list) = match o.result {
            Ok(r) => r,
            Err(e) => {
                warn(
                    config,
                    format!("{name} is unreachable, its logs are missing: {e}"),
                );
                failed = true;
                continue;
            }
        };
        let engine = Arc::new(engine);
        let wanted: Vec<&str> = loaded
            .manifest
            .services_on(&args.env, &name)
            .into_iter()
            .filter(|s| select.services.is_empty() || select.services.iter().any(|x| x == s))
            .collect();
        let (found, missing) = logs::current(&platform, &args.env, &wanted, &list);
        for s in missing {
            warn(
                config,
                format!(
                    "{name} {s}: no container (not deployed there yet: `fleetpin plan {}` shows it)",
                    args.env
                ),
            );
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
        options.push(logs::options_for(s.engine.as_ref(), args.since, tail, args.follow).await);
    }
    let stream = logs::merged(&sources, &options).boxed();
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

/// A Swarm environment: the running tasks of each selected service, read through the manager
/// (which fetches them from their nodes), each labelled with its node's name.
async fn swarm_sources(
    config: &Config,
    args: &LogsArgs,
    loaded: &crate::manifest::Loaded,
    select: &deploy::Selection,
    tail: Option<usize>,
) -> Result<Found> {
    use crate::engine::swarm::SwarmEngine;
    crate::ops::swarm::check_selection(&args.env, select)?;
    let engine = crate::ops::swarm::connect(loaded, &args.env, config.connect_timeout).await?;
    let unreachable = |e: crate::engine::EngineError| Error::msg(e.to_string());
    let nodes = crate::ops::swarm::node_names(&engine).await?;
    let env = &loaded.manifest.environments[&args.env];
    let mut labels = Vec::new();
    let mut tasks = Vec::new();
    for service in env.versions.keys() {
        if !(select.services.is_empty() || select.services.contains(service)) {
            continue;
        }
        let name = format!(
            "{}{service}",
            view::prefix(&loaded.manifest.platform, &args.env)
        );
        let Some(state) = engine.service(&name).await.map_err(unreachable)? else {
            warn(
                config,
                format!(
                    "{service}: no service {name} (not deployed yet: `fleetpin plan {}` shows it)",
                    args.env
                ),
            );
            continue;
        };
        let mut running: Vec<_> = engine
            .tasks(&state.id)
            .await
            .map_err(unreachable)?
            .into_iter()
            .filter(|t| t.state == "running")
            .collect();
        running.sort_by_key(|t| t.slot);
        if running.is_empty() {
            warn(
                config,
                format!("{service}: no running task (`fleetpin audit {}`)", args.env),
            );
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
    let since = match args.since {
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
        follow: args.follow,
    };
    let stream = logs::merged_tasks(&engine, &tasks, &options).boxed();
    Ok(Found {
        labels,
        stream,
        failed: false,
    })
}

/// Prints the lines (merged by time, or as they come when following) and says why each source
/// ended; true when some source's logs are incomplete.
async fn show_all(
    config: &Config,
    args: &LogsArgs,
    sources: &[Label],
    mut stream: futures::stream::BoxStream<'static, Event>,
) -> bool {
    let json = config.format == Format::Json;
    let names: Vec<(&str, &str)> = sources
        .iter()
        .map(|s| (s.host.as_str(), s.service.as_str()))
        .collect();
    let printer = LogPrinter::new(&names, config.out);
    let show = |out: &mut dyn Write, i: usize, line: &crate::engine::LogLine| {
        let s = &sources[i];
        let text = if json {
            json_line(&s.host, &s.service, &s.container, line)
        } else {
            printer.text(i, line)
        };
        writeln!(out, "{text}")
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut lost = BTreeSet::new();
    // Says why a source ended; true when its logs are incomplete.
    let report = |source: usize, end: &End, lost: &mut BTreeSet<String>| -> bool {
        let s = &sources[source];
        match end {
            End::Done => false,
            End::Stopped(state) => {
                eprintln!(
                    "{} {}: {} is not running ({}); no more lines from it",
                    s.host,
                    s.service,
                    s.container,
                    format!("{state:?}").to_lowercase()
                );
                false
            }
            End::Closed => {
                eprintln!(
                    "{} {}: the engine closed the log stream of {}",
                    s.host, s.service, s.container
                );
                false
            }
            End::Lost(e) => {
                if lost.insert(s.host.clone()) {
                    warn(
                        config,
                        format!(
                            "{} was lost ({e}); {}",
                            s.host,
                            if args.follow {
                                "following the other hosts"
                            } else {
                                "its logs are incomplete"
                            }
                        ),
                    );
                }
                true
            }
            End::Failed(e) => {
                warn(config, format!("{} {}: {e}", s.host, s.service));
                true
            }
        }
    };
    let mut errors = false;
    if args.follow {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                ev = stream.next() => match ev {
                    None => break,
                    Some(Event::Line { source, line }) => {
                        // A closed pipe (`| head`) is the reader saying it has seen enough.
                        if show(&mut out, source, &line).and_then(|_| out.flush()).is_err() {
                            break;
                        }
                    }
                    Some(Event::End { source, end }) => {
                        errors |= report(source, &end, &mut lost);
                    }
                },
            }
        }
    } else {
        let mut lines = Vec::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Event::Line { source, line } => lines.push((source, line)),
                Event::End { source, end } => {
                    errors |= report(source, &end, &mut lost);
                }
            }
        }
        logs::by_time(&mut lines);
        for (source, line) in &lines {
            if show(&mut out, *source, line).is_err() {
                break;
            }
        }
        let _ = out.flush();
    }
    errors
}
