//! Plugin commands: `PUT /plugin-commands/{uuid}` with a pipeline and a
//! component (base64) swaps that pipeline's plugin through the same checks
//! as a file drop; the status says whether it went live or why not.
//! `POST /plugin-commands/{uuid}/undo` puts back the version that was live
//! before, through the same checks.

use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{PluginInput, PluginPage, PluginResource};
use super::status::PluginStatus;
use super::{AppState, PipelineHandle};
use crate::state::ControlStore;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A plugin command and its outcome (kept in the pipeline's state store).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginCommand {
    body_hash: String,
    created: Timestamp,
    resource: PluginResource,
}

impl PluginCommand {
    fn persist(&self, handle: &PipelineHandle) {
        let r = &self.resource;
        let record = serde_json::to_value(self).unwrap_or_default();
        super::history::persist(handle, "plugin", &r.id, &r.tenant, self.created, r.status.as_str(), record);
    }

    /// Moves the command on, as `PluginStatus::may_become` allows (see
    /// `status::advance`).
    fn become_(&mut self, next: PluginStatus) -> bool {
        super::status::advance(&mut self.resource.status, next, &self.resource.id)
    }
}

async fn install(handle: &Arc<PipelineHandle>, bytes: Vec<u8>, origin: String) -> Result<Result<String, String>, ApiError> {
    let registry = handle.registry.clone();
    let name = handle.pipeline.name.clone();
    let tenant = handle.tenant.clone();
    let result = crate::plugin::PluginPool::global().run(&tenant, move || registry.install_bytes(&name, &bytes, &origin)).await.map_err(ApiError::internal)?;
    Ok(result.map(|p| p.label()).map_err(|e| e.to_string()))
}

/// `PUT /plugin-commands/{id}`.
#[utoipa::path(put, path = "/plugin-commands/{id}", request_body = PluginInput, params(("id" = String, Path)),
    responses((status = 201, body = PluginResource, description = "processed: live or rejected"), (status = 200, body = PluginResource, description = "replay"),
        (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginResource>), ApiError> {
    let id = parse_id(&id)?;
    let input: PluginInput = parse_body(&body)?;
    let handle = state.pipeline_for(&input.pipeline, &tenant)?.clone();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(input.component.trim())
        .map_err(|e| ApiError::bad(format!("component: expected the component's bytes in base64: {e}")))?;
    let body_hash = hex::encode(Sha256::digest(&body));
    shared(&state, &tenant, id)?;
    {
        let mut cmds = state.plugins.lock().expect("plugins lock");
        if let Some(existing) = cmds.get(&super::command_key(&tenant.0, id)) {
            if existing.body_hash == body_hash {
                return Ok((StatusCode::OK, Json(existing.resource.clone())));
            }
            return Err(ApiError::conflict(format!("plugin command {id} exists with a different body")));
        }
        let resource = PluginResource {
            id: id.to_string(),
            pipeline: input.pipeline.clone(),
            tenant: tenant.0.clone(),
            status: PluginStatus::Validating,
            digest: crate::plugin::digest_of(&bytes),
            previous: handle.registry.live(&input.pipeline).map(|p| p.digest.clone()),
            undone_at: None,
            plugin: None,
            reason: None,
            created_at: Timestamp::now().to_string(),
            completed_at: None,
        };
        cmds.insert(super::command_key(&tenant.0, id), PluginCommand { body_hash, created: Timestamp::now(), resource });
    }
    let result = install(&handle, bytes, format!("plugin command {id}")).await?;
    let mut cmds = state.plugins.lock().expect("plugins lock");
    let cmd = cmds.get_mut(&super::command_key(&tenant.0, id)).ok_or_else(|| ApiError::internal("plugin command vanished"))?;
    match result {
        Ok(label) => {
            cmd.become_(PluginStatus::Live);
            cmd.resource.plugin = Some(label);
        }
        Err(reason) => {
            cmd.become_(PluginStatus::Rejected);
            cmd.resource.reason = Some(reason);
        }
    }
    let r = &mut cmd.resource;
    r.completed_at = Some(Timestamp::now().to_string());
    metrics::counter!("ferry_commands_total", "kind" => "plugin", "status" => r.status.as_str()).increment(1);
    cmd.persist(&handle);
    Ok((StatusCode::CREATED, Json(cmd.resource.clone())))
}

fn owned(state: &AppState, tenant: &Tenant, id: uuid::Uuid) -> Result<PluginCommand, ApiError> {
    shared(state, tenant, id)?;
    let cmds = state.plugins.lock().expect("plugins lock");
    cmds.get(&super::command_key(&tenant.0, id)).cloned().ok_or_else(|| ApiError::not_found(format!("no plugin command {id}")))
}

/// In a cluster, the shared table knows every worker's plugin commands:
/// one this worker has not seen is read from it (and kept here), so a
/// command PUT through one worker is read, replayed or undone through any.
/// Another kind of command under the id is a conflict.
fn shared(state: &AppState, tenant: &Tenant, id: uuid::Uuid) -> Result<(), ApiError> {
    let Some(cluster) = &state.cluster else { return Ok(()) };
    let key = super::command_key(&tenant.0, id);
    if state.plugins.lock().expect("plugins lock").contains_key(&key) {
        return Ok(());
    }
    let Some(record) = cluster.db().command(&tenant.0, &id.to_string()).map_err(|e| ApiError::internal(e.to_string()))? else { return Ok(()) };
    if record.kind != "plugin" {
        return Err(ApiError::conflict(format!("{id} is the id of a {} command", record.kind)));
    }
    let cmd: PluginCommand = serde_json::from_value(record.record).map_err(|e| ApiError::internal(format!("stored plugin command {id}: {e}")))?;
    state.plugins.lock().expect("plugins lock").entry(key).or_insert(cmd);
    Ok(())
}

/// `GET /plugin-commands/{id}`.
#[utoipa::path(get, path = "/plugin-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = PluginResource), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<PluginResource>, ApiError> {
    Ok(Json(owned(&state, &tenant, parse_id(&id)?)?.resource))
}

