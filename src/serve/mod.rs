//! `fleetpin serve`: the second face. The same operations as the command line (`crate::ops`),
//! over HTTP for the people who will not live in a terminal: a JSON API under `/api/v1/`, its
//! OpenAPI description, Prometheus metrics, and the sign-in and rights around them (who is who:
//! OpenID Connect or API tokens; who may do what: rights per environment). Handlers only
//! extract, check the right, call an operation and answer its typed outcome.

pub mod cli;
pub mod config;
pub mod rights;
pub mod tokens;

use crate::cli::ServeArgs;
use crate::config::Config;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// Runs the server until interrupted.
pub async fn run(_config: &Config, _args: &ServeArgs) -> Result<(), ServeError> {
    Err(ServeError::Config("fleetpin serve: not built yet".into()))
}
