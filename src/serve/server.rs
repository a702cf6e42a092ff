//! The HTTP server: the router, who is calling (an API token in the `Authorization` header, or a
//! session cookie), CSRF on every state-changing request made with a cookie, and the headers
//! every answer carries (a Content-Security-Policy without inline script, no framing, no
//! sniffing). Nothing but `/healthz`, the sign-in routes and the pages (which hold no data)
//! answers without a sign-in.

use super::api;
use super::app::{App, Caller};
use super::error::json;
use super::session::{COOKIE, cookie, same};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/environments", get(api::environments))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/history", get(api::history))
        .route("/api/v1/environments/{env}/plan", get(api::plan))
        .route("/api/v1/environments/{env}/logs", get(api::logs))
        .route(
            "/api/v1/environments/{env}/logs/follow",
            get(api::follow_logs),
        )
        .route("/api/v1/environments/{env}/apply", post(api::apply))
        .route(
            "/api/v1/environments/{env}/rollback",
            get(api::rollback_plan).post(api::rollback),
        )
        .route("/api/v1/environments/{env}/unlock", post(api::unlock))
        .route("/api/v1/promote", post(api::promote))
        .route("/api/v1/operations/{id}", get(api::operation))
        .route("/api/v1/operations/{id}/events", get(api::events))
        .route("/api/v1/whoami", get(api::whoami))
        // What the pages show beyond the CLI's documents (a service's releases, a commit's diff).
        .route(
            "/api/v1/environments/{env}/services/{service}/releases",
            get(super::details::service_releases),
        )
        .route(
            "/api/v1/environments/{env}/commits/{commit}/diff",
            get(super::details::commit_diff),
        )
        .route("/metrics", get(api::metrics))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        // Sign-in and sign-out: before a session exists, so outside `authenticate` (sign-out
        // checks the session's CSRF token itself).
        .route("/auth/login", get(super::signin::login))
        .route("/auth/callback", get(super::signin::callback))
        .route("/auth/logout", post(super::signin::logout))
        .route("/auth/break-glass", post(break_glass))
        // The pages: no data in them, so no sign-in either (the page asks /api/v1/whoami).
        .merge(super::pages::router())
        .merge(api)
        .layer(middleware::from_fn(headers))
        .with_state(app)
}

/// Every answer: no inline script, no framing, no sniffing, no referrer, no caching of data; and
/// an error is always the JSON document (axum's own rejections — a bad query, a body that is
/// not the JSON expected — are plain text until here).
async fn headers(req: Request, next: Next) -> Response {
    let page = super::pages::is_page(req.uri().path());
    let mut res = next.run(req).await;
    let status = res.status();
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if (status.is_client_error() || status.is_server_error()) && plain {
        let body = axum::body::to_bytes(std::mem::take(res.body_mut()), 64 * 1024)
            .await
            .unwrap_or_default();
        res = api::error(status, String::from_utf8_lossy(&body).trim());
    }
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    // The pages are revalidated (their own `no-cache`); nothing else is kept.
    if !(page && h.contains_key(header::CACHE_CONTROL)) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// Who is calling: an API token (`Authorization: Bearer …`, only there) or a live session; a
/// state-changing request made with a session must carry its CSRF token (`X-CSRF-Token`).
async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    let caller = if let Some(auth) = h.get(header::AUTHORIZATION) {
        let secret = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match secret.and_then(|s| (app.tokens)(s)) {
            Some(principal) => Caller {
                principal,
                session: None,
            },
            None => return api::error(StatusCode::UNAUTHORIZED, "invalid or expired API token"),
        }
    } else if let Some(live) = cookie(h, COOKIE).and_then(|c| app.sessions.get(&c)) {
        let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if changes {
            let sent = h
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(sent, &live.csrf) {
                return api::error(
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token (X-CSRF-Token)",
                );
            }
        }
        Caller {
            principal: live.principal.clone(),
            session: Some(live),
        }
    } else {
        return api::error(
            StatusCode::UNAUTHORIZED,
            "sign in first, or send an API token in the Authorization header",
        );
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct BreakGlass {
    token: String,
}

/// When the OpenID provider is down and serve.yaml enables it: an API token opens a browser
/// session (same rights as the token). Answers the session's CSRF token.
async fn break_glass(
    State(app): State<Arc<App>>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<BreakGlass>,
) -> Response {
    if !app.break_glass {
        return api::error(
            StatusCode::NOT_FOUND,
            "break-glass sign-in is off (serve.yaml: break_glass: true)",
        );
    }
    let Some(principal) = (app.tokens)(body.token.trim()) else {
        return api::error(StatusCode::UNAUTHORIZED, "invalid or expired API token");
    };
    tracing::warn!("break-glass sign-in as {}", principal.id);
    let (cookie, csrf) = app.sessions.create(principal);
    let mut res = json(StatusCode::OK, &serde_json::json!({ "csrf": csrf }));
    let secure = app.transport.secure(&headers, super::oidc::peer(connect));
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&cookie, secure)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// The session cookie: HttpOnly (no script reads it), SameSite=Lax, the whole site; Secure
/// when the browser talks HTTPS to us.
pub fn session_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/{secure}")
}
