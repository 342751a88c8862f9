//! Persisting plugin swaps: every attempt goes to the pipeline's state
//! store, and the bytes of versions that went live are kept by digest, so
//! undo and rollback can put an earlier version back after a restart.

use crate::plugin::SwapRecorder;
use crate::state::{StateStore, SwapRecord};
use std::sync::Arc;

/// The digest of the version last put live for `pipeline`, by this
/// process or, on a shared store, by any worker.
pub fn last_live(state: &dyn StateStore, pipeline: &str) -> Option<String> {
    state.swaps(pipeline).ok()?.into_iter().rev().find(|s| s.accepted).map(|s| s.digest)
}

/// A swap recorder writing to `state`. A version that is already the last
/// one live is not recorded again (each `ferry run` loads its file anew,
/// and every worker of a cluster puts the cluster's live version in).
pub fn store_recorder(state: Arc<dyn StateStore>) -> SwapRecorder {
    Arc::new(move |pipeline, e, bytes| {
        let last_live = last_live(state.as_ref(), pipeline);
        if e.accepted && last_live.as_deref() == Some(e.digest.as_str()) {
            return;
        }
        if let Some(b) = bytes
            && let Err(err) = state.put_plugin_version(&e.digest, &e.plugin, b)
        {
            tracing::warn!(pipeline, "cannot keep the plugin version: {err}");
        }
        let previous = e.previous.clone().or(if e.accepted { last_live.filter(|d| *d != e.digest) } else { None });
        let record = SwapRecord {
            at: e.at.clone(),
            digest: e.digest.clone(),
            label: e.plugin.clone(),
            origin: e.origin.clone(),
            previous,
            accepted: e.accepted,
            reason: e.reason.clone(),
        };
        if let Err(err) = state.record_swap(pipeline, &record) {
            tracing::warn!(pipeline, "cannot record the plugin swap: {err}");
        }
    })
}
