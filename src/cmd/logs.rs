//! `fleetpin logs ENV`: the output of the current container of each selected service on every
//! selected host, at once, each line prefixed by host and service (JSON Lines with
//! `--format json`). Reads only; takes no lock.
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
    let hosts = fleet::hosts(&loaded, &args.env, &select.hosts).map_err(Error::msg)?;
    let platform = loaded.manifest.platform.clone();
    let prefix = view::prefix(&platform, &args.env);
    let warn = |msg: String| eprintln!("{} {msg}", config.err.yellow("warning:"));

    let rt = super::runtime();
    let observed = rt.block_on(fleet::observe_all(hosts, &prefix, config.connect_timeout));
    let mut failed = false;
    let mut sources = Vec::new();
    for o in observed {
        let name = o.host.name.clone();
        let (engine, list) = match o.result {
            Ok(r) => r,
            Err(e) => {
                warn(format!("{name} is unreachable, its logs are missing: {e}"));
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
            warn(format!(
                "{name} {s}: no container (not deployed there yet: `fleetpin plan {}` shows it)",
                args.env
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
    if sources.is_empty() {
        if !failed {
            warn(format!(
                "no container to read in {} for this selection",
                args.env
            ));
        }
        return Ok(if failed { Exit::Failure } else { Exit::Success });
    }

    let tail = match (args.tail, args.since) {
        (Some(t), _) => t.0,
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAIL),
    };
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

    let incomplete = rt.block_on(async {
        // `since` is counted back from each host's own clock.
        let mut options = Vec::new();
        for s in &sources {
            options.push(logs::options_for(s.engine.as_ref(), args.since, tail, args.follow).await);
        }
        let mut stream = logs::merged(&sources, &options);
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
                        warn(format!(
                            "{} was lost ({e}); {}",
                            s.host,
                            if args.follow {
                                "following the other hosts"
                            } else {
                                "its logs are incomplete"
                            }
                        ));
                    }
                    true
                }
                End::Failed(e) => {
                    warn(format!("{} {}: {e}", s.host, s.service));
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
    });
    Ok(if failed || incomplete {
        Exit::Failure
    } else {
        Exit::Success
    })
}
