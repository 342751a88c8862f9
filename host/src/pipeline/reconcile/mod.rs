//! Reconciliation: proving a closed range complete instead of trusting it.
//! For each window of the range the source is asked for its own count
//! (`is_get_total`, one call) and it is compared with Ferry's ledger (the
//! records idCheck holds a version of in that window: delivered,
//! dead-lettered or skipped). Where the two differ, or the target can be
//! asked (`target.lookup`), the window's rows are listed and checked id by
//! id: a row whose version Ferry never handled is *never delivered*; a
//! delivered one the target no longer holds is *lost at the target*.
//!
//! Delivering them goes through the normal path: the lost versions are
//! dropped from idCheck, then each window that misses something is read
//! again as a backfill, so idCheck skips what is there and the rest is
//! mapped, staged in the outbox and sent under its own command UUID; the
//! windows are then checked again.

mod lookup;

pub use lookup::Lookup;

use super::{RunOptions, RunStatus, Runner};
use crate::source::jushuitan::planner::{self, Window};
use crate::source::jushuitan::{Fetched, SourceError};
use crate::state::RecordKey;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashSet;

/// Windows one reconciliation checks at most (a year of daily windows).
pub const MAX_WINDOWS: usize = 400;

/// What a reconciliation found, and did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub pipeline: String,
    /// The range (RFC 3339).
    pub since: String,
    pub until: String,
    pub windows: Vec<WindowCheck>,
    /// The source's count, summed over the windows.
    pub source_count: u64,
    /// Ferry's ledger, summed over the windows.
    pub ferry_count: u64,
    /// Records missing when checked.
    pub missing: Vec<Missing>,
    /// Source records in the listed windows that are dead letters (known,
    /// not missing: `ferry dlq`).
    pub dead_letters: u64,
    /// Delivered ids the target was asked about.
    pub checked_at_target: u64,
    /// Records delivered by the repair (with `deliver`).
    pub delivered: Option<u64>,
    /// Still missing after the repair (with `deliver`).
    pub still_missing: Option<Vec<Missing>>,
    /// When it finished (RFC 3339).
    pub at: String,
}

impl ReconcileReport {
    /// Whether nothing is missing (now).
    pub fn complete(&self) -> bool {
        self.still_missing().is_empty()
    }

    /// What is missing now: after the repair, if there was one.
    pub fn still_missing(&self) -> &[Missing] {
        self.still_missing.as_ref().unwrap_or(&self.missing)
    }
}

/// One window's counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowCheck {
    pub begin: String,
    pub end: String,
    pub source: u64,
    pub ferry: u64,
    /// Whether its rows were listed and checked id by id.
    pub listed: bool,
}

/// A record the range should hold and does not.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    pub id: String,
    /// The version (`modified`, and the row key where the id is not unique).
    pub version: String,
    pub why: Why,
}

/// Why a record is missing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// Ferry never handled this version.
    NeverDelivered,
    /// Ferry delivered it; the target no longer holds it.
    LostAtTarget,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::NeverDelivered => "never delivered",
            Why::LostAtTarget => "lost at the target",
        }
    }
}

/// A reconciliation failed to finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The range cannot be reconciled (reversed, or past the checkpoint).
    #[error("{0}")]
    Range(String),
    #[error("source, window {window}: {cause}")]
    Source { window: Window, cause: SourceError },
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Target(String),
    #[error("the repair run of window {window} ended {status}: {error}")]
    Repair { window: Window, status: RunStatus, error: String },
}

