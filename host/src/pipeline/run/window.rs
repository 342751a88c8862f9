//! One window, pipelined: pages arrive while earlier batches are mapped
//! (up to one batch per core at once) and sent (up to `concurrency` at
//! once). Batches are staged in the outbox in the order they were read,
//! and the `ts` cursor every staged row was read before is kept in the
//! state as it moves, so a process that dies mid-window reads it again
//! from there, not from its start.

use super::{DryRunItem, Flow, RunError, Runner, join, stopped};
use crate::pipeline::summary::Counters;
use crate::source::jushuitan::{Fetched, PagingMode, Row, Window};
use crate::state::{OutboxEntry, RecordKey, WindowProgress};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Batches mapped at once: one per core, at least two so that staging one
/// overlaps mapping the next.
fn map_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 16)
}

impl Runner {
    /// Reads, maps, stages and sends every row of `w`. `claimed` holds the
    /// keys on a window edge already taken by a window read at the same
    /// time (a row modified in the edge second is in both).
    pub(super) async fn window(
        &self,
        w: Window,
        from_ts: u64,
        dry_run: bool,
        mut stop: Option<watch::Receiver<bool>>,
        sem: Arc<Semaphore>,
        claimed: &Mutex<HashSet<RecordKey>>,
    ) -> Result<Flow, RunError> {
        let (tx, mut rx) = mpsc::channel::<Fetched>(4);
        let client = self.client.clone();
        let req = self.pipeline.source.request.clone();
        let mode = self.pipeline.source.paging;
        let fetch = tokio::spawn(async move { client.fetch_window(&req, &w, mode, from_ts, &tx).await });
        // Where the cursor stands after each page read (rows received by
        // then), and how many rows are staged.
        let (mut marks, mut received, mut staged): (VecDeque<(u64, u64)>, u64, u64) = (VecDeque::new(), 0, 0);
        let keep_progress = !dry_run && mode == PagingMode::Ts;
        let mut sends: JoinSet<Result<(), RunError>> = JoinSet::new();
        let mut maps = FuturesOrdered::new();
        // A dry run prints its batches in the order they were read.
        let parallel = if dry_run { 1 } else { map_parallelism() };
        let batch_size = self.pipeline.target.batch_size;
        let mut buffer: Vec<Row> = Vec::new();
        let (mut fetched_all, mut failure, mut interrupted) = (false, None, false);
        loop {
            while failure.is_none() && maps.len() < parallel && (buffer.len() >= batch_size || (fetched_all && !buffer.is_empty())) {
                let batch: Vec<Row> = buffer.drain(..batch_size.min(buffer.len())).collect();
                let n = batch.len() as u64;
                maps.push_back(async move { self.prepare(batch, w, dry_run, claimed).await.map(|e| (e, n)) });
            }
            if failure.is_some() || (fetched_all && buffer.is_empty() && maps.is_empty()) {
                break;
            }
            // The last cursor whose rows are all staged.
            let mut passed = None;
            while marks.front().is_some_and(|(rows, _)| *rows <= staged) {
                passed = marks.pop_front().map(|(_, c)| c);
            }
            if let Some(cursor) = passed.filter(|_| keep_progress)
                && let Err(e) = self.state.set_window_progress(&self.pipeline.name, Some(&WindowProgress { begin: w.begin, end: w.end, cursor }))
            {
                failure = Some(e.into());
            }
            tokio::select! {
                biased;
                // Stopped: read no more, map nothing new; the batches being
                // mapped are in flight: they finish, are staged and sent
                // (bounded by the plugin's deadline).
                () = stopped(&mut stop), if !interrupted => {
                    interrupted = true;
                    fetched_all = true;
                    buffer.clear();
                    fetch.abort();
                }
                Some(done) = sends.join_next(), if !sends.is_empty() => {
                    if let Err(e) = join(done) { failure = Some(e); }
                }
                Some(prepared) = maps.next(), if !maps.is_empty() => match prepared {
                    Ok((entry, n)) => {
                        staged += n;
                        if let Some(entry) = entry && let Err(e) = self.spawn_send(&mut sends, &sem, entry).await {
                            failure = Some(e);
                        }
                    }
                    Err(e) => failure = Some(e),
                },
                fetched = rx.recv(), if !fetched_all && buffer.len() < 2 * batch_size => match fetched {
                    Some(Fetched { rows, cursor }) => {
                        Counters::add(&self.counters.fetched, rows.len() as u64);
                        received += rows.len() as u64;
                        marks.extend(cursor.map(|c| (received, c)));
                        buffer.extend(rows);
                    }
                    None => fetched_all = true,
                },
            }
        }
        // After a failure, a batch mapped but not yet staged is dropped
        // here; its rows are read again by the next run, as the checkpoint
        // stays before them.
        drop(maps);
        if failure.is_none() && !interrupted {
            match fetch.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failure = Some(RunError::Window { window: w.to_string(), cause: e }),
                Err(e) => failure = Some(RunError::Task(e.to_string())),
            }
        } else {
            fetch.abort();
        }
        while let Some(r) = sends.join_next().await {
            if let Err(e) = join(r) {
                failure = failure.or(Some(e));
            }
        }
        match failure {
            Some(e) => Err(e),
            None if interrupted => Ok(Flow::Interrupted),
            None => Ok(Flow::Done),
        }
    }

    /// idCheck, map and stage one batch in the outbox; returns the entry to
    /// send (none when nothing is left to write, or in a dry run, which
    /// prints instead).
    async fn prepare(&self, batch: Vec<Row>, w: Window, dry_run: bool, claimed: &Mutex<HashSet<RecordKey>>) -> Result<Option<OutboxEntry>, RunError> {
        let name = &self.pipeline.name;
        let zone = &self.pipeline.source.request.zone;
        let edges = [crate::time::format_in(w.begin, zone), crate::time::format_in(w.end, zone)];
        // The scheme's beatFlat first: each flat row is a record of its own, idCheck included.
        let request = &self.pipeline.source.request;
        let batch: Vec<Row> = match &request.beat_flat {
            Some(path) => batch.into_iter().flat_map(|r| r.beat_flat(path, &request.id_field)).collect(),
            None => batch,
        };
        let before = batch.len();
        let mut keyed: Vec<(RecordKey, String)> = batch
            .into_iter()
            .filter_map(|r| {
                let (id, version) = r.key();
                let key = RecordKey { id, version };
                // A row modified in the second two windows share is in both: one takes it.
                let taken = edges.contains(&r.version) && !claimed.lock().expect("claim lock").insert(key.clone());
                (!taken).then_some((key, r.raw))
            })
            .collect();
        if self.pipeline.source.request.id_check && !(dry_run && self.include_synced) {
            let keys: Vec<RecordKey> = keyed.iter().map(|k| k.0.clone()).collect();
            let mut handled = self.state.handled(name, &keys)?.into_iter();
            keyed.retain(|_| !handled.next().unwrap_or(false));
        }
        Counters::add(&self.counters.skipped_id_check, (before - keyed.len()) as u64);
        metrics::counter!("ferry_records_total", "outcome" => "skipped_id_check", "pipeline" => name.clone()).increment((before - keyed.len()) as u64);
        let dropped = self.condition(&mut keyed);
        if keyed.is_empty() {
            if !dropped.is_empty() && !dry_run {
                self.state.stage(name, None, &[], &dropped)?;
            }
            return Ok(None);
        }
        let (entry, dead, mut skipped) = self.map(keyed, &w).await?;
        skipped.extend(dropped);
        if dry_run {
            if let Some(show) = &self.shown {
                if let Some(e) = &entry {
                    let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                    body["records"].as_array().into_iter().flatten().for_each(|r| show(DryRunItem::Mapped(r)));
                }
                dead.iter().for_each(|d| show(DryRunItem::Dead(d)));
            }
            return Ok(None);
        }
        self.state.stage(name, entry.as_ref(), &dead, &skipped)?;
        Ok(entry)
    }

    /// Applies the scheme's `condition`: drops what it rejects (returned,
    /// to be marked handled, and logged with the rule) and trims the item
    /// rows it removes from the ones it keeps.
    fn condition(&self, keyed: &mut Vec<(RecordKey, String)>) -> Vec<RecordKey> {
        use crate::source::jushuitan::condition::Verdict;
        let Some(condition) = &self.pipeline.source.request.condition else { return Vec::new() };
        let (mut dropped, mut rules) = (Vec::new(), std::collections::BTreeMap::<String, u64>::new());
        keyed.retain_mut(|(key, raw)| match condition.judge(raw) {
            Verdict::Keep => true,
            Verdict::Trimmed(text) => {
                *raw = text;
                true
            }
            Verdict::Drop(rule) => {
                tracing::debug!(pipeline = %self.pipeline.name, record = %key.id, version = %key.version, "skipped: {rule}");
                *rules.entry(rule).or_default() += 1;
                dropped.push(key.clone());
                false
            }
        });
        for (rule, n) in rules {
            tracing::info!(pipeline = %self.pipeline.name, skipped = n, "records skipped by the scheme's {rule}");
        }
        Counters::add(&self.counters.skipped_condition, dropped.len() as u64);
        metrics::counter!("ferry_records_total", "outcome" => "skipped_condition", "pipeline" => self.pipeline.name.clone()).increment(dropped.len() as u64);
        dropped
    }
}
