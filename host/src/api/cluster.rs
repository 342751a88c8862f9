//! `ferry serve` in a cluster: one dispatcher per worker claims pipelines
//! with runnable sync commands from the shared database (leases, see
//! [`crate::cluster`]), runs them while renewing the lease, follows the
//! plugin version the cluster put live, and answers `GET /cluster`.

use super::auth::Tenant;
use super::error::ApiError;
use super::model::SyncResource;
use super::sync::{self, SyncCommand};
use super::{AppState, PipelineHandle};
use crate::cluster::{Cluster, LeaseView, WorkerView};
use crate::pipeline::Runner;
use crate::state::{CommandFilter, CommandRecord, StateStore};
use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

/// How often an idle worker looks for work, beats its heart and checks
/// for a plugin version put live elsewhere.
const POLL: Duration = Duration::from_millis(500);

/// The version last put live for `pipeline` by any worker, with its bytes.
pub fn live_version(store: &dyn StateStore, pipeline: &str) -> Option<(String, Vec<u8>)> {
    let digest = crate::pipeline::history::last_live(store, pipeline)?;
    let bytes = store.plugin_version(&digest).ok()??;
    Some((digest, bytes))
}

/// The command's place in its pipeline's shared queue (1 = next).
pub fn queue_position(h: &PipelineHandle, id: Uuid) -> Option<u64> {
    let filter = CommandFilter { kind: "sync".into(), pipeline: Some(h.pipeline.name.clone()), status: Some("queued".into()), ..Default::default() };
    let queued = h.state.commands(&filter).ok()?;
    let id = id.to_string();
    queued.iter().rev().position(|c| c.id == id).map(|p| p as u64 + 1)
}

/// The sync command running on any worker, and how many are queued.
fn queue_of(h: &PipelineHandle) -> Result<(Option<String>, u64), crate::state::StateError> {
    let of = |status: &str| {
        let filter = CommandFilter { kind: "sync".into(), pipeline: Some(h.pipeline.name.clone()), status: Some(status.to_string()), ..Default::default() };
        h.state.commands(&filter)
    };
    Ok((of("running")?.into_iter().next().map(|c| c.id), of("queued")?.len() as u64))
}

/// The sync command running on any worker, and how many are queued
/// (nothing, when the database cannot be read).
pub fn shared_queue(h: &PipelineHandle) -> (Option<String>, u64) {
    queue_of(h).unwrap_or((None, 0))
}

/// Whether the pipeline has a sync command queued or running anywhere (or
/// the database cannot say).
pub fn busy(h: &PipelineHandle) -> bool {
    queue_of(h).map_or(true, |(running, queued)| running.is_some() || queued > 0)
}

/// The id of a scheduled sync: the same on every worker for the same slot,
/// so the workers' schedules add one command, not one each.
pub fn schedule_id(pipeline: &str, every: Duration) -> Uuid {
    let slot = Timestamp::now().as_second().max(0) as u64 / every.as_secs().max(1);
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("ferry:schedule:{pipeline}:{}:{slot}", every.as_secs()).as_bytes())
}

/// The caller's sync command from the shared table: 404 when there is none
/// or it belongs to another tenant (indistinguishable).
pub fn owned(state: &AppState, tenant: &Tenant, id: Uuid) -> Result<SyncCommand, ApiError> {
    let cluster = state.cluster.as_ref().ok_or_else(|| ApiError::internal("not in a cluster"))?;
    let record = cluster.db().command(&tenant.0, &id.to_string()).map_err(|e| ApiError::internal(e.to_string()))?;
    let record = record.filter(|r| r.kind == "sync").ok_or_else(|| ApiError::not_found(format!("no sync command {id}")))?;
    let cmd = SyncCommand::from_record(record)?;
    if cmd.tenant() != tenant.0 {
        return Err(ApiError::not_found(format!("no sync command {id}")));
    }
    Ok(cmd)
}

