//! The commands that read no manifest: the JSON Schema, shell completions, the man page.

use crate::cli::Cli;
use crate::error::{Error, Exit, Result};
use clap::CommandFactory;

pub fn schema() -> Result<Exit> {
    crate::render::show::schema();
    Ok(Exit::Success)
}

pub fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fleetpin", &mut out);
    crate::render::term::out(&String::from_utf8_lossy(&out));
    Ok(Exit::Success)
}

pub fn man() -> Result<Exit> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::msg(format!("rendering the man page: {e}")))?;
    crate::render::term::out(&String::from_utf8_lossy(&out));
    Ok(Exit::Success)
}
