//! Sync commands: `PUT /sync-commands/{uuid}` (idempotent), `POST` with an
//! optional id, status by `GET`, failed records by `GET .../tasks`. One run
//! per pipeline at a time: later commands wait in the pipeline's queue and
//! say so (`status: queued`, `queuePosition`). The queue's worker, the
//! schedule and one run are in `run`.

use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{SyncInput, SyncPost, SyncResource, TaskCountView, TaskView, TasksView};
use super::status::SyncStatus;
use super::{AppState, CommandKey, PipelineHandle, command_key};
use crate::pipeline::summary::Counters;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use uuid::Uuid;

mod dispatch;
mod run;
mod shared;

pub use dispatch::dispatch;
pub(crate) use run::{execute, finish};
pub use run::{restore, schedule, worker};
pub use shared::shared_queue;

/// A sync command and what became of it (kept in the pipeline's state store).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncCommand {
    id: Uuid,
    tenant: String,
    input: SyncInput,
    #[serde(default)]
    origin: String,
    created: Timestamp,
    started: Option<Timestamp>,
    completed: Option<Timestamp>,
    status: SyncStatus,
    count: TaskCountView,
    error: Option<String>,
    failed: Vec<TaskView>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    notes: Vec<String>,
}

pub(crate) fn live_count(c: &Counters) -> TaskCountView {
    let success = c.delivered.load(Ordering::Relaxed);
    let failed = c.failed_mapping.load(Ordering::Relaxed) + c.failed_target.load(Ordering::Relaxed);
    TaskCountView { failed, success, total: success + failed }
}

impl SyncCommand {
    fn persist(&self, state: &AppState) {
        if let Some(h) = state.pipelines.get(&self.input.pipeline) {
            let record = serde_json::to_value(self).unwrap_or_default();
            super::history::persist(h, "sync", &self.id.to_string(), &self.tenant, self.created, self.status.as_str(), record);
        }
    }

    pub(crate) fn record(&self, handle: &PipelineHandle) -> crate::state::CommandRecord {
        let record = serde_json::to_value(self).unwrap_or_default();
        super::history::record(handle, "sync", &self.id.to_string(), &self.tenant, self.created, self.status.as_str(), record)
    }

