//! The settings every command reads, resolved once from the global flags (and NO_COLOR, the
//! terminal): commands never look at raw arguments for these.

use crate::cli::{Format, Global};
use crate::render::Style;
use std::path::PathBuf;
use std::time::Duration;

/// What every command needs to know about how it was called.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub format: Format,
    pub out: Style,
    pub err: Style,
    pub verbose: u8,
    pub quiet: bool,
    pub connect_timeout: Duration,
}

impl Config {
    pub fn from_global(g: &Global) -> Config {
        Config {
            file: g.file.clone(),
            format: g.format,
            out: Style::for_stdout(g.no_color),
            err: Style::for_stderr(g.no_color),
            verbose: g.verbose,
            quiet: g.quiet,
            connect_timeout: Duration::from_secs(g.connect_timeout),
        }
    }
}
