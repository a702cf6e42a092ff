//! The browser's side of signing in and out: `/auth/login`, `/auth/callback`, `/auth/logout`.
//! They join the OpenID client (`super::oidc`, which knows the provider and nothing of the
//! console) to the sessions every request reaches (`super::app`), and only extract, call and
//! respond: what a sign-in checks is in `Oidc::begin` and `Oidc::complete`. Their cookies are
//! `HttpOnly`, `SameSite=Lax`, and `Secure` whenever the browser talks HTTPS to us.

use super::app::App;
use super::error as api;
use super::oidc::{Answer, PENDING_TTL, SignInError, peer};
use super::session::{COOKIE, cookie, same};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The cookie that binds a sign-in under way to the browser that started it.
pub const SIGNIN_COOKIE: &str = "fleetpin_signin";

/// `next` as given, if it is a path on this server (never another site: `//host`, `/\host`).
fn local_path(next: Option<&str>) -> Option<String> {
    let next = next.unwrap_or("/");
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
        && next.chars().all(|c| c.is_ascii_graphic());
    ok.then(|| next.to_string())
}

fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are URL-safe base64")
}

fn redirect(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    res
}

fn not_configured() -> Response {
    api::error(
        StatusCode::NOT_FOUND,
        "OpenID Connect sign-in is not configured (serve.yaml's oidc section)",
    )
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/login?next=/path`: off to the provider.
pub async fn login(
    State(app): State<Arc<App>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(oidc) = app.oidc.as_deref() else {
        return not_configured();
    };
    let Some(next) = local_path(q.next.as_deref()) else {
        return api::error(
            StatusCode::BAD_REQUEST,
            "next must be a path on this server (/…)",
        );
    };
    match oidc.begin(next).await {
        Ok(started) => redirect(
            &started.url,
            vec![set_cookie(
                SIGNIN_COOKIE,
                &started.browser,
                "/auth",
                Some(PENDING_TTL.as_secs()),
                oidc.secure(&headers, peer(connect)),
            )],
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /auth/callback?code=…&state=…`: the provider's answer; a session if all holds. The
/// sign-in cookie is cleared either way.
pub async fn callback(
    State(app): State<Arc<App>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(answer): Query<Answer>,
) -> Response {
    let Some(oidc) = app.oidc.as_deref() else {
        return not_configured();
    };
    let secure = oidc.secure(&headers, peer(connect));
    let clear_signin = set_cookie(SIGNIN_COOKIE, "", "/auth", Some(0), secure);
    let browser = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    let signed_in = match oidc.complete(answer, &browser).await {
        Ok(s) => s,
        Err(e) => return refused(e, clear_signin),
    };
    tracing::info!(
        "signed in: {} ({})",
        signed_in.principal.id,
        signed_in.principal.subject
    );
    // A session this browser had before ends here: one browser, one session.
    if let Some(old) = cookie(&headers, COOKIE) {
        app.sessions.revoke(&old);
    }
    let (session, _csrf) = app.sessions.create(signed_in.principal);
    redirect(
        &signed_in.next,
        vec![
            set_cookie(COOKIE, &session, "/", None, secure),
            clear_signin,
        ],
    )
}

fn refused(e: SignInError, clear_signin: HeaderValue) -> Response {
    let mut res = e.into_response();
    res.headers_mut().append(header::SET_COOKIE, clear_signin);
    res
}

/// `POST /auth/logout` with the session's CSRF token (`X-CSRF-Token`, or a form's `csrf`): the
/// session revoked, the cookie cleared. A form is sent back to `/`; a script gets 204.
pub async fn logout(
    State(app): State<Arc<App>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secure = app
        .oidc
        .as_deref()
        .map(|o| o.secure(&headers, peer(connect)))
        .unwrap_or(false);
    let clear = set_cookie(COOKIE, "", "/", Some(0), secure);
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let cookie_value = cookie(&headers, COOKIE);
    let live = cookie_value.as_deref().and_then(|c| app.sessions.get(c));
    if let (Some(c), Some(live)) = (cookie_value.as_deref(), live) {
        let header_token = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let form_token = if form {
            openidconnect::url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        if !same(header_token, &live.csrf) && !same(&form_token, &live.csrf) {
            return api::error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (X-CSRF-Token, or the form's csrf)",
            );
        }
        app.sessions.revoke(c);
        tracing::info!("signed out: {}", live.principal.id);
    }
    // No live session: nothing to revoke, the cookie is cleared all the same.
    let mut res = if form {
        redirect("/", vec![])
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    res.headers_mut().append(header::SET_COOKIE, clear);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_a_local_path() {
        assert_eq!(local_path(None).as_deref(), Some("/"));
        assert_eq!(
            local_path(Some("/env/prod?x=1")).as_deref(),
            Some("/env/prod?x=1")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a b",
            "/\u{e9}",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn cookies_say_secure_only_when_asked() {
        let c = set_cookie(COOKIE, "abc", "/", None, true);
        assert_eq!(
            c,
            "fleetpin_session=abc; HttpOnly; SameSite=Lax; Path=/; Secure"
        );
        let c = set_cookie(SIGNIN_COOKIE, "", "/auth", Some(0), false);
        assert_eq!(
            c,
            "fleetpin_signin=; HttpOnly; SameSite=Lax; Path=/auth; Max-Age=0"
        );
    }
}
