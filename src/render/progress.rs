//! The command line's sink for an operation's events: a spinner per host on a terminal, plain
//! `host: step` lines otherwise (logs, CI), nothing with `--quiet`; warnings, hooks starting,
//! what became of each webhook, and what Ctrl-C does. Always on stderr, so stdout keeps the
//! report (and exactly one JSON document with `--format json`).

use crate::cancel::Cancel;
use crate::ops::context::{OpEvent, Progress, Sink};
use crate::render::Style;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct CliSink {
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    quiet: bool,
    verbose: u8,
    /// `--format json`: a Swarm run's progress lines are left out.
    json: bool,
    err: Style,
}

impl CliSink {
    pub fn new(quiet: bool, verbose: u8, json: bool, err: Style) -> CliSink {
        let tty = std::io::stderr().is_terminal();
        CliSink {
            multi: (tty && !quiet).then(indicatif::MultiProgress::new),
            bars: Mutex::new(HashMap::new()),
            quiet,
            verbose,
            json,
            err,
        }
    }

    fn step(&self, host: &str, step: &str) {
        let Some(m) = &self.multi else {
            if !self.quiet {
                eprintln!("{host}: {step}");
            }
            return;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(host.to_string()).or_insert_with(|| {
            let bar = m.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(host.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(step.to_string());
    }

    fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        self.bars.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Sink for CliSink {
    fn emit(&self, event: &OpEvent) {
        match &event.progress {
            Progress::Step { host, step } => self.step(host, step),
            Progress::HostsDone => self.clear(),
            Progress::Swarm { line } => {
                if !self.quiet && !self.json {
                    eprintln!("  {line}");
                }
            }
            Progress::Warning { message } => {
                if !self.quiet {
                    eprintln!("{} {message}", self.err.yellow("warning:"));
                }
            }
            Progress::Hook { line, .. } => {
                if !self.quiet {
                    eprintln!("{}", self.err.dim(line));
                }
            }
            Progress::Notified { to, status } => {
                if self.verbose > 0 {
                    eprintln!("notified {to} (HTTP {status})");
                }
            }
            Progress::NotifyFailed { to, why } => eprintln!(
                "{} the notification to {to} failed: {why}",
                self.err.yellow("warning:")
            ),
            Progress::Event(_) | Progress::Sync(_) => {}
        }
    }
}

/// Says what a Ctrl-C (or the agent's SIGTERM) does once it arrives, on `rt`: the step in flight
/// finishes, nothing new starts; a second press changes nothing.
pub fn say_when_cancelled(rt: &tokio::runtime::Runtime, cancel: Cancel) {
    rt.spawn(async move {
        cancel.cancelled().await;
        if crate::interrupt::terminated() {
            eprintln!("terminated: finishing the step in flight, then stopping…");
            return;
        }
        eprintln!("\ninterrupted: finishing the step in flight, then stopping (service stays up)…");
        let mut seen = cancel.presses();
        loop {
            cancel.pressed_after(seen).await;
            seen = cancel.presses();
            eprintln!(
                "still finishing the step in flight; `kill -9` would leave it for the next run to repair"
            );
        }
    });
}
