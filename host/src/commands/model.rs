//! The commands' objects as callers see them (also the API's OpenAPI
//! schemas): what a sync command asks for, a sync or plugin command's
//! status, a failed record.

use crate::state::TaskCount;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `taskCount` of a command (the state store's type).
pub type TaskCountView = TaskCount;

/// Input of a sync command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncInput {
    /// Pipeline name.
    pub pipeline: String,
    /// Backfill from (`yyyy-MM-dd HH:mm:ss` Asia/Shanghai, or RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Backfill up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A sync command's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResource {
    /// The command UUID.
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Who issued it.
    pub tenant: String,
    /// What was asked.
    pub input: SyncInput,
    /// `api` or `schedule`.
    pub origin: String,
    /// `queued`, `running`, `succeeded`, `partial`, `failed`, `interrupted` or `cancelled`.
    pub status: super::status::SyncStatus,
    /// Place in the pipeline's queue (1 = next) while queued.
    pub queue_position: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once started.
    pub started_at: Option<String>,
    /// RFC 3339, once finished; null until then.
    pub completed_at: Option<String>,
    /// Records confirmed so far: success delivered, failed dead-lettered.
    pub task_count: TaskCountView,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// In a cluster: the worker that ran it last.
    pub worker: Option<String>,
    /// In a cluster: takeovers and requeues, oldest first.
    pub notes: Vec<String>,
    /// While it runs here: windows done of planned, records fetched, ETA.
    pub progress: Option<ProgressView>,
}

/// Where a running sync is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    pub windows_done: u64,
    pub windows_planned: u64,
    pub fetched: u64,
    /// Seconds left: the later of the pace so far and the rate budget's estimate.
    pub eta_seconds: Option<u64>,
}

/// One failed record of a sync.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Source record id (e.g. `o_id`).
    pub record_id: String,
    /// Always `FAILED` here.
    pub status: String,
    /// The reason.
    pub message: String,
}

/// A plugin command's status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginResource {
    pub id: String,
    pub pipeline: String,
    /// Who issued it.
    pub tenant: String,
    /// `validating`, `live`, `rejected` or `undone`.
    pub status: super::status::PluginStatus,
    /// sha256 of the component.
    pub digest: String,
    /// sha256 of the version live before this command (what undo puts back).
    pub previous: Option<String>,
    /// When it was undone.
    pub undone_at: Option<String>,
    /// `name@version (sha256:...)` once loaded.
    pub plugin: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
}