impl Runner {
    /// Reconciles `[since, until]` (default: the day up to the
    /// checkpoint), and with `deliver` delivers what is missing. The range
    /// must end at or before the checkpoint: what lies after it is not
    /// synced yet.
    pub async fn reconcile(&self, since: Option<Timestamp>, until: Option<Timestamp>, deliver: bool) -> Result<ReconcileReport, ReconcileError> {
        let name = &self.pipeline.name;
        let checkpoint = self.state.checkpoint(name)?;
        let until = match (until, checkpoint) {
            (Some(u), _) => u,
            (None, Some(c)) => c,
            (None, None) => return Err(ReconcileError::Range(format!("`{name}` has no checkpoint yet: nothing is synced to reconcile (run it first)"))),
        };
        let since = since.unwrap_or(until - jiff::SignedDuration::from_hours(24));
        crate::time::check_range(Some(since), Some(until)).map_err(ReconcileError::Range)?;
        match checkpoint {
            Some(c) if until <= c => {}
            c => {
                let at = c.map_or("no checkpoint yet".to_string(), |c| format!("the checkpoint is {}", crate::time::rfc3339(c)));
                return Err(ReconcileError::Range(format!(
                    "--until {} is past what is synced ({at}); reconcile a range that ends at or before the checkpoint, or run first",
                    crate::time::rfc3339(until)
                )));
            }
        }
        let lookup = self.lookup()?;
        let windows = planner::split(since, until, self.pipeline.source.window);
        if windows.len() > MAX_WINDOWS {
            return Err(ReconcileError::Range(format!(
                "the range holds {} windows of {}; one reconciliation checks at most {MAX_WINDOWS} (one source call each, at least): reconcile it in parts",
                windows.len(),
                humantime::format_duration(self.pipeline.source.window)
            )));
        }
        let mut report = ReconcileReport {
            pipeline: name.clone(),
            since: crate::time::rfc3339(since),
            until: crate::time::rfc3339(until),
            windows: Vec::new(),
            source_count: 0,
            ferry_count: 0,
            missing: Vec::new(),
            dead_letters: 0,
            checked_at_target: 0,
            delivered: None,
            still_missing: None,
            at: String::new(),
        };
        let dead: HashSet<String> = self.state.dead_letters(name)?.into_iter().map(|d| d.key.id).collect();
        let mut missing_in: Vec<(Window, Vec<Missing>)> = Vec::new();
        for w in &windows {
            let source = self.client.count_window(&self.pipeline.source.request, w).await.map_err(|cause| ReconcileError::Source { window: *w, cause })?;
            let zone = &self.pipeline.source.request.zone;
            let ferry = self.state.handled_between(name, &crate::time::format_in(w.begin, zone), &crate::time::format_in(w.end, zone))?;
            let listed = source != ferry || lookup.is_some();
            report.windows.push(WindowCheck { begin: crate::time::rfc3339(w.begin), end: crate::time::rfc3339(w.end), source, ferry, listed });
            (report.source_count, report.ferry_count) = (report.source_count + source, report.ferry_count + ferry);
            if listed {
                let checked = self.check_window(w, lookup.as_ref(), &dead).await?;
                report.dead_letters += checked.dead_letters;
                report.checked_at_target += checked.asked;
                if !checked.missing.is_empty() {
                    report.missing.extend(checked.missing.iter().cloned());
                    missing_in.push((*w, checked.missing));
                }
            }
        }
        if deliver {
            let before = self.counters.delivered.load(std::sync::atomic::Ordering::Relaxed);
            let mut still = Vec::new();
            for (w, missing) in &missing_in {
                let lost: Vec<RecordKey> =
                    missing.iter().filter(|m| m.why == Why::LostAtTarget).map(|m| RecordKey { id: m.id.clone(), version: m.version.clone() }).collect();
                self.state.forget(name, &lost)?;
                tracing::info!(pipeline = %name, window = %w, missing = missing.len(), "reconcile: reading the window again to deliver what is missing");
                let s = self.run(RunOptions { since: Some(w.begin), until: Some(w.end), dry_run: false, stop: None }).await;
                if !matches!(s.status, RunStatus::Ok | RunStatus::Partial) {
                    return Err(ReconcileError::Repair { window: *w, status: s.status, error: s.error.unwrap_or_default() });
                }
                let dead: HashSet<String> = self.state.dead_letters(name)?.into_iter().map(|d| d.key.id).collect();
                still.extend(self.check_window(w, lookup.as_ref(), &dead).await?.missing);
            }
            report.delivered = Some(self.counters.delivered.load(std::sync::atomic::Ordering::Relaxed) - before);
            report.still_missing = Some(still);
        }
        report.at = crate::time::rfc3339(Timestamp::now());
        Ok(report)
    }

    fn lookup(&self) -> Result<Option<Lookup>, ReconcileError> {
        let t = &self.pipeline.target;
        let token = t.token.as_ref().map(|s| s.expose().to_string());
        t.lookup.as_deref().map(|url| Lookup::new(url, token, t.timeout)).transpose().map_err(ReconcileError::Target)
    }

    /// Lists the window's rows and checks each: handled by Ferry, and (with
    /// a lookup) held by the target when Ferry delivered it.
    async fn check_window(&self, w: &Window, lookup: Option<&Lookup>, dead: &HashSet<String>) -> Result<Checked, ReconcileError> {
        let name = &self.pipeline.name;
        let keys = self.list(w).await?;
        let handled = self.state.handled(name, &keys)?;
        let mut out = Checked::default();
        let mut delivered = Vec::new();
        for (key, handled) in keys.into_iter().zip(handled) {
            if !handled {
                out.missing.push(Missing { id: key.id, version: key.version, why: Why::NeverDelivered });
            } else if dead.contains(&key.id) {
                out.dead_letters += 1;
            } else {
                delivered.push(key);
            }
        }
        if let Some(lookup) = lookup {
            // Only what the target confirmed is asked about (a record the plugin skipped was never sent).
            let confirmed: HashSet<String> = self.state.confirmed_record_ids(name, "", "~")?.into_iter().collect();
            delivered.retain(|k| confirmed.contains(&k.id));
            let ids: Vec<String> = delivered.iter().map(|k| k.id.clone()).collect();
            out.asked = ids.len() as u64;
            let absent: HashSet<String> = lookup.absent(ids).await.map_err(ReconcileError::Target)?.into_iter().collect();
            out.missing.extend(delivered.into_iter().filter(|k| absent.contains(&k.id)).map(|k| Missing {
                id: k.id,
                version: k.version,
                why: Why::LostAtTarget,
            }));
        }
        Ok(out)
    }

    /// The keys of every row in the window, as a run reads them.
    async fn list(&self, w: &Window) -> Result<Vec<RecordKey>, ReconcileError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Fetched>(4);
        let (client, req, window, mode) = (self.client.clone(), self.pipeline.source.request.clone(), *w, self.pipeline.source.paging);
        let fetch = tokio::spawn(async move { client.fetch_window(&req, &window, mode, 0, &tx).await });
        let mut keys = Vec::new();
        while let Some(page) = rx.recv().await {
            keys.extend(page.rows.iter().map(|r| {
                let (id, version) = r.key();
                RecordKey { id, version }
            }));
        }
        match fetch.await {
            Ok(Ok(_)) => Ok(keys),
            Ok(Err(cause)) => Err(ReconcileError::Source { window: *w, cause }),
            Err(e) => Err(ReconcileError::Target(format!("listing window {w} stopped: {e}"))),
        }
    }
}

#[derive(Default)]
struct Checked {
    missing: Vec<Missing>,
    dead_letters: u64,
    asked: u64,
}
