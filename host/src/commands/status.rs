//! The states of commands, as types: a sync command's and a plugin
//! command's status are enums, written as text only at the edges (the
//! JSON resource, the `commands` table's `status` column, metrics labels),
//! and every move a command makes is checked here, in one place.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a sync command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Waiting for its pipeline.
    Queued,
    /// Being run (by this process or a cluster worker).
    Running,
    /// Every record went through.
    Succeeded,
    /// Finished, with failed records (dead letters).
    Partial,
    /// Stopped by an error; the checkpoint did not move past it.
    Failed,
    /// The server stopped during the run; the next run resumes it.
    Interrupted,
    /// Cancelled before it started.
    Cancelled,
}

impl SyncStatus {
    /// The text at the edges.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Queued => "queued",
            SyncStatus::Running => "running",
            SyncStatus::Succeeded => "succeeded",
            SyncStatus::Partial => "partial",
            SyncStatus::Failed => "failed",
            SyncStatus::Interrupted => "interrupted",
            SyncStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a plugin command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Compiling, linking and checking the new version.
    Validating,
    /// Its version went live.
    Live,
    /// Its version failed a check; what was live stays live.
    Rejected,
    /// Undone: the version before it was put back.
    Undone,
}

impl PluginStatus {
    /// The text at the edges.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginStatus::Validating => "validating",
            PluginStatus::Live => "live",
            PluginStatus::Rejected => "rejected",
            PluginStatus::Undone => "undone",
        }
    }
}

/// A command's status: the moves it may make, checked in one place.
pub trait Status: Copy + std::fmt::Display {
    /// Whether a command may move from `self` to `next`.
    fn may_become(self, next: Self) -> bool;
}

impl Status for SyncStatus {
    /// Whether a command may move from `self` to `next`: queued to running
    /// or cancelled; running to an end, back to queued (its worker stopped),
    /// or running again (another worker took it over).
    fn may_become(self, next: SyncStatus) -> bool {
        use SyncStatus::*;
        matches!((self, next), (Queued, Running | Cancelled) | (Running, Running | Queued | Succeeded | Partial | Failed | Interrupted))
    }
}

impl Status for PluginStatus {
    /// Whether a plugin command may move from `self` to `next`.
    fn may_become(self, next: PluginStatus) -> bool {
        use PluginStatus::*;
        matches!((self, next), (Validating, Live | Rejected) | (Live, Undone))
    }
}

/// Moves `status` (of command `id`) to `next` if that move is allowed; a
/// move that is not is a bug, logged, and the status stays. Whether it moved.
pub(crate) fn advance<S: Status>(status: &mut S, next: S, id: &dyn std::fmt::Display) -> bool {
    if !status.may_become(next) {
        tracing::error!(command = %id, from = %status, to = %next, "a command may not make this move; it keeps its state");
        return false;
    }
    *status = next;
    true
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PluginStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_json_and_only_listed_moves_are_allowed() {
        use SyncStatus::*;
        for s in [Queued, Running, Succeeded, Partial, Failed, Interrupted, Cancelled] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!(Queued.may_become(Running) && Queued.may_become(Cancelled) && Running.may_become(Queued) && Running.may_become(Running));
        assert!(!Running.may_become(Cancelled) && !Succeeded.may_become(Running) && !Cancelled.may_become(Queued) && !Queued.may_become(Succeeded));
        assert!(PluginStatus::Validating.may_become(PluginStatus::Live) && PluginStatus::Live.may_become(PluginStatus::Undone));
        assert!(!PluginStatus::Rejected.may_become(PluginStatus::Undone) && !PluginStatus::Undone.may_become(PluginStatus::Live));
    }
}
