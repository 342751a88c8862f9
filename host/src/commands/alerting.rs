//! What the engine tells [`crate::alerts`]: each run's end (from
//! `execute`), each plugin version offered (through the registry's swap
//! recorder), and on a timer each pipeline's checkpoint lag and token. In
//! a cluster only the leading worker reports on the timer, so one post is
//! made, not one per worker.

use super::{Engine, PipelineHandle};
use crate::alerts::{Alerts, Fact, TokenFact};
use crate::credentials::TokenState;
use crate::plugin::SwapRecorder;
use std::sync::Arc;
use std::time::Duration;

/// Reports `Fact::Watch` for every pipeline every `alerts.every`.
pub(crate) async fn watch(engine: Arc<Engine>) {
    let mut stop = engine.stop.clone();
    let mut tick = tokio::time::interval(engine.alerts.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let e = engine.clone();
        // Store reads block: off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            if e.cluster.as_ref().is_some_and(|c| !c.leads()) {
                return;
            }
            for h in e.pipelines.values() {
                e.alerts.observe(&h.pipeline.name, &h.tenant, &watched(&e, h));
            }
        })
        .await;
    }
}

fn watched(engine: &Engine, h: &PipelineHandle) -> Fact {
    let lag = match h.checkpoint_lag() {
        Ok(lag) => lag,
        Err(e) => {
            tracing::warn!(pipeline = %h.pipeline.name, "alerts cannot read the checkpoint: {e}");
            None
        }
    };
    let token = engine.token_of(h).map(|t| TokenFact {
        left: t.seconds_left().map(|s| Duration::from_secs(s.max(0) as u64)),
        needs_reauthorization: t.state == TokenState::NeedsReauthorization,
    });
    Fact::Watch { lag, token }
}

/// `inner` (the store's recorder), then the swap as a fact for alerts.
pub(crate) fn recorder(inner: SwapRecorder, alerts: Arc<Alerts>, tenant: String) -> SwapRecorder {
    Arc::new(move |pipeline, e, bytes| {
        inner(pipeline, e, bytes);
        alerts.observe(pipeline, &tenant, &Fact::Plugin { accepted: e.accepted, digest: e.digest.clone(), reason: e.reason.clone() });
    })
}
