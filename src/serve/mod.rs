//! `fleetpin serve`: the second face. The same operations as the command line (`crate::ops`),
//! over HTTP for the people who will not live in a terminal: a JSON API under `/api/v1/`, its
//! OpenAPI description, Prometheus metrics, and the sign-in and rights around them (who is who:
//! OpenID Connect or API tokens; who may do what: rights per environment). Handlers only
//! extract, check the right, call an operation and answer its typed outcome.

pub mod api;
pub mod cache;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod operations;
pub mod rights;
pub mod server;
pub mod session;
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

/// 32 random bytes, URL-safe base64: session cookies, CSRF tokens, operation ids.
pub fn random_id() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// How the server reads an API token: the token store named by the configuration.
fn token_checker(_config: &std::path::Path) -> Result<server::TokenCheck, ServeError> {
    Ok(std::sync::Arc::new(|_: &str| None))
}

/// Runs the server until interrupted.
pub async fn run(config: &Config, args: &ServeArgs) -> Result<(), ServeError> {
    // Stopgap until serve.yaml carries `oidc:` (and the trusted proxies): FLEETPIN_OIDC_*.
    let vars = |k: &str| std::env::var(k).ok();
    let transport = oidc::Transport {
        tls: args.tls_cert.is_some(),
        trusted_proxies: vec![],
    };
    let oidc = match oidc::OidcSettings::from_env(&vars)? {
        Some(settings) => Some(std::sync::Arc::new(oidc::Oidc::new(
            settings, &vars, transport,
        )?)),
        None => None,
    };
    let app = std::sync::Arc::new(server::App {
        manifest: config.file.clone(),
        keys: crate::secrets::process_keys(),
        connect_timeout: config.connect_timeout,
        tokens: token_checker(&args.config)?,
        sessions: session::Sessions::new(
            std::time::Duration::from_secs(3600),
            std::time::Duration::from_secs(12 * 3600),
        ),
        operations: Default::default(),
        cache: Default::default(),
        counters: Default::default(),
        oidc,
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: args.listen.clone(),
            reason: e.to_string(),
        })?;
    let cancel = crate::interrupt::token();
    // The peer's address: a proxy's forwarded headers are trusted only from its own.
    let service = server::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .map_err(|e| ServeError::Listen {
            addr: args.listen.clone(),
            reason: e.to_string(),
        })
}
