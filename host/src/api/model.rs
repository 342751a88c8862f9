//! The API's request and response bodies (also its OpenAPI schemas).

pub use crate::commands::model::{PluginResource, SyncInput, SyncResource, TaskCountView, TaskView};
pub use crate::state::SwapRecord as SwapView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /sync-commands` body: the input plus an optional client id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncPost {
    /// Optional command UUID; made by the server when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Pipeline name.
    pub pipeline: String,
    /// Backfill from.
    #[serde(default)]
    pub since: Option<String>,
    /// Backfill up to.
    #[serde(default)]
    pub until: Option<String>,
}

/// Failed records of a sync, one page (`?limit=`, at most 500, default 50;
/// `?offset=`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TasksView {
    pub tasks: Vec<TaskView>,
    /// Failed records the command keeps in all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// A page of a pipeline's dead letters, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterView>,
    /// Dead letters in all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// A pipeline's dead letters grouped by reason, the most frequent first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterReasons {
    pub reasons: Vec<ReasonCount>,
    /// Dead letters in all.
    pub total: u64,
}

/// One reason and how many dead letters give it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

/// A page of a pipeline's plugin swaps, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SwapPage {
    pub items: Vec<SwapView>,
    /// Swaps in all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// Input of a plugin command: a component for a pipeline.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginInput {
    /// Pipeline name.
    pub pipeline: String,
    /// The component bytes, base64.
    pub component: String,
}

/// The plugin live for a pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// A pipeline as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineView {
    pub name: String,
    pub tenant: String,
    /// Schedule in seconds, if any.
    pub every_seconds: Option<u64>,
    /// Last sync time: RFC 3339 with its offset (`2024-03-01T12:30:00+08:00`).
    pub checkpoint: Option<String>,
    pub plugin: Option<PluginView>,
    pub dead_letters: u64,
    /// The sync command running now.
    pub running: Option<String>,
    /// Commands waiting.
    pub queued: u64,
    /// The last runs, newest first, with their summaries.
    #[schema(value_type = Vec<Object>)]
    pub last_runs: Vec<serde_json::Value>,
    /// Progress of the running sync.
    pub live: Option<LiveView>,
    /// The app's access token, when the pipeline keeps it (never the token).
    pub token: Option<TokenView>,
    /// When the schedule queues its next sync (RFC 3339 with offset).
    pub next_run_at: Option<String>,
    /// The last reconciliation's report (since this server started).
    pub last_reconcile: Option<crate::pipeline::reconcile::ReconcileReport>,
    /// When the reconciliation running now began (RFC 3339 with offset).
    pub reconciling_since: Option<String>,
}

/// `POST /pipelines/{name}/reconcile` answered 202: the reconciliation
/// outlasted `waitSeconds` and goes on; its report becomes the pipeline's
/// `lastReconcile` (`GET /pipelines/{name}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRunning {
    pub pipeline: String,
    /// When it began (RFC 3339 with offset).
    pub started_at: String,
}

/// `POST /pipelines/{name}/reconcile`: the range (default: the day up to
/// the checkpoint) and whether to deliver what is missing.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileInput {
    /// `yyyy-MM-dd HH:mm:ss` (Asia/Shanghai), RFC 3339, or a duration before now (`2d`).
    pub since: Option<String>,
    /// The same forms; at most the checkpoint.
    pub until: Option<String>,
    #[serde(default)]
    pub deliver: bool,
    /// How long to wait for the report before answering 202 (0 to 300, default 5).
    #[schema(minimum = 0, maximum = 300)]
    pub wait_seconds: Option<u64>,
}

/// Where a pipeline's access token stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    /// `app_key/merchant`.
    pub key: String,
    /// `ok`, `refreshing` or `needs_reauthorization`.
    pub state: String,
    /// RFC 3339 with offset, when known.
    pub expires_at: Option<String>,
    /// Seconds until it expires (negative once expired).
    pub seconds_left: Option<i64>,
    /// How the pair was obtained: `configured`, `refreshed`, `initialized` or `set`.
    pub obtained: String,
    /// The last refresh's answer.
    pub last_answer: Option<String>,
}

/// Progress of a running sync.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveView {
    /// The sync command.
    pub command: String,
    /// The window being read.
    pub window: String,
    pub windows_done: u64,
    /// Windows the run planned.
    pub windows_planned: u64,
    /// Seconds until the run should end, at its pace so far.
    pub eta_seconds: Option<u64>,
    pub pages: u64,
    pub requests: u64,
    pub fetched: u64,
    pub rate_limit_waits: u64,
    pub retries: u64,
    pub task_count: TaskCountView,
}

/// A dead letter as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub id: i64,
    pub record_id: String,
    pub version: String,
    pub reason: String,
    /// sha256 of the plugin involved.
    pub plugin: String,
    /// The raw source record.
    pub raw: String,
    pub created: String,
}

/// What a dead-letter replay did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayView {
    pub total: u64,
    pub resolved: u64,
    pub still_failing: u64,
    pub refused_again: u64,
}

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong and what was expected.
    pub error: String,
}

/// A page of sync-command history, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncPage {
    pub items: Vec<SyncResource>,
    /// Matching commands in all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// A page of plugin-command history, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginPage {
    pub items: Vec<PluginResource>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// The records a sync delivered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordsView {
    /// Mapped record ids confirmed by the target during the run, in order.
    pub records: Vec<String>,
    pub count: u64,
}
