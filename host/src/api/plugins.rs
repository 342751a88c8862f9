//! Plugin commands over HTTP: `PUT /plugin-commands/{uuid}` with a pipeline
//! and a component (base64) swaps that pipeline's plugin through the same
//! checks as a file drop; the status says whether it went live or why not.
//! `POST /plugin-commands/{uuid}/undo` puts back the version that was live
//! before. Each handler parses, takes the caller's tenant and calls the
//! engine ([`crate::commands`]).

use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{ErrorBody, PluginInput, PluginPage, PluginResource};
use super::{AppState, query::parse_query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `PUT /plugin-commands/{id}`.
#[utoipa::path(put, path = "/plugin-commands/{id}", request_body = PluginInput, params(("id" = String, Path)),
    responses((status = 201, body = PluginResource, description = "processed: live or rejected"), (status = 200, body = PluginResource, description = "replay"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginResource>), ApiError> {
    let id = parse_id(&id)?;
    let input: PluginInput = parse_body(&body)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(input.component.trim())
        .map_err(|e| ApiError::bad(format!("component: expected the component's bytes in base64: {e}")))?;
    let body_hash = hex::encode(Sha256::digest(&body));
    let a = state.engine.swap_plugin(&tenant.0, id, &input.pipeline, bytes, body_hash).await?;
    Ok((if a.created { StatusCode::CREATED } else { StatusCode::OK }, Json(a.resource)))
}

/// `GET /plugin-commands/{id}`.
#[utoipa::path(get, path = "/plugin-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = PluginResource), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<PluginResource>, ApiError> {
    Ok(Json(state.engine.plugin_command(&tenant.0, parse_id(&id)?)?))
}

/// `POST /plugin-commands/{id}/undo`: puts back the version live before the
/// swap. Undoing twice is harmless; a swap superseded by a later one is
/// refused, naming the later command.
#[utoipa::path(post, path = "/plugin-commands/{id}/undo", params(("id" = String, Path)),
    responses((status = 200, body = PluginResource, description = "undone (or already undone)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn undo(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<PluginResource>, ApiError> {
    Ok(Json(state.engine.undo_plugin(&tenant.0, parse_id(&id)?).await?))
}

/// `GET /plugin-commands`: the history, newest first.
#[utoipa::path(get, path = "/plugin-commands",
    params(("pipeline" = Option<String>, Query), ("status" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
        ("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = PluginPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    RawQuery(raw): RawQuery,
) -> Result<Json<PluginPage>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let (items, total) = state.engine.list_plugin_commands(&tenant.0, &q)?;
    Ok(Json(PluginPage { items, total, limit: q.limit, offset: q.offset }))
}
