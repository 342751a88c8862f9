//! Reconciliation in `ferry serve`: on request (`POST
//! /pipelines/{name}/reconcile`) and on a schedule (`reconcile = { every,
//! range, deliver }` on a served pipeline), as the pipeline's only writer
//! (its slot, and in a cluster its lease), like a dead-letter replay. The
//! last report is kept for the pipeline's view and told to alerts.
//!
//! A reconciliation waits for the source's rate budget like a sync does, so
//! it can take minutes: a request waits for it a bounded time and then
//! answers that it is still running, while it goes on in the background.

use super::{CommandError, Engine, PipelineHandle};
use crate::pipeline::Runner;
use crate::pipeline::reconcile::{ReconcileError, ReconcileReport};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;

/// A served pipeline's scheduled reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSchedule {
    /// How often.
    pub every: Duration,
    /// The range checked: this long, up to the checkpoint.
    pub range: Duration,
    /// Whether what is missing is delivered.
    pub deliver: bool,
}

/// A requested reconciliation when the caller stops waiting for it.
#[derive(Debug)]
pub enum Reconciling {
    /// It ended with this report.
    Done(ReconcileReport),
    /// It still runs (since then); its report will be the pipeline's last.
    Running(Timestamp),
}

impl Engine {
    /// Reconciles `[since, until]` of the pipeline (default: the day up to
    /// its checkpoint); with `deliver`, delivers what is missing. Refused
    /// while a sync of it runs. Waits at most `wait` for the report; the
    /// reconciliation goes on after that (and if the caller goes away).
    pub async fn reconcile(
        self: &Arc<Self>,
        tenant: &str,
        name: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        deliver: bool,
        wait: Duration,
    ) -> Result<Reconciling, CommandError> {
        let h = self.pipeline_for(name, tenant)?.clone();
        let engine = self.clone();
        let (done, report) = tokio::sync::oneshot::channel();
        let began = Timestamp::now();
        tokio::spawn(async move {
            let _ = done.send(engine.reconcile_now(&h, since, until, deliver).await);
        });
        match tokio::time::timeout(wait, report).await {
            Ok(Ok(result)) => result.map(Reconciling::Done),
            Ok(Err(_)) => Err(CommandError::Internal("the reconciliation ended without a report".into())),
            Err(_) => Ok(Reconciling::Running(began)),
        }
    }

    async fn reconcile_now(
        &self,
        h: &PipelineHandle,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        deliver: bool,
    ) -> Result<ReconcileReport, CommandError> {
        let name = &h.pipeline.name;
        let _writer = self.sole_writer(h)?;
        let _running = Running::mark(h);
        let runner = Runner::from_parts(h.pipeline.clone(), h.registry.clone(), h.state.clone(), !deliver)
            .map_err(|e| CommandError::Internal(format!("cannot build the run: {e}")))?;
        let report = runner.reconcile(since, until, deliver).await.map_err(|e| match e {
            ReconcileError::Range(m) => CommandError::Invalid(m),
            other => CommandError::Upstream(format!("reconciliation stopped: {other}")),
        })?;
        let missing = report.still_missing().len() as u64;
        if missing > 0 {
            tracing::warn!(pipeline = %name, tenant = %h.tenant, missing, delivered = report.delivered, since = %report.since, until = %report.until, "reconcile: records missing");
        } else {
            tracing::info!(pipeline = %name, tenant = %h.tenant, delivered = report.delivered, source = report.source_count, since = %report.since, until = %report.until, "reconcile: complete");
        }
        self.alerts.observe(name, &h.tenant, &crate::alerts::Fact::Reconciled { missing, range: format!("{} .. {}", report.since, report.until) });
        *h.reconciled.lock().expect("reconciled lock") = Some(report.clone());
        Ok(report)
    }
}

/// Marks the pipeline as reconciling while it lives.
struct Running<'a>(&'a PipelineHandle);

impl<'a> Running<'a> {
    fn mark(h: &'a PipelineHandle) -> Self {
        *h.reconciling.lock().expect("reconciling lock") = Some(Timestamp::now());
        Running(h)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.reconciling.lock().expect("reconciling lock") = None;
    }
}

/// Reconciles `plan.range` up to the checkpoint every `plan.every` (the
/// first after one interval); waits for a running sync to end.
pub(crate) async fn schedule(engine: Arc<Engine>, h: Arc<PipelineHandle>, plan: ReconcileSchedule) {
    let mut stop = engine.stop.clone();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + plan.every, plan.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let until = match h.state.checkpoint(&h.pipeline.name) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(pipeline = %h.pipeline.name, "scheduled reconcile skipped: {e}");
                continue;
            }
        };
        let since = until - jiff::SignedDuration::try_from(plan.range).unwrap_or(jiff::SignedDuration::from_hours(24));
        // A sync holds the pipeline: try again until it is done (at most until the next tick).
        for _ in 0..(plan.every.as_secs() / 5).max(1) {
            match engine.reconcile_now(&h, Some(since), Some(until), plan.deliver).await {
                Err(CommandError::Conflict(_)) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(pipeline = %h.pipeline.name, "scheduled reconcile failed: {e}");
                    break;
                }
                Ok(_) => break,
            }
        }
    }
}
