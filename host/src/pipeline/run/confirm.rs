//! What the target said, record by record, before anything counts as
//! delivered.
//!
//! - `deliver` sends an outbox entry. A command the target refuses whole
//!   (HTTP 400, 413, 422) is split in halves, each staged in the outbox
//!   under its own deterministic UUID before the parent is confirmed, down
//!   to the records the target refuses alone: those go to dead letters
//!   with the target's reason, the rest is delivered. One bad record never
//!   blocks the pipeline.
//! - `confirm` reconciles the target's answer with what was sent: a failed
//!   task names its record by `recordId` (text or number). When the answer
//!   does not add up (`success + failed` is not `total`, `total` is not
//!   the number of records sent, the failed tasks listed are not the count,
//!   or a failure names no record of the command), only records a task
//!   names as succeeded count as delivered; every other record goes to
//!   dead letters with the reason. Ferry's own count always adds up.

use super::RunError;
use crate::pipeline::summary::Counters;
use crate::sink::{Delivery, Sink, SinkError};
use crate::state::{DeadLetter, OutboxEntry, StateStore, TaskCount};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Instant;

/// Statuses of a whole command refused for what it holds.
fn refused_for_content(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

/// Sends `entry` (and, if the target refuses it whole, its halves) and
/// confirms what the target says.
pub async fn deliver(sink: &Sink, state: &dyn StateStore, c: &Counters, pipeline: &str, entry: OutboxEntry) -> Result<(), RunError> {
    let mut stack = vec![entry];
    while let Some(entry) = stack.pop() {
        let started = Instant::now();
        let sent = sink.send(&entry).await;
        metrics::histogram!("ferry_batch_send_seconds", "pipeline" => pipeline.to_string()).record(started.elapsed().as_secs_f64());
        match sent {
            Ok(delivery) => confirm(state, c, pipeline, &entry, &delivery)?,
            Err(SinkError::Rejected { status, body, .. }) if refused_for_content(status) => {
                match halves(pipeline, &entry) {
                    Some([a, b]) => {
                        tracing::info!(pipeline, command = %entry.command, status, "the target refused the command whole; sending its halves to find the records at fault");
                        state.stage(pipeline, Some(&a), &[], &[])?;
                        state.stage(pipeline, Some(&b), &[], &[])?;
                        // The parent's records are the halves' now: it keeps no record ids.
                        let parent = OutboxEntry { record_ids: Vec::new(), ..entry.clone() };
                        state.confirm(pipeline, &parent, TaskCount::default(), &[])?;
                        stack.push(b);
                        stack.push(a);
                    }
                    None => {
                        let reason = format!("target refused the command holding only this record (HTTP {status}): {body}");
                        let n = entry.record_ids.len() as u64;
                        let dead = dead_letters(&entry, (0..entry.record_ids.len()).map(|i| (i, reason.clone())));
                        record(state, c, pipeline, &entry, TaskCount { failed: n, success: 0, total: n }, dead, false)?;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The entry's source records in two halves, each with its mapped records,
/// under UUIDs made from the parent's and the half's body.
fn halves(pipeline: &str, entry: &OutboxEntry) -> Option<[OutboxEntry; 2]> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        records: Vec<&'a RawValue>,
    }
    if entry.sources.len() < 2 {
        return None;
    }
    let body: Body = serde_json::from_str(&entry.body).ok()?;
    if body.records.len() != entry.origins.len() {
        return None;
    }
    let mid = entry.sources.len() / 2;
    let half = |side: &str, range: std::ops::Range<usize>| {
        let picked: Vec<usize> = (0..entry.origins.len()).filter(|i| range.contains(&entry.origins[*i])).collect();
        let texts: Vec<&str> = picked.iter().map(|i| body.records[*i].get()).collect();
        let text = format!("{{\"records\":[{}]}}", texts.join(","));
        OutboxEntry {
            command: OutboxEntry::command_id(pipeline, &format!("split:{}:{side}", entry.command), &text),
            body: text,
            origins: picked.iter().map(|i| entry.origins[*i] - range.start).collect(),
            record_ids: picked.iter().map(|i| entry.record_ids[*i].clone()).collect(),
            sources: entry.sources[range].to_vec(),
            plugin: entry.plugin.clone(),
            window_end: entry.window_end.clone(),
        }
    };
    Some([half("a", 0..mid), half("b", mid..entry.sources.len())])
}

/// Dead letters for the mapped records at `at`, each with its reason.
fn dead_letters(entry: &OutboxEntry, at: impl Iterator<Item = (usize, String)>) -> Vec<DeadLetter> {
    let now = Timestamp::now().to_string();
    at.map(|(i, reason)| {
        let source = &entry.sources[entry.origins[i]];
        DeadLetter {
            id: 0,
            key: source.key.clone(),
            reason,
            plugin: entry.plugin.clone(),
            raw: source.raw.clone(),
            command: Some(entry.command),
            created: now.clone(),
        }
    })
    .collect()
}

/// What the target's answer says of each record sent: the failed ones with
/// the reason, and Ferry's count (which always adds up).
fn reconcile(entry: &OutboxEntry, d: &Delivery) -> (Vec<(usize, String)>, TaskCount) {
    let n = entry.record_ids.len();
    let mut failed: Vec<Option<String>> = vec![None; n];
    let mut unmatched = Vec::new();
    for task in &d.failed {
        let at = (0..n).find(|&i| failed[i].is_none() && task.record_id.is_some() && entry.record_ids[i] == task.record_id);
        match at {
            Some(i) => failed[i] = Some(format!("target refused record {}: {}", task.record_id.as_deref().unwrap_or_default(), task.message)),
            None => unmatched.push(task),
        }
    }
    let count = d.count;
    let mut doubts = Vec::new();
    if !count.adds_up(n as u64) {
        doubts.push(format!(
            "its taskCount (success {}, failed {}, total {}) does not add up for the {n} records sent",
            count.success, count.failed, count.total
        ));
    }
    if d.succeeded.is_some() && count.failed != d.failed.len() as u64 {
        doubts.push(format!("its taskCount says {} failed but it lists {} failed tasks", count.failed, d.failed.len()));
    }
    if !unmatched.is_empty() {
        let named: Vec<String> = unmatched.iter().take(5).map(|t| t.record_id.clone().unwrap_or_else(|| "(no recordId)".into())).collect();
        doubts.push(format!("{} failed task(s) name no record of the command ({})", unmatched.len(), named.join(", ")));
    }
    if !doubts.is_empty() {
        let why = doubts.join("; ");
        tracing::warn!(command = %entry.command, "the target's answer does not account for every record: {why}; records it does not name as succeeded go to dead letters");
        // Each success task confirms one record with its id.
        let mut ok: HashMap<&str, usize> = HashMap::new();
        for id in d.succeeded.iter().flatten() {
            *ok.entry(id.as_str()).or_default() += 1;
        }
        for (i, slot) in failed.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let confirmed = entry.record_ids[i].as_deref().and_then(|id| ok.get_mut(id)).filter(|k| **k > 0).map(|k| *k -= 1).is_some();
            if !confirmed {
                *slot = Some(format!("not confirmed by the target: {why}"));
            }
        }
    }
    let dead: Vec<(usize, String)> = failed.into_iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r))).collect();
    let count = TaskCount { failed: dead.len() as u64, success: (n - dead.len()) as u64, total: n as u64 };
    (dead, count)
}

/// Records a delivery: dead letters for what the target did not take,
/// then the confirm.
pub fn confirm(state: &dyn StateStore, c: &Counters, pipeline: &str, entry: &OutboxEntry, delivery: &Delivery) -> Result<(), RunError> {
    let (failed, count) = reconcile(entry, delivery);
    let dead = dead_letters(entry, failed.into_iter());
    record(state, c, pipeline, entry, count, dead, delivery.replayed)
}

fn record(
    state: &dyn StateStore,
    c: &Counters,
    pipeline: &str,
    entry: &OutboxEntry,
    count: TaskCount,
    dead: Vec<DeadLetter>,
    replayed: bool,
) -> Result<(), RunError> {
    state.confirm(pipeline, entry, count, &dead)?;
    metrics::counter!("ferry_records_total", "outcome" => "delivered", "pipeline" => pipeline.to_string()).increment(count.success);
    metrics::counter!("ferry_records_total", "outcome" => "failed_target", "pipeline" => pipeline.to_string()).increment(dead.len() as u64);
    metrics::counter!("ferry_target_commands_total", "replayed" => if replayed { "yes" } else { "no" }).increment(1);
    Counters::add(&c.commands, 1);
    Counters::add(&c.delivered, count.success);
    Counters::add(&c.failed_target, dead.len() as u64);
    if replayed {
        Counters::add(&c.replayed, 1);
    }
    if let Ok(mut t) = c.tasks.lock()
        && t.len() < 1000
    {
        t.push((entry.command.to_string(), count));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FailedTask;
    use crate::state::{RecordKey, SourceRecord};

    fn entry(n: usize) -> OutboxEntry {
        let records: Vec<String> = (0..n).map(|i| format!(r#"{{"id":"{i}"}}"#)).collect();
        OutboxEntry {
            command: uuid::Uuid::nil(),
            body: format!("{{\"records\":[{}]}}", records.join(",")),
            origins: (0..n).collect(),
            record_ids: (0..n).map(|i| Some(i.to_string())).collect(),
            sources: (0..n).map(|i| SourceRecord { key: RecordKey { id: i.to_string(), version: "v".into() }, raw: "{}".into() }).collect(),
            plugin: "p".into(),
            window_end: None,
        }
    }

    fn task(id: Option<&str>) -> FailedTask {
        FailedTask { record_id: id.map(String::from), message: "no".into() }
    }

    fn delivery(success: u64, failed: Vec<FailedTask>, succeeded: Option<Vec<&str>>, total: u64) -> Delivery {
        let count = TaskCount { failed: failed.len() as u64, success, total };
        Delivery { count, failed, succeeded: succeeded.map(|s| s.into_iter().map(String::from).collect()), replayed: false }
    }

    #[test]
    fn an_answer_that_adds_up_is_taken_as_it_is() {
        let (dead, count) = reconcile(&entry(3), &delivery(2, vec![task(Some("1"))], Some(vec!["0", "2"]), 3));
        assert_eq!((dead.iter().map(|d| d.0).collect::<Vec<_>>(), count), (vec![1], TaskCount { failed: 1, success: 2, total: 3 }));
    }

    #[test]
    fn failures_the_target_does_not_attribute_never_count_as_success() {
        // recordId missing: only the records named as succeeded are delivered.
        let (dead, count) = reconcile(&entry(4), &delivery(3, vec![task(None)], Some(vec!["0", "1", "3"]), 4));
        assert_eq!((dead.iter().map(|d| d.0).collect::<Vec<_>>(), count.success), (vec![2], 3));
        assert!(dead[0].1.contains("name no record"), "{}", dead[0].1);
        // An unknown recordId, and no success tasks listed: all are in doubt.
        let (dead, count) = reconcile(&entry(2), &delivery(1, vec![task(Some("99"))], None, 2));
        assert_eq!((dead.len(), count), (2, TaskCount { failed: 2, success: 0, total: 2 }));
    }

    #[test]
    fn counts_that_do_not_add_up_are_reconciled_record_by_record() {
        let mut d = delivery(3, vec![], Some(vec!["0", "1"]), 3);
        d.count.success = 5;
        let (dead, count) = reconcile(&entry(3), &d);
        assert_eq!((dead.iter().map(|d| d.0).collect::<Vec<_>>(), count), (vec![2], TaskCount { failed: 1, success: 2, total: 3 }));
        assert!(dead[0].1.contains("does not add up"), "{}", dead[0].1);
        let mut d = delivery(1, vec![task(Some("0"))], Some(vec!["1"]), 3);
        d.count.failed = 2;
        let (dead, _) = reconcile(&entry(3), &d);
        assert_eq!(dead.iter().map(|d| d.0).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn halves_keep_each_source_with_its_records() {
        let mut e = entry(3);
        // Source 1 maps to two records.
        e.body = r#"{"records":[{"id":"0"},{"id":"1a"},{"id":"1b"},{"id":"2"}]}"#.into();
        e.origins = vec![0, 1, 1, 2];
        e.record_ids = ["0", "1a", "1b", "2"].iter().map(|s| Some(s.to_string())).collect();
        let [a, b] = halves("p", &e).unwrap();
        assert_eq!((a.sources.len(), a.origins.clone(), a.body.as_str()), (1, vec![0], r#"{"records":[{"id":"0"}]}"#));
        assert_eq!((b.sources.len(), b.origins.clone()), (2, vec![0, 0, 1]));
        assert_eq!(b.record_ids, vec![Some("1a".into()), Some("1b".into()), Some("2".into())]);
        assert_ne!(a.command, b.command);
        assert_eq!(halves("p", &e).unwrap()[0].command, a.command, "deterministic");
        assert!(halves("p", &entry(1)).is_none());
    }
}
