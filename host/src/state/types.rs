//! Values the state store keeps.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The idCheck key of one source record: its id and its `modified`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    /// e.g. the `o_id`.
    pub id: String,
    /// e.g. the `modified` time text.
    pub version: String,
}

/// How far a window was read: every row before `cursor` (the `ts` row
/// version) is staged, so a restart reads the same window from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowProgress {
    /// The window's begin.
    pub begin: jiff::Timestamp,
    /// The window's end.
    pub end: jiff::Timestamp,
    /// The `start_ts` to go on from.
    pub cursor: u64,
}

/// A stored window progress, from its texts (sortable times, the cursor as
/// decimal text so that a 64-bit row version round-trips).
pub(crate) fn progress_from_text(begin: &str, end: &str, cursor: &str) -> Result<WindowProgress, String> {
    let time = |t: &str| t.parse::<jiff::Timestamp>().map_err(|e| format!("bad window progress time `{t}`: {e}"));
    Ok(WindowProgress { begin: time(begin)?, end: time(end)?, cursor: cursor.parse().map_err(|e| format!("bad window progress cursor `{cursor}`: {e}"))? })
}

/// One source record as fetched, kept with its batch until confirmed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    /// idCheck key.
    pub key: RecordKey,
    /// The raw JSON text as the source gave it.
    #[serde(with = "super::embedded")]
    pub raw: String,
}

/// A mapped batch and its command UUID, written before the first send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The command UUID (deterministic from the pipeline and the body).
    pub command: Uuid,
    /// The exact body sent: `{"records": [...]}`.
    #[serde(with = "super::embedded")]
    pub body: String,
    /// For each mapped record, the index of its source record.
    pub origins: Vec<usize>,
    /// The ids of the mapped records (for failed-task lookup).
    pub record_ids: Vec<Option<String>>,
    /// The source records of the batch that were mapped.
    pub sources: Vec<SourceRecord>,
    /// Digest of the plugin that mapped it.
    pub plugin: String,
    /// End of the window the batch belongs to (RFC 3339), if any.
    pub window_end: Option<String>,
}

impl OutboxEntry {
    /// The deterministic command UUID of a body: v5 over the pipeline name
    /// and the body's sha256, so a re-made identical batch replays.
    pub fn command_id(pipeline: &str, purpose: &str, body: &str) -> Uuid {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("ferry:{pipeline}:{purpose}:{digest}").as_bytes())
    }
}

/// What a confirmed outbox entry keeps: its record ids (for
/// `confirmed_record_ids`) and its window's end.
pub(crate) fn kept_parts(entry: &OutboxEntry) -> String {
    serde_json::json!({ "record_ids": entry.record_ids, "window_end": entry.window_end }).to_string()
}

/// The record ids kept in confirmed outbox entries, in order.
pub fn kept_record_ids(entries: &[String]) -> Result<Vec<String>, serde_json::Error> {
    let mut ids = Vec::new();
    for e in entries {
        let v: serde_json::Value = serde_json::from_str(e)?;
        ids.extend(v["record_ids"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(String::from)));
    }
    Ok(ids)
}

/// `taskCount` of a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskCount {
    /// Failed tasks.
    pub failed: u64,
    /// Successful tasks.
    pub success: u64,
    /// All tasks.
    pub total: u64,
}

impl TaskCount {
    /// Whether the count adds up for a command of `sent` records:
    /// `success + failed = total = sent`.
    pub fn adds_up(&self, sent: u64) -> bool {
        self.success + self.failed == self.total && self.total == sent
    }
}

/// A record that could not be delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// The source record's key.
    pub key: RecordKey,
    /// Why: the mapping error, the trap or limit, or the target's message.
    pub reason: String,
    /// Digest of the plugin involved.
    pub plugin: String,
    /// The raw source record.
    pub raw: String,
    /// The command that carried it, for target failures.
    pub command: Option<Uuid>,
    /// When (RFC 3339).
    pub created: String,
}

/// One run in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Row id.
    pub id: i64,
    /// `run`, `resume`, `replay`, ...
    pub kind: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End, if it ended.
    pub finished: Option<String>,
    /// `running`, `ok`, `partial`, `failed`, `interrupted`.
    pub status: String,
    /// The run summary.
    pub summary: Option<serde_json::Value>,
}

/// A control-API command kept in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The UUID.
    pub id: String,
    /// `sync` or `plugin`.
    pub kind: String,
    /// Its pipeline.
    pub pipeline: String,
    /// Who issued it.
    pub tenant: String,
    /// RFC 3339.
    pub created: String,
    /// Its status now.
    pub status: String,
    /// Everything else (input, times, taskCount, outcome), as the API shows it.
    pub record: serde_json::Value,
}

/// Which commands to list.
#[derive(Debug, Clone, Default)]
pub struct CommandFilter {
    /// `sync` or `plugin`.
    pub kind: String,
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    /// Created before (RFC 3339).
    pub until: Option<String>,
}

/// A slice of a list: at most `limit` items after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items skipped.
    pub offset: u64,
    /// Items at most.
    pub limit: u64,
}

impl Page {
    /// The whole list.
    pub const ALL: Page = Page { offset: 0, limit: i64::MAX as u64 };

    /// `(limit, offset)` as SQL integers.
    pub fn sql(self) -> (i64, i64) {
        (self.limit.min(i64::MAX as u64) as i64, self.offset.min(i64::MAX as u64) as i64)
    }
}

/// One attempt to put a plugin version live.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwapRecord {
    /// RFC 3339.
    pub at: String,
    /// sha256 of the candidate.
    pub digest: String,
    /// `name@version (sha256:...)` or the origin when it never loaded.
    pub label: String,
    /// `file`, `plugin command <id>`, `undo of <id>`, `rollback`, ...
    pub origin: String,
    /// The digest live before, if any.
    pub previous: Option<String>,
    /// Whether it went live.
    pub accepted: bool,
    /// Why not.
    pub reason: Option<String>,
}
