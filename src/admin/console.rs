//! The admin console's static assets (`src/admin/console/`), built into the binary.
//!
//! No data is served here: the page calls the token-protected API itself. Assets are
//! public like the page, so a browser can load them before the token is typed.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `(name, content type, bytes)` of every asset under `/console/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("console/style.css"),
    ),
];

const INDEX: &str = include_str!("console/index.html");

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the console page.
pub(super) async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{asset}`: a script or style sheet; 404 for anything else.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => with_headers(ct, body),
        None => (StatusCode::NOT_FOUND, "no such console asset").into_response(),
    }
}
