//! How requests reach a tcp engine: over a connection pool of our own, so that a host's requests
//! share kept-alive connections (and, with TLS, one handshake) instead of one new connection per
//! request. bollard's own HTTP and HTTPS clients disable pooling, which at a fleet's scale costs a
//! TCP (and TLS) handshake per inspect and a file descriptor per request in flight: an audit of
//! 1,000 hosts then runs out of descriptors. Unix sockets keep bollard's transport (local); ssh
//! has its own (`engine::ssh`), which `custom` serves too.

use crate::engine::EngineError;
use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Idle connections kept per engine: as many as a host may have requests in flight
/// (`fleet::requests_per_host`), so that they are reused, not reopened.
const IDLE_PER_HOST: usize = 16;

fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    c.set_keepalive(Some(Duration::from_secs(30)));
    c.enforce_http(false);
    c
}

/// A plain-HTTP engine (`insecure: true`), pooled.
pub fn http(
    addr: &str,
    connect_timeout: Duration,
    request_timeout_secs: u64,
) -> Result<Docker, EngineError> {
    pooled(addr, request_timeout_secs, http_connector(connect_timeout))
}

/// An engine reached through `connector` (plain or TLS), with idle connections kept for reuse.
fn pooled<C>(addr: &str, request_timeout_secs: u64, connector: C) -> Result<Docker, EngineError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    );
    custom(addr, request_timeout_secs, move |req| {
        let client = client.clone();
        Box::pin(async move {
            client
                .request(req)
                .await
                .map_err(bollard::errors::Error::from)
        })
    })
}

/// A mutual-TLS engine (the manifest's `tls`: its CA, client certificate and key), pooled. Only
/// the given CA is trusted, as the docker CLI does with `--tlscacert`.
pub fn https(
    addr: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
    connect_timeout: Duration,
    request_timeout_secs: u64,
) -> Result<Docker, EngineError> {
    let fail = |what: &str, p: &Path, e: String| EngineError::Tls {
        endpoint: addr.to_string(),
        reason: format!("{what} {}: {e}", p.display()),
    };
    // Every certificate of a PEM file; `what` names the file in an error.
    let certificates = |what: &str, p: &Path| {
        CertificateDer::pem_file_iter(p)
            .map_err(|e| fail(what, p, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(what, p, e.to_string()))
    };
    let mut roots = rustls::RootCertStore::empty();
    let cas = certificates("ca", ca)?;
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err(fail("ca", ca, "no certificate in it".into()));
    }
    let chain = certificates("cert", cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail("key", key, e.to_string()))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("tls", ca, e.to_string()))?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key_der)
    .map_err(|e| fail("cert", cert, e.to_string()))?;
    let https = hyper_rustls::HttpsConnector::from((http_connector(connect_timeout), config));
    pooled(addr, request_timeout_secs, https)
}

pub(crate) fn custom(
    addr: &str,
    request_timeout_secs: u64,
    send: impl Fn(
        BollardRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error>,
                > + Send,
        >,
    > + Send
    + Sync
    + 'static,
) -> Result<Docker, EngineError> {
    Docker::connect_with_custom_transport(
        send,
        Some(addr),
        request_timeout_secs,
        // bollard 0.21 joins the request's path over the versioned prefix, so the path is sent
        // without one and the engine answers in its own API version; fleetpin reads only what API
        // 1.41 (Engine 20.10) already has.
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| EngineError::Connect {
        endpoint: addr.to_string(),
        reason: e.to_string(),
    })
}
