//! Plugin commands: `PUT /plugin-commands/{uuid}` with a pipeline and a
//! component (base64) swaps that pipeline's plugin through the same checks
//! as a file drop; the status says whether it went live or why not.

use super::AppState;
use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{PluginInput, PluginResource};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A plugin command and its outcome.
#[derive(Debug, Clone)]
pub struct PluginCommand {
    tenant: String,
    body_hash: String,
    resource: PluginResource,
}

/// `PUT /plugin-commands/{id}`.
#[utoipa::path(put, path = "/plugin-commands/{id}", request_body = PluginInput, params(("id" = String, Path)),
    responses((status = 201, body = PluginResource, description = "processed: live or rejected"), (status = 200, body = PluginResource, description = "replay"),
        (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody), (status = 403, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>, body: Bytes) -> Result<(StatusCode, Json<PluginResource>), ApiError> {
    let id = parse_id(&id)?;
    let input: PluginInput = parse_body(&body)?;
    let handle = state.pipeline_for(&input.pipeline, &tenant)?.clone();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(input.component.trim())
        .map_err(|e| ApiError::bad(format!("component: expected the component's bytes in base64: {e}")))?;
    let body_hash = hex::encode(Sha256::digest(&body));
    {
        let mut cmds = state.plugins.lock().expect("plugins lock");
        if let Some(existing) = cmds.get(&id) {
            if existing.tenant == tenant.0 && existing.body_hash == body_hash {
                return Ok((StatusCode::OK, Json(existing.resource.clone())));
            }
            return Err(ApiError::conflict(format!("plugin command {id} exists with a different body")));
        }
        let resource = PluginResource {
            id: id.to_string(),
            pipeline: input.pipeline.clone(),
            status: "validating".into(),
            digest: crate::plugin::digest_of(&bytes),
            plugin: None,
            reason: None,
            created_at: Timestamp::now().to_string(),
            completed_at: None,
        };
        cmds.insert(id, PluginCommand { tenant: tenant.0.clone(), body_hash, resource });
    }
    let registry = handle.registry.clone();
    let name = input.pipeline.clone();
    let origin = format!("plugin command {id}");
    let result = tokio::task::spawn_blocking(move || registry.install_bytes(&name, &bytes, &origin))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut cmds = state.plugins.lock().expect("plugins lock");
    let cmd = cmds.get_mut(&id).ok_or_else(|| ApiError::internal("plugin command vanished"))?;
    let r = &mut cmd.resource;
    match result {
        Ok(plugin) => (r.status, r.plugin) = ("live".into(), Some(plugin.label())),
        Err(e) => (r.status, r.reason) = ("rejected".into(), Some(e.to_string())),
    }
    r.completed_at = Some(Timestamp::now().to_string());
    metrics::counter!("ferry_commands_total", "kind" => "plugin", "status" => r.status.clone()).increment(1);
    Ok((StatusCode::CREATED, Json(r.clone())))
}

/// `GET /plugin-commands/{id}`.
#[utoipa::path(get, path = "/plugin-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = PluginResource), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 403, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>) -> Result<Json<PluginResource>, ApiError> {
    let id = parse_id(&id)?;
    let cmds = state.plugins.lock().expect("plugins lock");
    let cmd = cmds.get(&id).ok_or_else(|| ApiError::not_found(format!("no plugin command {id}")))?;
    if cmd.tenant != tenant.0 {
        return Err(ApiError::forbidden(format!("plugin command {id} belongs to another tenant")));
    }
    Ok(Json(cmd.resource.clone()))
}
