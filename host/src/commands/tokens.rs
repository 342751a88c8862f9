//! Tokens kept fresh between runs: a pipeline that syncs less often than
//! its token's refresh margin (a daily schedule and a one-day token) would
//! otherwise let the token expire between two runs, and a service-provider
//! app cannot get a new one without the merchant. For each pipeline that
//! keeps its token, `ferry serve` wakes when the token is due and renews it
//! through the same keeper as a run (one refresh across every process and
//! worker, by compare-and-set).

use super::{Engine, PipelineHandle};
use crate::source::jushuitan::JushuitanClient;
use std::sync::Arc;
use std::time::Duration;

/// The longest sleep between two looks (a token set by hand, or renewed
/// by another process, is seen within it).
const LONGEST: Duration = Duration::from_secs(600);

/// Keeps the pipeline's token renewed ahead of its expiry until the
/// engine stops.
pub(crate) async fn keep_fresh(engine: Arc<Engine>, handle: Arc<PipelineHandle>) {
    let name = handle.pipeline.name.clone();
    let mut stop = engine.stop.clone();
    let vault: Arc<dyn crate::credentials::TokenVault> = handle.state.clone();
    let client = match JushuitanClient::new(handle.pipeline.source.client.clone(), None).and_then(|c| c.with_tokens(vault)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(pipeline = %name, "the token is not kept fresh between runs: {e}");
            return;
        }
    };
    let Some(keeper) = client.tokens().cloned() else { return };
    // After a failure, look again only after the longest sleep (the error
    // is said once; `token set` is picked up at the next look).
    let mut failed = false;
    loop {
        let wait = if failed { LONGEST } else { keeper.until_due().unwrap_or(LONGEST).clamp(Duration::from_secs(1), LONGEST) };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if !failed && !keeper.until_due().is_some_and(|d| d.is_zero()) {
            continue;
        }
        match keeper.access().await {
            Ok(_) => failed = false,
            Err(e) => {
                if !failed {
                    tracing::warn!(pipeline = %name, "the token could not be renewed between runs: {e}");
                }
                failed = true;
            }
        }
    }
}
