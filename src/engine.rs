//! The one seam between fleetpin and Docker.
//!
//! Everything above this trait — manifest resolution, planning, rollback choice, promotion gates —
//! is pure code over fleetpin's own types and is tested without a daemon. Only `docker` (bollard)
//! implements it for real; tests of pure logic may implement it in memory. No bollard type crosses
//! this line, so a bollard upgrade or another engine API touches one file.

use serde::Serialize;
use std::future::Future;

/// What a host's engine says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// Docker Engine version, e.g. `20.10.24`.
    pub server_version: String,
    /// The API version negotiated for this connection, e.g. `1.41`.
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no answer from {endpoint} within {seconds}s")]
    Timeout { endpoint: String, seconds: u64 },
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("TLS files for {endpoint}: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("{endpoint} answered with an error: {reason}")]
    Api { endpoint: String, reason: String },
}

pub trait Engine: Send + Sync {
    /// The address this engine was reached at, for messages.
    fn endpoint(&self) -> &str;
    fn info(&self) -> impl Future<Output = Result<EngineInfo, EngineError>> + Send;
}
