//! How fleetpin talks to people: colours only on a terminal and never with NO_COLOR or
//! `--no-color`, miette snippets for manifest problems, and a plain `file:line:column` first line
//! that editors and grep understand.

pub mod agent;
pub mod audit;
pub mod history;
pub mod logs;
pub mod plan;
pub mod progress;
pub mod serve;
pub mod show;
pub mod term;

use crate::manifest::diagnostics::ManifestError;
use miette::{GraphicalReportHandler, GraphicalTheme};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when asked not to refuse it and the stream is a terminal.
    pub fn detect(no_color_flag: bool, stream_is_tty: bool) -> Style {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color_flag && !no_color_env && stream_is_tty,
        }
    }

    pub fn for_stderr(no_color_flag: bool) -> Style {
        Style::detect(no_color_flag, std::io::stderr().is_terminal())
    }

    pub fn for_stdout(no_color_flag: bool) -> Style {
        Style::detect(no_color_flag, std::io::stdout().is_terminal())
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// Every problem of a manifest, rendered with its snippet, then a count.
pub fn manifest_error(e: &ManifestError, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    // Beyond this many, snippets stop helping: the rest is counted (JSON has them all).
    const SHOWN: usize = 100;
    for d in e.diagnostics(SHOWN) {
        let _ = handler.render_report(&mut out, &d);
        out.push('\n');
    }
    if e.problems.len() > SHOWN {
        out.push_str(&format!(
            "… and {} more problems (all of them with --format json)\n",
            e.problems.len() - SHOWN
        ));
    }
    out.push_str(&style.red(&format!("error: {e}")));
    out.push('\n');
    out
}
