//! `fleetpin serve`: the second face. The same operations as the command line (`crate::ops`),
//! over HTTP for the people who will not live in a terminal: pages (`pages`), a JSON API under
//! `/api/v1/`, its OpenAPI description, Prometheus metrics, and the sign-in and rights around
//! them (who is who: OpenID Connect or API tokens; who may do what: rights per environment).
//! Handlers only extract, check the right, call an operation and answer its typed outcome.

pub mod agent_metrics;
pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod details;
pub mod error;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod operations;
pub mod pages;
pub mod reference;
pub mod rights;
pub mod server;
pub mod session;
pub mod signin;
pub mod tls;
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

/// How the server reads an API token: the token store of the configuration (read again when
/// the file changes: a revoked token stops working without a restart).
fn token_checker(config: &config::ServeConfig) -> app::TokenCheck {
    let store = tokens::TokenStore::for_config(config);
    std::sync::Arc::new(move |secret: &str| {
        let now = std::time::SystemTime::now();
        let t = store.verify(secret, now)?;
        let _ = store.record_use(&t.name, now);
        Some(t.principal())
    })
}

/// Runs the server until interrupted.
pub async fn run(config: &Config, args: &ServeArgs) -> Result<(), ServeError> {
    // Read before anything else: a certificate that does not load stops the start.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let settings =
        config::ServeConfig::load(&args.config).map_err(|e| ServeError::Config(e.to_string()))?;
    settings
        .create_state_dir()
        .map_err(|e| ServeError::Config(format!("{}: {e}", settings.state_dir.display())))?;
    // What it follows: `--repo` (or serve.yaml's `repo:`) in a clone of its own, else the
    // working tree's manifest as the command line reads it.
    let reference = match args.repo.clone().or_else(|| settings.repo.clone()) {
        Some(url) => reference::Reference::cloned(
            url,
            settings.branch.clone(),
            settings.state_dir.join("reference"),
            &settings.manifest,
        )
        .await
        .map_err(|e| ServeError::Config(format!("following the reference: {e}")))?,
        None => reference::Reference::working_tree(config.file.clone()),
    };
    let reference = std::sync::Arc::new(reference);
    // Every environment's identity from serve.yaml, for reading (audit, masking logs); never
    // the process's SOPS_AGE_KEY* (the console's keys are the ones serve.yaml names).
    let keys = crate::secrets::Keys::none()
        .with_files(settings.age_identities.values().cloned().collect());
    // OpenID Connect: serve.yaml's `oidc:`, else FLEETPIN_OIDC_* (for tests and trials).
    let vars = |k: &str| std::env::var(k).ok();
    let transport = oidc::Transport {
        tls: tls.is_some(),
        // Whole blocks (`IpRange::contains`), not only their first address.
        trusted_proxies: settings.trusted_proxies.clone(),
        public_https: settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
    };
    let oidc_settings = match &settings.oidc {
        Some(c) => Some(oidc::OidcSettings {
            issuer: c.issuer.clone(),
            client_id: c.client_id.clone(),
            client_secret_env: c.client_secret_env.clone(),
            redirect_url: c
                .redirect_url
                .clone()
                .or_else(|| {
                    settings
                        .public_url
                        .as_ref()
                        .map(|u| format!("{}/auth/callback", u.trim_end_matches('/')))
                })
                .ok_or_else(|| {
                    ServeError::Config(
                        "oidc: set redirect_url (or public_url): the console's /auth/callback as browsers reach it".into(),
                    )
                })?,
            scopes: c.scopes.iter().filter(|s| *s != "openid").cloned().collect(),
            groups_claim: c.groups_claim.clone(),
            roles: c.roles.clone(),
        }),
        None => oidc::OidcSettings::from_env(&vars)?,
    };
    let oidc = match oidc_settings {
        Some(s) => Some(std::sync::Arc::new(oidc::Oidc::new(
            s,
            &vars,
            transport.clone(),
        )?)),
        None => None,
    };
    let app = std::sync::Arc::new(app::App {
        reference: reference.clone(),
        keys: std::sync::Arc::new(keys),
        age_identities: settings.age_identities.clone(),
        connect_timeout: config.connect_timeout,
        tokens: token_checker(&settings),
        break_glass: settings.break_glass,
        sessions: session::Sessions::new(settings.session.idle, settings.session.max),
        operations: Default::default(),
        cache: Default::default(),
        counters: Default::default(),
        oidc,
        transport,
        parsed: Default::default(),
    });
    {
        let app = app.clone();
        reference.keep_fetched(move || app.cache.invalidate());
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: args.listen.clone(),
            reason: e.to_string(),
        })?;
    let cancel = crate::interrupt::token();
    // The peer's address: a proxy's forwarded headers are trusted only from its own.
    let router = server::router(app);
    let served = match tls {
        None => {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await
        }
        Some(config) => {
            use axum::serve::ListenerExt;
            let listener = tls::TlsListener::new(listener, config)
                .map_err(|e| ServeError::Listen {
                    addr: args.listen.clone(),
                    reason: e.to_string(),
                })?
                // `tap_io` gives the peer's address to handlers as for plain TCP.
                .tap_io(|_| {});
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await
        }
    };
    served.map_err(|e| ServeError::Listen {
        addr: args.listen.clone(),
        reason: e.to_string(),
    })
}