/// `DELETE /sync-commands/{id}` in a cluster: queued -> cancelled as a
/// compare-and-set, so a worker claiming it at the same moment wins or
/// loses cleanly.
pub fn cancel(state: &AppState, tenant: &Tenant, id: Uuid) -> Result<SyncResource, ApiError> {
    loop {
        let mut cmd = owned(state, tenant, id)?;
        match cmd.status() {
            "cancelled" => return Ok(cmd.resource(state)),
            "queued" => {
                let handle = state.pipeline_for(&cmd.input().pipeline, tenant)?;
                cmd.cancel();
                if handle.state.update_command_if(&cmd.record(handle), &["queued"]).map_err(|e| ApiError::internal(e.to_string()))? {
                    metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "cancelled").increment(1);
                    return Ok(cmd.resource(state));
                }
                // A worker claimed it meanwhile: look again.
            }
            other => return Err(sync::not_cancellable(id, other)),
        }
    }
}

/// Keeps a running command's `taskCount` moving in the shared table, for
/// the other workers' `GET`, until `finished`.
pub async fn publish_progress(store: Arc<dyn StateStore>, mut record: CommandRecord, runner: Arc<Runner>, mut finished: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut finished => return,
        }
        record.record["count"] = serde_json::to_value(sync::live_count(&runner.counters)).unwrap_or_default();
        if let Err(e) = store.update_command_if(&record, &["running"]) {
            tracing::debug!(command = %record.id, "cannot publish progress: {e}");
        }
    }
}

/// The worker's loop: look for work, claim it, run it; until shutdown,
/// then wait for the runs to stop cleanly and give their leases back.
pub async fn dispatch(state: Arc<AppState>, cluster: Arc<Cluster>, address: String) {
    let mut stop = state.stop.clone();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut runs = tokio::task::JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut refused: HashSet<(String, String)> = HashSet::new();
    tracing::info!(worker = %cluster.worker, database = %cluster.db().name(), "joined the cluster");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.dispatch.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        while let Some(done) = runs.try_join_next() {
            if let Ok(name) = done {
                running.remove(&name);
            }
        }
        if let Err(e) = cluster.heartbeat(&address) {
            tracing::warn!(worker = %cluster.worker, "heartbeat failed: {e}");
        }
        follow_plugins(&state, &cluster, &mut refused).await;
        let names: Vec<String> = state.pipelines.keys().filter(|n| !running.contains(*n)).cloned().collect();
        let runnable = match cluster.runnable(&names) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(worker = %cluster.worker, "cannot look for work: {e}");
                continue;
            }
        };
        for name in runnable {
            let Some(handle) = state.pipelines.get(&name) else { continue };
            match cluster.claim(&name) {
                Ok(Some(record)) => {
                    running.insert(name.clone());
                    runs.spawn(run_claimed(state.clone(), cluster.clone(), handle.clone(), record));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(pipeline = %name, "cannot claim: {e}"),
            }
        }
    }
    while runs.join_next().await.is_some() {}
}

/// Runs a claimed command under its lease; returns the pipeline's name.
async fn run_claimed(state: Arc<AppState>, cluster: Arc<Cluster>, handle: Arc<PipelineHandle>, record: CommandRecord) -> String {
    let name = handle.pipeline.name.clone();
    let seen = record.status.clone();
    let mut cmd = match SyncCommand::from_record(record) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(pipeline = %name, "{}", e.1);
            let _ = cluster.release(&name);
            return name;
        }
    };
    if seen == "running" {
        tracing::warn!(pipeline = %name, command = %cmd.id(), worker = %cluster.worker, "taking over a sync whose worker stopped renewing its lease; resuming from the outbox and checkpoint");
    }
    cmd.start(&cluster.worker);
    let moved = handle.state.update_command_if(&cmd.record(&handle), &[seen.as_str()]);
    if !matches!(moved, Ok(true)) {
        // Cancelled (or changed) between the claim and now.
        let _ = cluster.release(&name);
        return name;
    }
    let id = cmd.id();
    let input = cmd.input().clone();
    let key = super::command_key(&handle.tenant, id);
    state.syncs.lock().expect("syncs lock").insert(key.clone(), cmd);

    let (run_stop, stop_rx) = watch::channel(false);
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = tokio::spawn(keep_lease(cluster.clone(), name.clone(), state.stop.clone(), run_stop, lost.clone()));
    let outcome = sync::execute(&state, &handle, id, input, stop_rx).await;
    keeper.abort();
    // A write refused by the fence ends the run before the keeper notices.
    if !lost.load(Ordering::SeqCst) && matches!(cluster.renew(&name), Ok(false)) {
        lost.store(true, Ordering::SeqCst);
    }
    if lost.load(Ordering::SeqCst) {
        cluster.db().unfence(&name);
        // Another worker holds the pipeline now and owns the command.
        tracing::error!(pipeline = %name, command = %id, "lost the lease during the run; the worker that took it over resumes the run");
    } else if outcome.status == "interrupted" && *state.stop.borrow() {
        let worker = cluster.worker.clone();
        sync::update(&state, &handle.tenant, id, |c| c.requeue(&worker));
        let _ = cluster.release(&name);
    } else {
        sync::finish(&state, &handle.tenant, id, outcome);
        let _ = cluster.release(&name);
    }
    state.syncs.lock().expect("syncs lock").remove(&key);
    name
}

