//! Where a person sees progress on long work: a spinner per host on a terminal, plain
//! `host: step` lines otherwise (logs, CI), nothing with `--quiet`. Always on stderr, so stdout
//! keeps the report (and exactly one JSON document with `--format json`).

use std::io::IsTerminal;
use std::time::Duration;

pub struct ProgressSink {
    multi: Option<indicatif::MultiProgress>,
    quiet: bool,
}

impl ProgressSink {
    pub fn new(quiet: bool) -> ProgressSink {
        let tty = std::io::stderr().is_terminal();
        ProgressSink {
            multi: (tty && !quiet).then(indicatif::MultiProgress::new),
            quiet,
        }
    }

    /// A reporter for one host.
    pub fn host(&self, host: &str) -> Box<dyn Fn(&str) + Send + Sync> {
        let host = host.to_string();
        match &self.multi {
            Some(m) => {
                let bar = m.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_prefix(host);
                bar.enable_steady_tick(Duration::from_millis(120));
                Box::new(move |msg: &str| bar.set_message(msg.to_string()))
            }
            None if self.quiet => Box::new(|_: &str| {}),
            None => Box::new(move |msg: &str| eprintln!("{host}: {msg}")),
        }
    }

    pub fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
