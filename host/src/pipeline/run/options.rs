//! What one run is asked to do: an incremental sync or a backfill, a dry
//! run, a stop signal; and what a dry run shows instead of writing (the
//! command line prints it; the library prints nothing itself).

use crate::state::DeadLetter;
use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;

/// What to run.
pub struct RunOptions {
    /// Backfill from here instead of the checkpoint.
    pub since: Option<Timestamp>,
    /// Backfill up to here instead of now minus the lag.
    pub until: Option<Timestamp>,
    /// Map and print, write nothing.
    pub dry_run: bool,
    /// Becomes `true` to stop cleanly (Ctrl-C).
    pub stop: Option<watch::Receiver<bool>>,
}

impl RunOptions {
    /// One incremental sync.
    pub fn incremental() -> Self {
        RunOptions { since: None, until: None, dry_run: false, stop: None }
    }
}

/// What a dry run shows instead of writing: each mapped record's JSON text,
/// or a record's dead letter. The command line prints them; the library
/// prints nothing itself.
pub type Shown = Arc<dyn Fn(DryRunItem<'_>) + Send + Sync>;

/// One thing a dry run shows.
pub enum DryRunItem<'a> {
    /// A mapped record, as it would be sent.
    Mapped(&'a Value),
    /// A record that would become a dead letter.
    Dead(&'a DeadLetter),
}
