//! Where mapped batches go. Every sink is idempotent per command UUID, so a
//! retry or a resumed run never doubles a record:
//! - [`CommandSink`]: `PUT {base}/{resource}/{uuid}` (seed 001), poll `GET`
//!   until `completedAt`, read failed tasks;
//! - [`HttpSink`]: `POST` of the batch with an `Idempotency-Key` header;
//! - [`JsonlSink`]: lines appended to a local file, commands already in the
//!   file skipped.

mod command;
mod http;
mod jsonl;
mod retry;

pub use command::CommandSink;
pub use http::HttpSink;
pub use jsonl::JsonlSink;

use crate::state::{OutboxEntry, TaskCount};
use std::sync::atomic::AtomicU64;

/// A write that cannot succeed by retrying: the entry stays in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The target refused the request (4xx other than 409/429).
    #[error("target refused command {command}: HTTP {status}: {body}")]
    Rejected {
        /// The command.
        command: uuid::Uuid,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The UUID exists at the target with a different body.
    #[error("target has command {command} with a different body (HTTP 409): the outbox and the target disagree; inspect before resending")]
    Conflict {
        /// The command.
        command: uuid::Uuid,
    },
    /// Transient failures outlived the retries; the next run resends.
    #[error("command {command} not confirmed after {attempts} attempts: {last}")]
    Exhausted {
        /// The command.
        command: uuid::Uuid,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A local file failed.
    #[error("{0}")]
    Io(String),
}

/// One record the target refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTask {
    /// The mapped record's id, if the target named it.
    pub record_id: Option<String>,
    /// The target's reason.
    pub message: String,
}

/// What the target says about a confirmed command.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// `taskCount`.
    pub count: TaskCount,
    /// The failed tasks.
    pub failed: Vec<FailedTask>,
    /// The record ids the target's tasks name as succeeded, when its tasks
    /// were read (they are when any failed or `taskCount` does not add up).
    pub succeeded: Option<Vec<String>>,
    /// Whether the target had already applied it (a replay).
    pub replayed: bool,
}

/// Counters of the sink for the run summary.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Requests sent (PUT/POST/GET).
    pub requests: AtomicU64,
    /// Retries of transient failures.
    pub retries: AtomicU64,
    /// Commands the target had already applied (replays).
    pub replays: AtomicU64,
}

/// The configured sink.
pub enum Sink {
    /// Command-pattern target.
    Command(CommandSink),
    /// Plain HTTP.
    Http(HttpSink),
    /// Local JSONL file.
    Jsonl(JsonlSink),
}

impl Sink {
    /// Delivers one outbox entry, idempotently.
    pub async fn send(&self, entry: &OutboxEntry) -> Result<Delivery, SinkError> {
        match self {
            Sink::Command(s) => s.send(entry).await,
            Sink::Http(s) => s.send(entry).await,
            Sink::Jsonl(s) => s.send(entry),
        }
    }

    /// The sink's counters.
    pub fn stats(&self) -> &SinkStats {
        match self {
            Sink::Command(s) => &s.stats,
            Sink::Http(s) => &s.stats,
            Sink::Jsonl(s) => &s.stats,
        }
    }
}
