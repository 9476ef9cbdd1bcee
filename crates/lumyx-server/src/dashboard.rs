//! `GET /dashboard`: the developer dashboard, a web page over the
//! `/v1/keys` API. Its HTML, CSS and script are compiled into the binary
//! (no build step, nothing from the network), and served with a strict
//! Content-Security-Policy: only this origin's script and style, no inline
//! code, no framing. The page holds nothing secret: it asks for the admin
//! token and sends it to the API like any other client.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The page.
const INDEX: &str = include_str!("dashboard/index.html");
/// Its style sheet.
const STYLE: &str = include_str!("dashboard/dashboard.css");
/// Its script.
const SCRIPT: &str = include_str!("dashboard/dashboard.js");

/// What the page may load and do: its own script, style, images (inline
/// SVG is part of the document) and API calls; nothing inline, no frames.
pub(crate) const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /dashboard`.
pub(crate) async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /dashboard/dashboard.css`.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /dashboard/dashboard.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `body` with its type and the headers that keep the page to itself.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}