/// Renews the lease every third of its time while the run goes on; when
/// the server stops, tells the run to stop (and still renews while its
/// in-flight batches finish); when the lease is lost, stops the run.
async fn keep_lease(cluster: Arc<Cluster>, name: String, mut server_stop: watch::Receiver<bool>, run_stop: watch::Sender<bool>, lost: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(cluster.lease / 3);
    let mut stopping = *server_stop.borrow();
    if stopping {
        let _ = run_stop.send(true);
    }
    loop {
        if stopping {
            tick.tick().await;
        } else {
            tokio::select! {
                _ = tick.tick() => {}
                _ = server_stop.changed() => {
                    stopping = true;
                    let _ = run_stop.send(true);
                    continue;
                }
            }
        }
        match cluster.renew(&name) {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                let _ = run_stop.send(true);
                return;
            }
            Err(e) => tracing::warn!(pipeline = %name, "cannot renew the lease (retrying): {e}"),
        }
    }
}

/// Puts in the version another worker put live, once per version (a
/// version this worker refuses is not tried again).
async fn follow_plugins(state: &AppState, cluster: &Cluster, refused: &mut HashSet<(String, String)>) {
    let live = match cluster.live_digests() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the cluster's live plugin versions: {e}");
            return;
        }
    };
    for (name, digest) in live {
        let Some(h) = state.pipelines.get(&name) else { continue };
        if h.registry.live(&name).is_some_and(|p| p.digest == digest) || refused.contains(&(name.clone(), digest.clone())) {
            continue;
        }
        let Ok(Some(bytes)) = h.state.plugin_version(&digest) else { continue };
        let (registry, pipeline, origin) = (h.registry.clone(), name.clone(), format!("cluster (live version sha256:{digest})"));
        match tokio::task::spawn_blocking(move || registry.install_bytes(&pipeline, &bytes, &origin)).await {
            Ok(Ok(p)) => tracing::info!(pipeline = %name, plugin = %p.label(), "following the cluster's live plugin version"),
            Ok(Err(e)) => {
                tracing::warn!(pipeline = %name, digest, "the cluster's live plugin version is refused here: {e}");
                refused.insert((name, digest));
            }
            Err(e) => tracing::warn!(pipeline = %name, "plugin install task failed: {e}"),
        }
    }
}

/// `GET /cluster`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The worker that answered.
    pub worker: String,
    /// Lease time in seconds.
    pub lease_seconds: f64,
    /// Every worker that joined, with its heartbeat.
    pub workers: Vec<WorkerView>,
    /// Leases held on the caller's pipelines.
    pub leases: Vec<LeaseView>,
}

/// `GET /cluster`: the workers, their heartbeats and the leases on the
/// caller's pipelines.
#[utoipa::path(get, path = "/cluster",
    responses((status = 200, body = ClusterView), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody, description = "not part of a cluster")),
    security(("bearer" = [])))]
pub async fn view(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>) -> Result<Json<ClusterView>, ApiError> {
    let c = state.cluster.as_ref().ok_or_else(|| ApiError::not_found("this server is not part of a cluster (its serve file has no [cluster])"))?;
    let (workers, leases) = c.view().map_err(|e| ApiError::internal(e.to_string()))?;
    let leases = leases.into_iter().filter(|l| state.pipelines.get(&l.pipeline).is_some_and(|h| h.tenant == tenant.0)).collect();
    Ok(Json(ClusterView { worker: c.worker.clone(), lease_seconds: c.lease.as_secs_f64(), workers, leases }))
}
