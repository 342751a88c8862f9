//! The monitoring page served at `/`: one HTML file embedded in the binary
//! (no CDN). It asks for a token and then uses the same API as everyone
//! else, so tenant isolation holds on the page too.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("dashboard.html");

/// `GET /`.
pub async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], PAGE)
}
