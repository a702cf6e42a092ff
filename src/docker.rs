//! The bollard implementation of the `Engine` seam: connecting over unix, tcp (TLS, or plain when
//! the manifest says `insecure: true`) and ssh, always negotiating the API version down to what the
//! host speaks (fleets run old engines: 20.10 speaks API 1.41), and turning bollard's errors and
//! types into fleetpin's.

use crate::engine::{Engine, EngineError, EngineInfo};
use crate::values::Endpoint;
use bollard::Docker;
use std::path::PathBuf;
use std::time::Duration;

/// Client certificate files, already resolved against the manifest's directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: Endpoint,
    pub tls: Option<TlsFiles>,
    pub insecure: bool,
}

pub struct DockerEngine {
    docker: Docker,
    endpoint: String,
    timeout: Duration,
}

/// Seconds bollard waits on one request once connected (pulls stream, so this bounds silence).
const REQUEST_TIMEOUT_SECS: u64 = 120;

impl DockerEngine {
    /// Connects and negotiates the API version; fails within `connect_timeout` if the host is dead.
    pub async fn connect(
        target: &Target,
        connect_timeout: Duration,
    ) -> Result<DockerEngine, EngineError> {
        let endpoint = target.endpoint.key();
        let conn = |e: bollard::errors::Error| EngineError::Connect {
            endpoint: endpoint.clone(),
            reason: e.to_string(),
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match &target.endpoint {
            Endpoint::Unix { path } => {
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version).map_err(conn)?
            }
            Endpoint::Tcp { host, port } => match &target.tls {
                Some(tls) => {
                    for (what, p) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                        if !p.is_file() {
                            return Err(EngineError::Tls {
                                endpoint: endpoint.clone(),
                                reason: format!("{what} file {} does not exist", p.display()),
                            });
                        }
                    }
                    Docker::connect_with_ssl(
                        &format!("https://{host}:{port}"),
                        &tls.key,
                        &tls.cert,
                        &tls.ca,
                        REQUEST_TIMEOUT_SECS,
                        version,
                    )
                    .map_err(|e| EngineError::Tls {
                        endpoint: endpoint.clone(),
                        reason: e.to_string(),
                    })?
                }
                None if target.insecure => Docker::connect_with_http(
                    &format!("http://{host}:{port}"),
                    REQUEST_TIMEOUT_SECS,
                    version,
                )
                .map_err(conn)?,
                None => {
                    return Err(EngineError::Connect {
                        endpoint,
                        reason: "plain tcp needs `insecure: true` in the manifest (or `tls`)"
                            .into(),
                    });
                }
            },
            Endpoint::Ssh { .. } => {
                Docker::connect_with_ssh(&endpoint, REQUEST_TIMEOUT_SECS, version, None)
                    .map_err(conn)?
            }
        };
        let docker = match tokio::time::timeout(connect_timeout, docker.negotiate_version()).await {
            Err(_) => {
                return Err(EngineError::Timeout {
                    endpoint,
                    seconds: connect_timeout.as_secs(),
                });
            }
            Ok(Err(e)) => return Err(conn(e)),
            Ok(Ok(d)) => d,
        };
        Ok(DockerEngine {
            docker,
            endpoint,
            timeout: connect_timeout,
        })
    }
}

impl Engine for DockerEngine {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let v = tokio::time::timeout(self.timeout, self.docker.version())
            .await
            .map_err(|_| EngineError::Timeout {
                endpoint: self.endpoint.clone(),
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|e| EngineError::Api {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let negotiated = self.docker.client_version();
        Ok(EngineInfo {
            server_version: v.version.unwrap_or_default(),
            api_version: format!("{}.{}", negotiated.major_version, negotiated.minor_version),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        })
    }
}