/// `POST /plugin-commands/{id}/undo`: puts back the version live before the
/// swap. Undoing twice is harmless; a swap superseded by a later one is
/// refused, naming the later command.
#[utoipa::path(post, path = "/plugin-commands/{id}/undo", params(("id" = String, Path)),
    responses((status = 200, body = PluginResource, description = "undone (or already undone)"), (status = 400, body = super::model::ErrorBody),
        (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn undo(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<PluginResource>, ApiError> {
    let id = parse_id(&id)?;
    let cmd = owned(&state, &tenant, id)?;
    let r = &cmd.resource;
    match r.status {
        PluginStatus::Undone => return Ok(Json(r.clone())),
        PluginStatus::Live => {}
        other => return Err(ApiError::conflict(format!("plugin command {id} is `{other}`: only a swap that went live can be undone"))),
    }
    let handle = state.pipeline_for(&r.pipeline, &tenant)?.clone();
    let later = state
        .plugins
        .lock()
        .expect("plugins lock")
        .values()
        .filter(|c| c.resource.pipeline == r.pipeline && c.resource.status == PluginStatus::Live && c.created > cmd.created)
        .max_by_key(|c| c.created)
        .map(|c| c.resource.id.clone());
    if let Some(later) = later {
        return Err(ApiError::conflict(format!("plugin command {id} was superseded by plugin command {later}; undo that one first")));
    }
    let live = handle.registry.live(&r.pipeline).map(|p| p.digest.clone());
    if live.as_deref() != Some(r.digest.as_str()) {
        return Err(ApiError::conflict(format!(
            "the live version of `{}` is {}, not the one plugin command {id} put live (it was replaced since, e.g. by a file change)",
            r.pipeline,
            live.as_deref().unwrap_or("none")
        )));
    }
    let previous =
        r.previous.clone().ok_or_else(|| ApiError::conflict(format!("plugin command {id} put the first version live; there is nothing before it")))?;
    let bytes = handle
        .state
        .plugin_version(&previous)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::conflict(format!("version {previous} is no longer kept; it cannot be put back")))?;
    if let Err(reason) = install(&handle, bytes, format!("undo of plugin command {id}")).await? {
        return Err(ApiError::conflict(format!("the previous version failed its checks and was not put back: {reason}")));
    }
    let mut cmds = state.plugins.lock().expect("plugins lock");
    let cmd = cmds.get_mut(&super::command_key(&tenant.0, id)).ok_or_else(|| ApiError::internal("plugin command vanished"))?;
    if cmd.become_(PluginStatus::Undone) {
        cmd.resource.undone_at = Some(Timestamp::now().to_string());
    }
    cmd.persist(&handle);
    metrics::counter!("ferry_commands_total", "kind" => "plugin", "status" => "undone").increment(1);
    Ok(Json(cmd.resource.clone()))
}

/// `GET /plugin-commands`: the history, newest first.
#[utoipa::path(get, path = "/plugin-commands",
    params(("pipeline" = Option<String>, Query), ("status" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
        ("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = PluginPage), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<PluginPage>, ApiError> {
    let q = super::history::parse_query(raw.as_deref())?;
    let (records, total) = super::history::list(&state, &tenant, "plugin", &q)?;
    let items = records.into_iter().filter_map(|r| serde_json::from_value::<PluginCommand>(r.record).ok()).map(|c| c.resource).collect();
    Ok(Json(PluginPage { items, total, limit: q.limit, offset: q.offset }))
}

/// Loads the stored plugin commands at start.
pub fn restore(state: &AppState) {
    for h in state.pipelines.values() {
        let filter = crate::state::CommandFilter { kind: "plugin".into(), pipeline: Some(h.pipeline.name.clone()), ..Default::default() };
        let mut cmds = state.plugins.lock().expect("plugins lock");
        for r in h.state.commands(&filter).unwrap_or_default() {
            if let Ok(c) = serde_json::from_value::<PluginCommand>(r.record)
                && let Ok(id) = uuid::Uuid::parse_str(&c.resource.id)
            {
                cmds.insert(super::command_key(&c.resource.tenant, id), c);
            }
        }
    }
}
