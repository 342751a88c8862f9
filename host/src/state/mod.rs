//! Ferry's own state, split by what it serves: the data plane's
//! ([`DataStore`]: checkpoints, window progress, the outbox, the idCheck
//! index, dead letters, runs, rate budgets) and the control plane's
//! ([`ControlStore`]: commands, plugin versions and swaps). One store keeps
//! both ([`StateStore`]), so that PostgreSQL ([`PgStore`]) can replace
//! SQLite ([`SqliteStore`]) for scale-out; [`StateLocation`] picks one from
//! the pipeline's `[state]`. Store calls block; on a tokio worker they say
//! so first (`blocking`). No SQL lives outside this module.

mod embedded;
mod location;
mod owner;
mod pg;
mod sqlite;
mod types;
mod writer;

pub use location::StateLocation;

/// The summary of a run whose process died before finishing it.
pub(crate) const DEAD_RUN_NOTE: &str = r#"{"status":"interrupted","error":"the process running it ended without finishing (killed, or the machine stopped); the next run resumed from the outbox and the checkpoint"}"#;
pub use pg::{LeaseView, PgStore, WorkerView, describe as describe_postgres_error, set_reconnect_grace};
pub use sqlite::SqliteStore;
pub use types::{CommandFilter, CommandRecord, DeadLetter, OutboxEntry, Page, RecordKey, RunRecord, SourceRecord, SwapRecord, TaskCount, WindowProgress};
pub use writer::WriterLock;

use crate::budget::{BudgetMemory, SharedBudget};
use jiff::Timestamp;
use std::sync::Arc;

/// A state-store failure.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StateError {
    /// The store (file path or URL).
    pub path: String,
    /// What failed.
    pub message: String,
}

/// The data plane's state: what a run reads and writes (checkpoints,
/// window progress, outbox, idCheck, dead letters, runs, rate budgets).
/// Every method that changes several things does so in one transaction.
pub trait DataStore: Send + Sync {
    /// The pipeline's checkpoint: every record modified before it is confirmed.
    fn checkpoint(&self, pipeline: &str) -> Result<Option<Timestamp>, StateError>;
    /// Moves the checkpoint (only after every batch before it is confirmed);
    /// the progress of windows that end by it is forgotten.
    fn set_checkpoint(&self, pipeline: &str, at: Timestamp) -> Result<(), StateError>;
    /// Windows read part way, each with the cursor its staged rows reach.
    fn window_progress(&self, pipeline: &str) -> Result<Vec<WindowProgress>, StateError>;
    /// Records how far a window's staged rows reach (`None`: forget every
    /// window of the pipeline, as at the end of a complete run).
    fn set_window_progress(&self, pipeline: &str, progress: Option<&WindowProgress>) -> Result<(), StateError>;
    /// idCheck: for each key, whether that version was already handled
    /// (delivered, dead-lettered or skipped).
    fn handled(&self, pipeline: &str, keys: &[RecordKey]) -> Result<Vec<bool>, StateError>;
    /// Records a mapped batch BEFORE it is sent, with the dead letters and
    /// skips of the same input batch: one transaction. `entry` may be `None`
    /// when nothing was mapped.
    fn stage(&self, pipeline: &str, entry: Option<&OutboxEntry>, dead: &[DeadLetter], skipped: &[RecordKey]) -> Result<(), StateError>;
    /// Outbox entries not yet confirmed, oldest first.
    fn pending(&self, pipeline: &str) -> Result<Vec<OutboxEntry>, StateError>;
    /// Confirms a sent command: marks its pending entry done, indexes its
    /// records as handled and stores the dead letters of its failed tasks.
    /// `entry` is the one staged (its keys and ids are taken from it, not
    /// read back); a command already confirmed, or never staged, is left
    /// as it is.
    fn confirm(&self, pipeline: &str, entry: &OutboxEntry, count: TaskCount, dead: &[DeadLetter]) -> Result<(), StateError>;
    /// Every dead letter, oldest first.
    fn dead_letters(&self, pipeline: &str) -> Result<Vec<DeadLetter>, StateError> {
        self.dead_letters_page(pipeline, Page::ALL)
    }
    /// One page of dead letters, oldest first.
    fn dead_letters_page(&self, pipeline: &str, page: Page) -> Result<Vec<DeadLetter>, StateError>;
    /// How many dead letters the pipeline has (without loading them).
    fn dead_letter_count(&self, pipeline: &str) -> Result<u64, StateError>;
    /// Dead letters by reason, the most frequent first (at most `limit` reasons).
    fn dead_letter_reasons(&self, pipeline: &str, limit: u64) -> Result<Vec<(String, u64)>, StateError>;
    /// Removes replayed dead letters.
    fn remove_dead_letters(&self, pipeline: &str, ids: &[i64]) -> Result<(), StateError>;
    /// Size of the idCheck index.
    fn handled_count(&self, pipeline: &str) -> Result<u64, StateError>;
    /// Distinct records with a handled version from `from` to `to` (both
    /// the API's `YYYY-MM-DD HH:MM:SS`, inclusive; a version is the
    /// record's `modified`, maybe followed by its row key): what
    /// reconciliation compares with the source's count of that window.
    fn handled_between(&self, pipeline: &str, from: &str, to: &str) -> Result<u64, StateError>;
    /// Drops versions from the idCheck index, so the next read of their
    /// window delivers them again (reconciliation, for records the target lost).
    fn forget(&self, pipeline: &str, keys: &[RecordKey]) -> Result<(), StateError>;
    /// Starts a run record; returns its id.
    fn start_run(&self, pipeline: &str, kind: &str) -> Result<i64, StateError>;
    /// Marks `interrupted` every run left `running` by a process of this
    /// host that is gone (killed, or the machine rebooted); returns how many.
    fn sweep_dead_runs(&self) -> Result<u64, StateError>;
    /// Ends a run record with its status and summary (JSON).
    fn finish_run(&self, run: i64, status: &str, summary: &serde_json::Value) -> Result<(), StateError>;
    /// The last `limit` runs, newest first.
    fn runs(&self, pipeline: &str, limit: usize) -> Result<Vec<RunRecord>, StateError>;
    /// Ids of the records confirmed between two times (RFC 3339), in order.
    fn confirmed_record_ids(&self, pipeline: &str, from: &str, to: &str) -> Result<Vec<String>, StateError>;
    /// A rate budget shared by every process using this store, if it can
    /// hold one (PostgreSQL does; a SQLite file is one process's).
    fn shared_budget(&self) -> Option<Arc<dyn SharedBudget>> {
        None
    }
    /// Where a process's budget remembers its next call slot for the next
    /// process (SQLite; a shared budget already outlives its processes).
    fn budget_memory(&self) -> Option<Arc<dyn BudgetMemory>> {
        None
    }
    /// The pipeline goes idle (opened, or a run ended): give back what an
    /// idle store need not hold (SQLite closes its connection until the
    /// next use). Nothing is lost: the next call opens it again.
    fn rest(&self) {}
}

