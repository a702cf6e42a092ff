//! `fleetpin serve`: the console's server, and `serve token …` for its API tokens. Parses, calls
//! `crate::serve`, renders.

use crate::cli::{ServeArgs, ServeCommand};
use crate::config::Config;
use crate::error::{Error, Exit, Result};

pub fn run(config: &Config, args: &ServeArgs) -> Result<Exit> {
    match &args.command {
        Some(ServeCommand::Token {
            command,
            config: file,
        }) => crate::serve::cli::token(config, file, command),
        None => {
            let rt = super::runtime();
            rt.block_on(crate::serve::run(config, args))
                .map_err(|e| Error::msg(e.to_string()))?;
            Ok(Exit::Success)
        }
    }
}
