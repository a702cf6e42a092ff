//! The lines of `logs`: each prefixed by host and service, aligned and coloured per source as
//! compose and Kamal do, so several hosts' output reads as one; or, for scripts, one JSON object
//! per line (JSON Lines: a followed stream has no end at which one document could close).

use crate::observed::LogLine;
use crate::render::Style;
use serde_json::json;

/// Compose's prefix colours: distinct on dark and light terminals.
const PALETTE: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// Prints the lines of a fixed set of sources.
pub struct LogPrinter {
    prefixes: Vec<String>,
    colour: bool,
}

impl LogPrinter {
    /// `sources`: (host, service) of each source, in the order of their indexes.
    pub fn new(sources: &[(&str, &str)], style: Style) -> LogPrinter {
        let labels: Vec<String> = sources.iter().map(|(h, s)| format!("{h} {s}")).collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let prefixes = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let padded = format!("{l:<width$} |");
                style.paint(PALETTE[i % PALETTE.len()], &padded)
            })
            .collect();
        LogPrinter {
            prefixes,
            colour: style.color,
        }
    }

    /// `h1 billing | the line`
    pub fn text(&self, source: usize, line: &LogLine) -> String {
        if line.line.is_empty() {
            return self.prefixes[source].clone();
        }
        format!(
            "{} {}",
            self.prefixes[source],
            clean(&line.line, self.colour)
        )
    }
}

/// One JSON object: host, service, container, stream (stdout or stderr), time (the engine's,
/// RFC 3339 with nanoseconds, or null), line.
pub fn json_line(host: &str, service: &str, container: &str, line: &LogLine) -> String {
    json!({
        "host": host,
        "service": service,
        "container": container,
        "stream": line.stream,
        "time": line.time,
        "line": line.line,
    })
    .to_string()
}

/// A container's output may hold terminal escapes (colours, cursor moves, a title change): shown
/// as they are they would garble the prefixes or the operator's terminal. Colours are kept when
/// fleetpin colours too (reset at the end of the line, so none leaks into the next prefix) and
/// dropped otherwise; every other escape sequence is dropped, other control characters become `�`.
fn clean(s: &str, keep_colours: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut coloured = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(c),
            '\x1b' if chars.peek() == Some(&'[') => {
                // A CSI sequence runs to its final byte (@ to ~); a colour ends with `m`.
                let mut seq = String::from("\x1b[");
                chars.next();
                let mut end = None;
                for d in chars.by_ref() {
                    seq.push(d);
                    if ('\x40'..='\x7e').contains(&d) {
                        end = Some(d);
                        break;
                    }
                }
                if end == Some('m') && keep_colours {
                    out.push_str(&seq);
                    coloured = true;
                }
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    if coloured {
        out.push_str("\x1b[0m");
    }
    out
}

/// Prints the lines of a `logs` run (merged by time, or as they come when following, until
/// `cancel`) and says why each source ended; true when some source's logs are incomplete.
pub async fn show_all(
    look: crate::render::show::Look,
    sources: &[crate::ops::logs::Label],
    mut stream: futures::stream::BoxStream<'static, crate::ops::logs::Event>,
    follow: bool,
    cancel: crate::cancel::Cancel,
) -> bool {
    use crate::ops::logs::{End, Event};
    use futures::StreamExt;
    use std::io::Write;
    let json = look.format == crate::cli::Format::Json;
    let names: Vec<(&str, &str)> = sources
        .iter()
        .map(|s| (s.host.as_str(), s.service.as_str()))
        .collect();
    let printer = LogPrinter::new(&names, look.out);
    let show = |out: &mut dyn Write, i: usize, line: &LogLine| {
        let s = &sources[i];
        let text = if json {
            json_line(&s.host, &s.service, &s.container, line)
        } else {
            printer.text(i, line)
        };
        writeln!(out, "{text}")
    };
    let warn = |msg: String| eprintln!("{} {msg}", look.err.yellow("warning:"));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut lost = std::collections::BTreeSet::new();
    // Says why a source ended; true when its logs are incomplete.
    let report =
        |source: usize, end: &End, lost: &mut std::collections::BTreeSet<String>| -> bool {
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
                            if follow {
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
    if follow {
        let stop = cancel.cancelled();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
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
        crate::ops::logs::by_time(&mut lines);
        for (source, line) in &lines {
            if show(&mut out, *source, line).is_err() {
                break;
            }
        }
        let _ = out.flush();
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::LogStream;

    fn l(text: &str) -> LogLine {
        LogLine {
            stream: LogStream::Stderr,
            time: Some("2026-01-01T00:00:00.5Z".into()),
            line: text.into(),
        }
    }

    #[test]
    fn prefixes_are_aligned_and_uncoloured_without_colour() {
        let p = LogPrinter::new(
            &[("h1", "billing"), ("prod-22", "db")],
            Style { color: false },
        );
        assert_eq!(p.text(0, &l("up")), "h1 billing | up");
        assert_eq!(p.text(1, &l("ready")), "prod-22 db | ready");
        assert_eq!(p.text(1, &l("")), "prod-22 db |");
        let c = LogPrinter::new(&[("h1", "web")], Style { color: true });
        assert_eq!(c.text(0, &l("x")), "\x1b[36mh1 web |\x1b[0m x");
    }

    #[test]
    fn terminal_escapes_other_than_colours_are_neutralised() {
        let raw = l("\x1b]0;title\x07a\x1b[2Jb\x1b[31mred");
        let p = LogPrinter::new(&[("h", "s")], Style { color: false });
        assert_eq!(p.text(0, &raw), "h s | �]0;title�abred");
        let c = LogPrinter::new(&[("h", "s")], Style { color: true });
        assert_eq!(
            c.text(0, &raw),
            "\x1b[36mh s |\x1b[0m �]0;title�ab\x1b[31mred\x1b[0m"
        );
    }

    #[test]
    fn json_lines_name_the_stream() {
        let v: serde_json::Value =
            serde_json::from_str(&json_line("h1", "web", "acme-prod-web", &l("boom"))).unwrap();
        assert_eq!(
            v,
            json!({"host": "h1", "service": "web", "container": "acme-prod-web",
                   "stream": "stderr", "time": "2026-01-01T00:00:00.5Z", "line": "boom"})
        );
    }
}
