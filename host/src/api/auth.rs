//! Bearer tokens, each bound to a tenant. Tokens are compared, never logged.

use super::AppState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The tenant a request acts as.
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

/// Resolves the bearer token to a tenant: 401 without a known token.
pub async fn require_tenant(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let token = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(token) = token else {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "missing `Authorization: Bearer <token>`".into()));
    };
    let Some(tenant) = state.tokens.get(token) else {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()));
    };
    req.extensions_mut().insert(Tenant(tenant.clone()));
    Ok(next.run(req).await)
}
