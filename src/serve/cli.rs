//! `fleetpin serve token create|list|revoke`.

use crate::cli::TokenCommand;
use crate::config::Config;
use crate::error::{Error, Exit, Result};

pub fn token(_config: &Config, _file: &std::path::Path, _command: &TokenCommand) -> Result<Exit> {
    Err(Error::msg("fleetpin serve token: not built yet"))
}
