//! The console's pages: one HTML page, its script and its style sheet, compiled into the binary
//! so that `fleetpin serve` stays one file to install, with no build step and nothing to find on
//! disk at run time. Plain HTML, CSS and JavaScript (no framework, nothing from another site):
//! the Content-Security-Policy every answer carries allows script and style from this server
//! only, and no inline script or style. They hold no data — the page reads everything from
//! `/api/v1/` with the session — so they answer without a sign-in, like `/healthz`, and are
//! revalidated rather than cached (`no-cache`) so a new binary's pages are seen at once.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The paths of the pages (the server's `Cache-Control` leaves theirs alone).
pub const PATHS: [&str; 3] = ["/", "/assets/app.js", "/assets/app.css"];

/// Whether `path` is one of the pages.
pub fn is_page(path: &str) -> bool {
    PATHS.contains(&path)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`, `GET /assets/app.js`, `GET /assets/app.css`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower_service::Service;

    #[tokio::test]
    async fn the_pages_are_served_with_their_types_and_no_inline_script_or_style() {
        let mut app: Router = router();
        for (path, kind, body) in [
            ("/", "text/html", INDEX),
            ("/assets/app.js", "text/javascript", SCRIPT),
            ("/assets/app.css", "text/css", STYLE),
        ] {
            let req = Request::get(path).body(Body::empty()).unwrap();
            let res = app.call(req).await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let h = |k| res.headers().get(k).unwrap().to_str().unwrap().to_string();
            assert!(h(header::CONTENT_TYPE).starts_with(kind), "{path}");
            assert_eq!(h(header::CACHE_CONTROL), "no-cache", "{path}");
            let got = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(got, body.as_bytes(), "{path}");
            assert!(is_page(path));
        }

        // The CSP allows no inline script or style: every <script> names its src, no element
        // has a style attribute or an on… handler.
        let html = INDEX.to_ascii_lowercase();
        let mut rest = html.as_str();
        while let Some(i) = rest.find("<script") {
            let tag = &rest[i..i + rest[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
            let after = &rest[i + tag.len() + 1..];
            assert!(
                after.starts_with("</script>"),
                "a script with a body: {tag}"
            );
            rest = after;
        }
        assert!(!html.contains("<style"), "a <style> element");
        let attrs: Vec<&str> = html
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or(""))
            .collect();
        for tag in attrs {
            for word in tag.split_whitespace().skip(1) {
                let name = word.split('=').next().unwrap_or("");
                assert!(name != "style", "a style attribute: <{tag}>");
                assert!(
                    !(name.starts_with("on") && word.contains('=')),
                    "an inline handler: <{tag}>"
                );
            }
        }
        // Nor does the script write markup or styles itself.
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            ".style.",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(bad), "app.js uses {bad}");
        }
    }
}
