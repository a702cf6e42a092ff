//! Notifications: one JSON POST per outcome of apply, rollback and promote to each webhook of the
//! manifest's `notify` — the event document (`ops::event`) with a Slack-compatible `text` line.
//!
//! A notification is news, not part of the deploy: one that fails or is slow warns and never
//! changes the exit code. A webhook's path is often its secret (Slack's are), so no message ever
//! shows more of it than `scheme://host`, and a token named by `webhook_env` is read from the
//! environment (it stays out of git) and sent as `Authorization: Bearer …`.
//!
//! HTTPS trusts the system's roots (rustls-native-certs: the OS store, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), so an internal CA the operator's machine already trusts works too. The client
//! is the hyper one the engine transports use; no second HTTP stack.

use crate::manifest::values::url_origin;
use crate::manifest::{DEFAULT_NOTIFY_TIMEOUT, Notifier};
use crate::ops::context::Vars;
use crate::ops::event::Event;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The JSON a webhook receives: the event and its `text`.
pub fn body(event: &Event) -> String {
    let mut v = serde_json::to_value(event).expect("an event serialises");
    v["text"] = serde_json::Value::String(event.text());
    v.to_string()
}

/// What became of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered with this 2xx status.
    Delivered { to: String, status: u16 },
    /// Why not; says `scheme://host` of the webhook only.
    Failed { to: String, why: String },
}

/// Posts `event` to every notifier at once, each within its own timeout; a `webhook_env` token
/// is looked up with `vars` (the face's environment: the process's for the command line).
pub async fn send_all(notifiers: &[Notifier], event: &Event, vars: &Vars) -> Vec<Sent> {
    if notifiers.is_empty() {
        return vec![];
    }
    let client = match client() {
        Ok(c) => Arc::new(c),
        Err(why) => {
            return notifiers
                .iter()
                .map(|n| Sent::Failed {
                    to: url_origin(&n.webhook.value),
                    why: why.to_string(),
                })
                .collect();
        }
    };
    let body = body(event);
    let sends = notifiers
        .iter()
        .map(|n| send(client.clone(), n, body.clone(), vars));
    futures::future::join_all(sends).await
}

/// Why no HTTPS client could be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS: {0}")]
pub struct ClientError(String);

fn client() -> Result<Client<Https, String>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn send(client: Arc<Client<Https, String>>, n: &Notifier, body: String, vars: &Vars) -> Sent {
    let url = &n.webhook.value;
    let to = url_origin(url);
    let token = match &n.webhook_env {
        None => None,
        Some(var) => match vars(var) {
            Some(t) if !t.is_empty() => Some(t),
            _ => {
                return Sent::Failed {
                    to,
                    why: format!(
                        "{var} is not set, so the notification was not sent (webhook_env names the variable that holds its token)"
                    ),
                };
            }
        },
    };
    let redact = |s: String| redact(s, url, token.as_deref());
    let mut req = hyper::Request::post(url.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("fleetpin/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = &token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match req.body(body) {
        Ok(r) => r,
        Err(e) => {
            return Sent::Failed {
                to,
                why: redact(format!("the request could not be built: {e}")),
            };
        }
    };
    let timeout = n.timeout.unwrap_or(DEFAULT_NOTIFY_TIMEOUT);
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Sent::Failed {
            to,
            why: format!("no answer within {}", humantime::format_duration(timeout)),
        },
        Ok(Err(e)) => Sent::Failed {
            to,
            why: redact(chain(&e)),
        },
        Ok(Ok(resp)) if resp.status().is_success() => Sent::Delivered {
            to,
            status: resp.status().as_u16(),
        },
        Ok(Ok(resp)) => Sent::Failed {
            to,
            why: format!("the receiver answered HTTP {}", resp.status()),
        },
    }
}

/// An error and its causes, `: `-joined (hyper's own message alone says only "client error").
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The webhook's path and query, and the token, never appear in a message.
fn redact(mut s: String, url: &str, token: Option<&str>) -> String {
    let origin = url_origin(url);
    if let Some(rest) = url.strip_prefix(&origin).filter(|r| r.len() > 1) {
        s = s.replace(url, &format!("{origin}/…")).replace(rest, "/…");
    }
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        s = s.replace(t, "…");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_the_path_or_the_token() {
        let url = "https://hooks.example/services/T0/B0/SECRET?x=1";
        assert_eq!(
            redact(
                format!("error sending to {url} with Bearer tok123"),
                url,
                Some("tok123")
            ),
            "error sending to https://hooks.example/… with Bearer …"
        );
        assert_eq!(
            redact("GET /services/T0/B0/SECRET?x=1 failed".into(), url, None),
            "GET /… failed"
        );
    }

    #[test]
    fn the_body_is_the_event_with_its_text() {
        let e = Event::new("apply", "acme", "prod", "uncommitted", "me");
        let v: serde_json::Value = serde_json::from_str(&body(&e)).unwrap();
        assert_eq!(v["command"], "apply");
        assert_eq!(v["text"], e.text());
    }
}
