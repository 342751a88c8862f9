//! The sync commands' queue in a cluster: the shared `commands` table,
//! which every worker reads and writes (a command's place in its
//! pipeline's queue, whether a pipeline is busy anywhere, the same
//! schedule id on every worker, a tenant's command, a cancel as a
//! compare-and-set, a running command's progress for the other workers).

use super::SyncCommand;
use crate::commands::model::SyncResource;
use crate::commands::status::SyncStatus;
use crate::commands::{CommandError, Engine, PipelineHandle};
use crate::pipeline::Runner;
use crate::state::{CommandFilter, CommandRecord, ControlStore, StateStore};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The command's place in its pipeline's shared queue (1 = next).
pub(crate) fn queue_position(h: &PipelineHandle, id: Uuid) -> Option<u64> {
    let filter =
        CommandFilter { kind: "sync".into(), pipeline: Some(h.pipeline.name.clone()), status: Some(SyncStatus::Queued.as_str().into()), ..Default::default() };
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
    Ok((of(SyncStatus::Running.as_str())?.into_iter().next().map(|c| c.id), of(SyncStatus::Queued.as_str())?.len() as u64))
}

/// The sync command running on any worker, and how many are queued
/// (nothing, when the database cannot be read).
pub(crate) fn shared_queue(h: &PipelineHandle) -> (Option<String>, u64) {
    queue_of(h).unwrap_or((None, 0))
}

/// Whether the pipeline has a sync command queued or running anywhere (or
/// the database cannot say).
pub(crate) fn busy(h: &PipelineHandle) -> bool {
    queue_of(h).map_or(true, |(running, queued)| running.is_some() || queued > 0)
}

/// The id of a scheduled sync: the same on every worker for the same slot,
/// so the workers' schedules add one command, not one each.
pub(crate) fn schedule_id(pipeline: &str, every: Duration) -> Uuid {
    let slot = Timestamp::now().as_second().max(0) as u64 / every.as_secs().max(1);
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("ferry:schedule:{pipeline}:{}:{slot}", every.as_secs()).as_bytes())
}

/// The caller's sync command from the shared table (keyed by tenant): 404
/// when the caller has none, whoever else may.
pub(crate) fn owned(engine: &Engine, tenant: &str, id: Uuid) -> Result<SyncCommand, CommandError> {
    let cluster = engine.cluster.as_ref().ok_or_else(|| CommandError::Internal("not in a cluster".into()))?;
    let record = cluster.db().command(tenant, &id.to_string())?;
    let record = record.filter(|r| r.kind == "sync").ok_or_else(|| CommandError::NotFound(format!("no sync command {id}")))?;
    SyncCommand::from_record(record)
}

/// `DELETE /sync-commands/{id}` in a cluster: queued -> cancelled as a
/// compare-and-set, so a worker claiming it at the same moment wins or
/// loses cleanly.
pub(crate) fn cancel(engine: &Engine, tenant: &str, id: Uuid) -> Result<SyncResource, CommandError> {
    // A few looks: a claim can win at most once; a store that keeps
    // refusing (this worker just lost the pipeline's lease) is a conflict.
    for _ in 0..CANCEL_LOOKS {
        let mut cmd = owned(engine, tenant, id)?;
        match cmd.status() {
            SyncStatus::Cancelled => return Ok(cmd.resource(engine)),
            SyncStatus::Queued => {
                let handle = engine.pipeline_for(&cmd.input().pipeline, tenant)?;
                cmd.cancel();
                if handle.state.update_command_if(&cmd.record(handle), &[SyncStatus::Queued.as_str()])? {
                    metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => "cancelled").increment(1);
                    return Ok(cmd.resource(engine));
                }
                // A worker claimed it meanwhile: look again.
            }
            other => return Err(super::not_cancellable(id, other)),
        }
    }
    Err(CommandError::Conflict(format!("sync command {id} could not be cancelled now (the cluster is moving its pipeline between workers); try again")))
}

/// How often a cancel looks again after losing a race.
const CANCEL_LOOKS: usize = 5;

/// Keeps a running command's `taskCount` moving in the shared table, for
/// the other workers' `GET`, until `finished`.
pub(crate) async fn publish_progress(store: Arc<dyn StateStore>, mut record: CommandRecord, runner: Arc<Runner>, mut finished: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut finished => return,
        }
        record.record["count"] = serde_json::to_value(super::live_count(&runner.counters)).unwrap_or_default();
        if let Err(e) = store.update_command_if(&record, &[SyncStatus::Running.as_str()]) {
            tracing::debug!(command = %record.id, "cannot publish progress: {e}");
        }
    }
}
