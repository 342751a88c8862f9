//! Sync commands: `PUT /sync-commands/{uuid}` (idempotent), `POST` with an
//! optional id, status by `GET`, failed records by `GET .../tasks`. One run
//! per pipeline at a time: later commands wait in the pipeline's queue and
//! say so (`status: queued`, `queuePosition`).

use super::auth::Tenant;
use super::error::{ApiError, parse_body, parse_id};
use super::model::{SyncInput, SyncPost, SyncResource, TaskCountView, TaskView, TasksView};
use super::{AppState, PipelineHandle};
use crate::pipeline::summary::Counters;
use crate::pipeline::{RunOptions, Runner};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uuid::Uuid;

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
    status: String,
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
            super::history::persist(h, "sync", &self.id.to_string(), &self.tenant, self.created, &self.status, record);
        }
    }

    pub(crate) fn record(&self, handle: &PipelineHandle) -> crate::state::CommandRecord {
        let record = serde_json::to_value(self).unwrap_or_default();
        super::history::record(handle, "sync", &self.id.to_string(), &self.tenant, self.created, &self.status, record)
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

    pub(crate) fn tenant(&self) -> &str {
        &self.tenant
    }

    pub(crate) fn status(&self) -> &str {
        &self.status
    }

    pub(crate) fn cancel(&mut self) {
        (self.status, self.completed) = ("cancelled".into(), Some(Timestamp::now()));
    }

    /// Claimed by `worker`: running from now (or again, after a takeover).
    pub(crate) fn start(&mut self, worker: &str) {
        if self.status == "running" {
            let before = self.worker.as_deref().unwrap_or("?");
            self.notes.push(format!("{}: taken over by worker {worker} after worker {before} stopped renewing its lease", Timestamp::now()));
        }
        self.status = "running".into();
        self.worker = Some(worker.to_string());
        self.started.get_or_insert_with(Timestamp::now);
    }

    /// Back in the queue: `worker` stopped during the run; the next worker
    /// to claim the pipeline resumes it.
    pub(crate) fn requeue(&mut self, worker: &str) {
        self.status = "queued".into();
        self.notes.push(format!("{}: worker {worker} stopped during the run; queued again, the next run resumes from the outbox and checkpoint", Timestamp::now()));
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
            if self.status == "queued" {
                position = match &state.cluster {
                    Some(_) => super::cluster::queue_position(h, self.id),
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
            status: self.status.clone(),
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
    if let Some(existing) = syncs.get(&id).filter(|_| state.cluster.is_none()) {
        if existing.tenant == tenant.0 && existing.input == input {
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
        status: "queued".into(),
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
        if existing.tenant == tenant.0 && existing.input == input {
            return Ok((StatusCode::OK, existing.resource(state)));
        }
        return Err(ApiError::conflict(format!("sync command {id} exists with a different body")));
    }
    if state.cluster.is_none() {
        handle.queue.lock().expect("queue lock").push_back(id);
    }
    let resource = cmd.resource(state);
    if state.cluster.is_none() {
        syncs.insert(id, cmd);
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
pub async fn put(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>, body: Bytes) -> Result<(StatusCode, Json<SyncResource>), ApiError> {
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
pub async fn post(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, body: Bytes) -> Result<(StatusCode, Json<SyncResource>), ApiError> {
    let p: SyncPost = parse_body(&body)?;
    let id = match &p.id {
        Some(id) => parse_id(id)?,
        None => Uuid::new_v4(),
    };
    let (status, r) = create(&state, &tenant, id, SyncInput { pipeline: p.pipeline, since: p.since, until: p.until }, "api")?;
    Ok((if status == StatusCode::OK { StatusCode::OK } else { StatusCode::CREATED }, Json(r)))
}

/// The caller's sync command `id` in the held `syncs` map: 404 when there is
/// none or it belongs to another tenant (indistinguishable).
fn owned_in<'a>(syncs: &'a mut std::collections::HashMap<Uuid, SyncCommand>, tenant: &Tenant, id: Uuid) -> Result<&'a mut SyncCommand, ApiError> {
    let cmd = syncs.get_mut(&id).ok_or_else(|| ApiError::not_found(format!("no sync command {id}")))?;
    if cmd.tenant != tenant.0 {
        return Err(ApiError::not_found(format!("no sync command {id}")));
    }
    Ok(cmd)
}

fn owned(state: &AppState, tenant: &Tenant, id: &str) -> Result<SyncCommand, ApiError> {
    let id = parse_id(id)?;
    if state.cluster.is_some() {
        return super::cluster::owned(state, tenant, id);
    }
    owned_in(&mut state.syncs.lock().expect("syncs lock"), tenant, id).map(|cmd| cmd.clone())
}

/// `GET /sync-commands/{id}`.
#[utoipa::path(get, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>) -> Result<Json<SyncResource>, ApiError> {
    Ok(Json(owned(&state, &tenant, &id)?.resource(&state)))
}

/// `GET /sync-commands/{id}/tasks`: the failed records with reasons.
#[utoipa::path(get, path = "/sync-commands/{id}/tasks", params(("id" = String, Path)),
    responses((status = 200, body = TasksView), (status = 400, body = super::model::ErrorBody), (status = 401, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>) -> Result<Json<TasksView>, ApiError> {
    Ok(Json(TasksView { tasks: owned(&state, &tenant, &id)?.failed }))
}

pub(crate) fn update(state: &AppState, id: Uuid, f: impl FnOnce(&mut SyncCommand)) {
    let mut syncs = state.syncs.lock().expect("syncs lock");
    if let Some(c) = syncs.get_mut(&id) {
        f(c);
        c.persist(state);
    }
}

/// Runs a pipeline's queued commands one at a time until shutdown.
pub async fn worker(state: Arc<AppState>, handle: Arc<PipelineHandle>) {
    let mut stop = state.stop.clone();
    loop {
        let next = handle.queue.lock().expect("queue lock").pop_front();
        let Some(id) = next else {
            tokio::select! {
                () = handle.wake.notified() => continue,
                _ = stop.changed() => return,
            }
        };
        if *stop.borrow() {
            return;
        }
        // queued -> running under the commands lock, so a cancel cannot slip in between.
        let input = {
            let mut syncs = state.syncs.lock().expect("syncs lock");
            match syncs.get_mut(&id) {
                Some(c) if c.status == "queued" => {
                    (c.status, c.started) = ("running".into(), Some(Timestamp::now()));
                    c.persist(&state);
                    Some(c.input.clone())
                }
                _ => None,
            }
        };
        let Some(input) = input else { continue };
        let outcome = execute(&state, &handle, id, input, state.stop.clone()).await;
        finish(&state, id, outcome);
    }
}

/// How a run ended, for its command.
pub(crate) struct Outcome {
    pub(crate) status: &'static str,
    count: TaskCountView,
    error: Option<String>,
    failed: Vec<TaskView>,
}

/// Records the outcome in the command.
pub(crate) fn finish(state: &AppState, id: Uuid, o: Outcome) {
    update(state, id, |c| {
        (c.status, c.count, c.error, c.failed, c.completed) = (o.status.into(), o.count, o.error, o.failed, Some(Timestamp::now()));
    });
}

/// Runs one sync of the pipeline until it ends or `stop` is set.
pub(crate) async fn execute(state: &AppState, handle: &PipelineHandle, id: Uuid, input: SyncInput, stop: tokio::sync::watch::Receiver<bool>) -> Outcome {
    let name = &handle.pipeline.name;
    let runner = match Runner::from_parts(handle.pipeline.clone(), handle.registry.clone(), handle.state.clone(), false) {
        Ok(r) => Arc::new(r),
        Err(e) => return Outcome { status: "failed", count: TaskCountView::default(), error: Some(e.to_string()), failed: Vec::new() },
    };
    *handle.running.lock().expect("running lock") = Some((id, runner.clone()));
    // In a cluster, other workers read the command from the database: keep its taskCount moving there.
    let snapshot = state.cluster.as_ref().and_then(|_| state.syncs.lock().expect("syncs lock").get(&id).map(|c| c.record(handle)));
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let progress = snapshot.map(|r| tokio::spawn(super::cluster::publish_progress(handle.state.clone(), r, runner.clone(), finished)));
    let dead_before = handle.state.dead_letters(name).ok().and_then(|d| d.last().map(|d| d.id)).unwrap_or(0);
    let opts = RunOptions {
        since: input.since.as_deref().and_then(|t| crate::time::parse(t).ok()),
        until: input.until.as_deref().and_then(|t| crate::time::parse(t).ok()),
        dry_run: false,
        stop: Some(stop),
    };
    let summary = runner.run(opts).await;
    drop(done);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let failed: Vec<TaskView> = handle
        .state
        .dead_letters(name)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.id > dead_before)
        .map(|d| TaskView { record_id: d.key.id, status: "FAILED".into(), message: d.reason })
        .collect();
    let count = live_count(&runner.counters);
    let status = match summary.status.as_str() {
        "ok" => "succeeded",
        "partial" => "partial",
        "interrupted" => "interrupted",
        _ => "failed",
    };
    metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => status).increment(1);
    *handle.running.lock().expect("running lock") = None;
    Outcome { status, count, error: summary.error.clone(), failed }
}

/// Queues a sync every `every`, unless one is already queued or running.
pub async fn schedule(state: Arc<AppState>, handle: Arc<PipelineHandle>, every: Duration) {
    let mut stop = state.stop.clone();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (busy, id) = match &state.cluster {
            // Every worker schedules; the slot's id makes one command of them.
            Some(_) => (super::cluster::busy(&handle), super::cluster::schedule_id(&handle.pipeline.name, every)),
            None => (handle.running.lock().expect("running lock").is_some() || !handle.queue.lock().expect("queue lock").is_empty(), Uuid::new_v4()),
        };
        if busy {
            continue;
        }
        let tenant = Tenant(handle.tenant.clone());
        let input = SyncInput { pipeline: handle.pipeline.name.clone(), since: None, until: None };
        if let Err(e) = create(&state, &tenant, id, input, "schedule") {
            tracing::warn!(pipeline = %handle.pipeline.name, "scheduled sync not queued: {}", e.1);
        }
    }
}

pub(crate) fn not_cancellable(id: Uuid, status: &str) -> ApiError {
    ApiError::conflict(format!("sync command {id} has already started (status `{status}`); only queued commands can be cancelled"))
}

/// `DELETE /sync-commands/{id}`: cancels a command that has not started
/// (idempotently); 409 once it has.
#[utoipa::path(delete, path = "/sync-commands/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SyncResource, description = "cancelled (or already cancelled)"), (status = 400, body = super::model::ErrorBody),
        (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>) -> Result<Json<SyncResource>, ApiError> {
    let id = parse_id(&id)?;
    if state.cluster.is_some() {
        return super::cluster::cancel(&state, &tenant, id).map(Json);
    }
    let mut syncs = state.syncs.lock().expect("syncs lock");
    let cmd = owned_in(&mut syncs, &tenant, id)?;
    match cmd.status.as_str() {
        "cancelled" => {}
        "queued" => {
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
pub async fn list(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, axum::extract::RawQuery(raw): axum::extract::RawQuery) -> Result<Json<super::model::SyncPage>, ApiError> {
    let q = super::history::parse_query(raw.as_deref())?;
    let (records, total) = super::history::list(&state, &tenant, "sync", &q)?;
    let syncs = state.syncs.lock().expect("syncs lock");
    let items = records
        .into_iter()
        .filter_map(|r| {
            let id = Uuid::parse_str(&r.id).ok()?;
            // In a cluster the stored record is the news: another worker may run it.
            match syncs.get(&id).filter(|_| state.cluster.is_none()) {
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
pub async fn records(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>, Path(id): Path<String>) -> Result<Json<super::model::RecordsView>, ApiError> {
    let cmd = owned(&state, &tenant, &id)?;
    let Some(started) = cmd.started else { return Ok(Json(super::model::RecordsView { records: vec![], count: 0 })) };
    let handle = state.pipeline_for(&cmd.input.pipeline, &tenant)?;
    let to = crate::time::sortable(cmd.completed.unwrap_or_else(Timestamp::now));
    let records = handle
        .state
        .confirmed_record_ids(&handle.pipeline.name, &crate::time::sortable(started), &to)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(super::model::RecordsView { count: records.len() as u64, records }))
}

/// Loads the stored history at start: queued commands queue again in order;
/// ones that were running when the server stopped are marked interrupted.
pub fn restore(state: &AppState) {
    if state.cluster.is_some() {
        return; // the shared queue is the truth; a dead worker's runs are taken over by lease
    }
    for h in state.pipelines.values() {
        let filter = crate::state::CommandFilter { kind: "sync".into(), pipeline: Some(h.pipeline.name.clone()), ..Default::default() };
        let mut records = h.state.commands(&filter).unwrap_or_default();
        records.reverse();
        let mut syncs = state.syncs.lock().expect("syncs lock");
        for r in records {
            let Ok(mut cmd) = serde_json::from_value::<SyncCommand>(r.record) else { continue };
            match cmd.status.as_str() {
                "queued" => h.queue.lock().expect("queue lock").push_back(cmd.id),
                "running" => {
                    cmd.status = "interrupted".into();
                    cmd.error = Some("the server stopped during the run; the next run resumes from the outbox and checkpoint".into());
                    cmd.completed = Some(Timestamp::now());
                    cmd.persist(state);
                }
                _ => {}
            }
            syncs.insert(cmd.id, cmd);
        }
    }
}