/// The control plane's state: commands (keyed by tenant and id), plugin
/// versions and swaps.
pub trait ControlStore: crate::credentials::TokenVault + Send + Sync {
    /// Stores or updates a control-API command (history survives restarts).
    fn put_command(&self, command: &CommandRecord) -> Result<(), StateError>;
    /// One of a tenant's commands by id (ids are scoped per tenant).
    fn command(&self, tenant: &str, id: &str) -> Result<Option<CommandRecord>, StateError>;
    /// Stores a new command unless its tenant already has one with its id;
    /// returns the command stored under that id, if any (then nothing
    /// changed).
    fn insert_command(&self, command: &CommandRecord) -> Result<Option<CommandRecord>, StateError>;
    /// Updates a command's status and record only while its stored status
    /// is one of `from`; returns whether it did (a compare-and-set, so two
    /// workers cannot both move a command on).
    fn update_command_if(&self, command: &CommandRecord, from: &[&str]) -> Result<bool, StateError>;
    /// Commands matching the filter, newest first.
    fn commands(&self, filter: &CommandFilter) -> Result<Vec<CommandRecord>, StateError>;
    /// Forgets commands created before `before` (RFC 3339); returns how many.
    fn prune_commands(&self, before: &str) -> Result<u64, StateError>;
    /// Keeps a plugin version's bytes by digest (for undo and rollback).
    fn put_plugin_version(&self, digest: &str, label: &str, bytes: &[u8]) -> Result<(), StateError>;
    /// A kept plugin version.
    fn plugin_version(&self, digest: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Records an attempt to put a plugin version live.
    fn record_swap(&self, pipeline: &str, swap: &SwapRecord) -> Result<(), StateError>;
    /// Every plugin swap of the pipeline, oldest first.
    fn swaps(&self, pipeline: &str) -> Result<Vec<SwapRecord>, StateError> {
        self.swaps_page(pipeline, Page::ALL)
    }
    /// One page of the pipeline's plugin swaps, oldest first.
    fn swaps_page(&self, pipeline: &str, page: Page) -> Result<Vec<SwapRecord>, StateError>;
    /// How many swaps the pipeline has recorded.
    fn swap_count(&self, pipeline: &str) -> Result<u64, StateError>;
}

/// Everything Ferry remembers between runs: both planes, as one store
/// (SQLite or PostgreSQL) keeps them.
pub trait StateStore: DataStore + ControlStore {}

impl<T: DataStore + ControlStore + ?Sized> StateStore for T {}

/// Runs a blocking store call. On a worker of a multi-threaded tokio
/// runtime it tells tokio first (`block_in_place`), so the worker's other
/// tasks move to other threads instead of waiting behind a database call;
/// anywhere else it just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