    pub(crate) fn from_record(record: crate::state::CommandRecord) -> Result<SyncCommand, ApiError> {
        serde_json::from_value(record.record).map_err(|e| ApiError::internal(format!("stored sync command {}: {e}", record.id)))
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    pub(crate) fn input(&self) -> &SyncInput {
        &self.input
    }

    pub(crate) fn status(&self) -> SyncStatus {
        self.status
    }

    /// Moves the command on, as `SyncStatus::may_become` allows (see
    /// `status::advance`).
    pub(crate) fn become_(&mut self, next: SyncStatus) -> bool {
        super::status::advance(&mut self.status, next, &self.id)
    }

    pub(crate) fn cancel(&mut self) {
        if self.become_(SyncStatus::Cancelled) {
            self.completed = Some(Timestamp::now());
        }
    }

    /// Claimed by `worker`: running from now (or again, after a takeover).
    pub(crate) fn start(&mut self, worker: &str) {
        if self.status == SyncStatus::Running {
            let before = self.worker.as_deref().unwrap_or("?");
            self.notes.push(format!("{}: taken over by worker {worker} after worker {before} stopped renewing its lease", Timestamp::now()));
        }
        self.become_(SyncStatus::Running);
        self.worker = Some(worker.to_string());
        self.started.get_or_insert_with(Timestamp::now);
    }

    /// Back in the queue: `worker` stopped during the run; the next worker
    /// to claim the pipeline resumes it.
    pub(crate) fn requeue(&mut self, worker: &str) {
        self.become_(SyncStatus::Queued);
        self.notes
            .push(format!("{}: worker {worker} stopped during the run; queued again, the next run resumes from the outbox and checkpoint", Timestamp::now()));
    }

    pub(crate) fn resource(&self, state: &AppState) -> SyncResource {
        let handle = state.pipelines.get(&self.input.pipeline);
        let mut count = self.count;
        let mut position = None;
        if let Some(h) = handle {
            if let Some((id, runner)) = h.running.lock().expect("running lock").as_ref()
                && *id == self.id
            {
                count = live_count(&runner.counters);
            }
            if self.status == SyncStatus::Queued {
                position = match &state.cluster {
                    Some(_) => shared::queue_position(h, self.id),
                    None => h.queue.lock().expect("queue lock").iter().position(|q| *q == self.id).map(|p| p as u64 + 1),
                };
            }
        }
        SyncResource {
            id: self.id.to_string(),
            pipeline: self.input.pipeline.clone(),
            tenant: self.tenant.clone(),
            input: self.input.clone(),
            origin: self.origin.clone(),
            status: self.status,
            queue_position: position,
            created_at: self.created.to_string(),
            started_at: self.started.map(|t| t.to_string()),
            completed_at: self.completed.map(|t| t.to_string()),
            task_count: count,
            error: self.error.clone(),
            worker: self.worker.clone(),
            notes: self.notes.clone(),
        }
    }
}

fn validate(input: &SyncInput) -> Result<(), ApiError> {
    for (name, v) in [("since", &input.since), ("until", &input.until)] {
        if let Some(t) = v {
            crate::time::parse(t).map_err(|e| ApiError::bad(format!("{name}: {e}")))?;
        }
    }
    Ok(())
}

/// Creates or replays a command; the check and the insert happen under one
/// lock, so a concurrent double PUT starts one run.
fn create(state: &AppState, tenant: &Tenant, id: Uuid, input: SyncInput, origin: &str) -> Result<(StatusCode, SyncResource), ApiError> {
    validate(&input)?;
    let handle = state.pipeline_for(&input.pipeline, tenant)?;
    let mut syncs = state.syncs.lock().expect("syncs lock");
    // In a cluster only the shared table knows every command.
    if let Some(existing) = syncs.get(&command_key(&tenant.0, id)).filter(|_| state.cluster.is_none()) {
        if existing.input == input {
            return Ok((StatusCode::OK, existing.resource(state)));
        }
        return Err(ApiError::conflict(format!("sync command {id} exists with a different body")));
    }
    let cmd = SyncCommand {
        id,
        tenant: tenant.0.clone(),
        input: input.clone(),
        origin: origin.to_string(),
        created: Timestamp::now(),
        started: None,
        completed: None,
        status: SyncStatus::Queued,
        count: TaskCountView::default(),
        error: None,
        failed: Vec::new(),
        worker: None,
        notes: Vec::new(),
    };
    // The store decides: in a cluster, another worker may have taken the id.
    if let Some(stored) = handle.state.insert_command(&cmd.record(handle)).map_err(|e| ApiError::internal(e.to_string()))? {
        if stored.kind != "sync" {
            return Err(ApiError::conflict(format!("{id} is the id of a {} command", stored.kind)));
        }
        let existing = SyncCommand::from_record(stored)?;
        if existing.input == input {
            return Ok((StatusCode::OK, existing.resource(state)));
        }
        return Err(ApiError::conflict(format!("sync command {id} exists with a different body")));
    }
    if state.cluster.is_none() {
        handle.queue.lock().expect("queue lock").push_back(id);
    }
    let resource = cmd.resource(state);
    if state.cluster.is_none() {
        syncs.insert(command_key(&tenant.0, id), cmd);
    }
    drop(syncs);
    handle.wake.notify_one();
    state.dispatch.notify_one();
    metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "created", "origin" => origin.to_string()).increment(1);
    tracing::info!(pipeline = %resource.pipeline, command = %id, origin, "sync command queued");
    Ok((StatusCode::CREATED, resource))
}

/// `PUT /sync-commands/{id}`.
#[utoipa::path(put, path = "/sync-commands/{id}", request_body = SyncInput, params(("id" = String, Path, description = "client-chosen UUID")),
    responses((status = 201, body = SyncResource, description = "created and queued"), (status = 200, body = SyncResource, description = "replay of the same command"),
        (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SyncResource>), ApiError> {
    let id = parse_id(&id)?;
    let input: SyncInput = parse_body(&body)?;
    let (status, r) = create(&state, &tenant, id, input, "api")?;
    Ok((status, Json(r)))
}

/// `POST /sync-commands`.
#[utoipa::path(post, path = "/sync-commands", request_body = SyncPost,
    responses((status = 201, body = SyncResource), (status = 200, body = SyncResource), (status = 400, body = super::model::ErrorBody),
        (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)),
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
    let (status, r) = create(&state, &tenant, id, SyncInput { pipeline: p.pipeline, since: p.since, until: p.until }, "api")?;
    Ok((if status == StatusCode::OK { StatusCode::OK } else { StatusCode::CREATED }, Json(r)))
}

/// The caller's sync command `id` in the held `syncs` map (keyed by
/// tenant): 404 when the caller has none, whoever else may.
fn owned_in<'a>(syncs: &'a mut std::collections::HashMap<CommandKey, SyncCommand>, tenant: &Tenant, id: Uuid) -> Result<&'a mut SyncCommand, ApiError> {
    syncs.get_mut(&command_key(&tenant.0, id)).ok_or_else(|| ApiError::not_found(format!("no sync command {id}")))
}

