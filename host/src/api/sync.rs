//! Sync commands over HTTP: `PUT /sync-commands/{uuid}` (idempotent),
//! `POST` with an optional id, status by `GET`, failed records by
//! `GET .../tasks`, delivered records by `GET .../records`, a queued one
//! cancelled by `DELETE`. Each handler parses, takes the caller's tenant
//! and calls the engine ([`crate::commands`]).

use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{ErrorBody, RecordsView, SyncInput, SyncPage, SyncPost, SyncResource, TasksView};
use super::{AppState, query::parse_query};
use crate::commands::Accepted;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use std::sync::Arc;
use uuid::Uuid;

fn answer<T>(a: Accepted<T>) -> (StatusCode, Json<T>) {
    (if a.created { StatusCode::CREATED } else { StatusCode::OK }, Json(a.resource))
}

/// `PUT /sync-commands/{id}`.
#[utoipa::path(put, path = "/sync-commands/{id}", request_body = SyncInput, params(("id" = String, Path, description = "client-chosen UUID")),
    responses((status = 201, body = SyncResource, description = "created and queued"), (status = 200, body = SyncResource, description = "replay of the same command"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SyncResource>), ApiError> {
    let id = parse_id(&id)?;
    let input: SyncInput = parse_body(&body)?;
    Ok(answer(state.engine.create_sync(&tenant.0, id, input, "api")?))
}

/// `POST /sync-commands`.
#[utoipa::path(post, path = "/sync-commands", request_body = SyncPost,
    responses((status = 201, body = SyncResource), (status = 200, body = SyncResource), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    body: Bytes,
) -> Result<(StatusCode, Json<SyncResource>), ApiError> {
    let p: SyncPost = parse_body(&body)?;
    let id = match &p.id {
        Some(id) => parse_id(id)?,
        None => Uuid::new_v4(),
    };
    let input = SyncInput { pipeline: p.pipeline, since: p.since, until: p.until };
    Ok(answer(state.engine.create_sync(&tenant.0, id, input, "api")?))
}

/// `GET /sync-commands/{id}`.
#[utoipa::path(get, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<SyncResource>, ApiError> {
    Ok(Json(state.engine.sync(&tenant.0, parse_id(&id)?)?))
}

/// `GET /sync-commands/{id}/tasks`: the failed records with reasons.
#[utoipa::path(get, path = "/sync-commands/{id}/tasks",
    params(("id" = String, Path), ("limit" = Option<u64>, Query, description = "page size, 1 to 500 (default 50)"), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = TasksView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TasksView>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let (tasks, total) = state.engine.sync_tasks(&tenant.0, parse_id(&id)?, q.offset, q.limit)?;
    Ok(Json(TasksView { tasks, total, limit: q.limit, offset: q.offset }))
}

/// `DELETE /sync-commands/{id}`: cancels a command that has not started
/// (idempotently); 409 once it has.
#[utoipa::path(delete, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource, description = "cancelled (or already cancelled)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<SyncResource>, ApiError> {
    Ok(Json(state.engine.cancel_sync(&tenant.0, parse_id(&id)?)?))
}

/// `GET /sync-commands`: the history, newest first.
#[utoipa::path(get, path = "/sync-commands",
    params(("pipeline" = Option<String>, Query), ("status" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
        ("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = SyncPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SyncPage>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let (items, total) = state.engine.list_syncs(&tenant.0, &q)?;
    Ok(Json(SyncPage { items, total, limit: q.limit, offset: q.offset }))
}

/// `GET /sync-commands/{id}/records`: ids of the records the sync delivered.
#[utoipa::path(get, path = "/sync-commands/{id}/records", params(("id" = String, Path)),
    responses((status = 200, body = RecordsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn records(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<RecordsView>, ApiError> {
    let records = state.engine.sync_records(&tenant.0, parse_id(&id)?)?;
    Ok(Json(RecordsView { count: records.len() as u64, records }))
}