fn owned(state: &AppState, tenant: &Tenant, id: &str) -> Result<SyncCommand, ApiError> {
    let id = parse_id(id)?;
    if state.cluster.is_some() {
        return shared::owned(state, tenant, id);
    }
    owned_in(&mut state.syncs.lock().expect("syncs lock"), tenant, id).map(|cmd| cmd.clone())
}

/// `GET /sync-commands/{id}`.
#[utoipa::path(get, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<SyncResource>, ApiError> {
    Ok(Json(owned(&state, &tenant, &id)?.resource(&state)))
}

/// `GET /sync-commands/{id}/tasks`: the failed records with reasons.
#[utoipa::path(get, path = "/sync-commands/{id}/tasks",
    params(("id" = String, Path), ("limit" = Option<u64>, Query, description = "page size, 1 to 500 (default 50)"), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = TasksView), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<TasksView>, ApiError> {
    let q = super::history::parse_query(raw.as_deref())?;
    let failed = owned(&state, &tenant, &id)?.failed;
    let total = failed.len() as u64;
    let tasks = failed.into_iter().skip(q.offset.min(total) as usize).take(q.limit as usize).collect();
    Ok(Json(TasksView { tasks, total, limit: q.limit, offset: q.offset }))
}

pub(crate) fn update(state: &AppState, tenant: &str, id: Uuid, f: impl FnOnce(&mut SyncCommand)) {
    let mut syncs = state.syncs.lock().expect("syncs lock");
    if let Some(c) = syncs.get_mut(&command_key(tenant, id)) {
        f(c);
        c.persist(state);
    }
}

pub(crate) fn not_cancellable(id: Uuid, status: SyncStatus) -> ApiError {
    ApiError::conflict(format!("sync command {id} has already started (status `{status}`); only queued commands can be cancelled"))
}

/// `DELETE /sync-commands/{id}`: cancels a command that has not started
/// (idempotently); 409 once it has.
#[utoipa::path(delete, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource, description = "cancelled (or already cancelled)"), (status = 400, body = super::model::ErrorBody),
        (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<SyncResource>, ApiError> {
    let id = parse_id(&id)?;
    if state.cluster.is_some() {
        return shared::cancel(&state, &tenant, id).map(Json);
    }
    let mut syncs = state.syncs.lock().expect("syncs lock");
    let cmd = owned_in(&mut syncs, &tenant, id)?;
    match cmd.status {
        SyncStatus::Cancelled => {}
        SyncStatus::Queued => {
            if let Some(h) = state.pipelines.get(&cmd.input.pipeline) {
                h.queue.lock().expect("queue lock").retain(|q| *q != id);
            }
            cmd.cancel();
            cmd.persist(&state);
            metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "cancelled").increment(1);
        }
        other => return Err(not_cancellable(id, other)),
    }
    Ok(Json(cmd.resource(&state)))
}

/// `GET /sync-commands`: the history, newest first.
#[utoipa::path(get, path = "/sync-commands",
    params(("pipeline" = Option<String>, Query), ("status" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
        ("limit" = Option<u64>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = super::model::SyncPage), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<super::model::SyncPage>, ApiError> {
    let q = super::history::parse_query(raw.as_deref())?;
    let (records, total) = super::history::list(&state, &tenant, "sync", &q)?;
    let syncs = state.syncs.lock().expect("syncs lock");
    let items = records
        .into_iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(&r.id).ok()?;
            // In a cluster the stored record is the news: another worker may run it.
            match syncs.get(&command_key(&r.tenant, id)).filter(|_| state.cluster.is_none()) {
                Some(live) => Some(live.resource(&state)),
                None => serde_json::from_value::<SyncCommand>(r.record).ok().map(|c| c.resource(&state)),
            }
        })
        .collect();
    Ok(Json(super::model::SyncPage { items, total, limit: q.limit, offset: q.offset }))
}

/// `GET /sync-commands/{id}/records`: ids of the records the sync delivered.
#[utoipa::path(get, path = "/sync-commands/{id}/records", params(("id" = String, Path)),
    responses((status = 200, body = super::model::RecordsView), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn records(
    State(state): State<Arc<AppState>>,
    axum::Extension(tenant): axum::Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<super::model::RecordsView>, ApiError> {
    let cmd = owned(&state, &tenant, &id)?;
    let Some(started) = cmd.started else { return Ok(Json(super::model::RecordsView { records: vec![], count: 0 })) };
    let handle = state.pipeline_for(&cmd.input.pipeline, &tenant)?;
    let to = crate::time::sortable(cmd.completed.unwrap_or_else(Timestamp::now));
    let records =
        handle.state.confirmed_record_ids(&handle.pipeline.name, &crate::time::sortable(started), &to).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(super::model::RecordsView { count: records.len() as u64, records }))
}
