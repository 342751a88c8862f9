//! One batch's way from the plugin's outcomes to an outbox entry, shared
//! by a run and by dead-letter replay so both send the same shape: mapped
//! records in input order, each with the index of its source record, its
//! `id` and the source records kept for replay; what was skipped or failed
//! comes back beside the entry, with its source record.

use super::Pipeline;
use crate::plugin::Outcome;
use crate::state::{OutboxEntry, RecordKey, SourceRecord};

/// What became of one input record.
pub(crate) enum Fate {
    /// Mapped: in the entry.
    Sent,
    /// Mapped to no record at all.
    Empty(RecordKey),
    /// Skipped by the plugin, with the reason.
    Skipped(RecordKey, String),
    /// Failed in the plugin: the reason and the record, for its dead letter.
    Failed(SourceRecord, String),
}

/// A built batch: the outbox entry (none when nothing was mapped) and one
/// fate per input, in order.
pub(crate) struct Batch {
    pub entry: Option<OutboxEntry>,
    pub fates: Vec<Fate>,
}

/// Builds `pipeline`'s batch from `outcomes` (one per source record, in
/// order) of plugin `digest`; `purpose` names the command (`batch`,
/// `replay:…`), `window_end` the window it belongs to, if any. For a
/// target that confirms records by id, a mapped record without one fails.
pub(crate) fn build(
    pipeline: &Pipeline,
    purpose: &str,
    digest: &str,
    window_end: Option<String>,
    mut outcomes: Vec<Outcome>,
    records: Vec<SourceRecord>,
) -> Batch {
    if pipeline.target.kind.confirms_by_id() {
        require_ids(&mut outcomes);
    }
    let mut body = String::from("{\"records\":[");
    let (mut origins, mut record_ids, mut sources, mut fates) = (vec![], vec![], vec![], Vec::with_capacity(records.len()));
    for (outcome, source) in outcomes.into_iter().zip(records) {
        match outcome {
            Outcome::Mapped(recs) if recs.is_empty() => fates.push(Fate::Empty(source.key)),
            Outcome::Mapped(recs) => {
                for r in recs {
                    if !record_ids.is_empty() {
                        body.push(',');
                    }
                    body.push_str(r.get());
                    origins.push(sources.len());
                    record_ids.push(record_id(r.get()));
                }
                sources.push(source);
                fates.push(Fate::Sent);
            }
            Outcome::Skip(reason) => fates.push(Fate::Skipped(source.key, reason)),
            Outcome::Error { field, message } => {
                let reason = match field {
                    Some(f) => format!("mapping error in `{f}`: {message}"),
                    None => format!("mapping error: {message}"),
                };
                fates.push(Fate::Failed(source, reason));
            }
        }
    }
    if record_ids.is_empty() {
        return Batch { entry: None, fates };
    }
    body.push_str("]}");
    let command = OutboxEntry::command_id(&pipeline.name, purpose, &body);
    Batch { entry: Some(OutboxEntry { command, body, origins, record_ids, sources, plugin: digest.to_string(), window_end }), fates }
}

/// Turns each mapped outcome with a record that has no `id` into a record
/// error: a target that confirms records by id could never confirm it.
fn require_ids(outcomes: &mut [Outcome]) {
    for outcome in outcomes {
        let Outcome::Mapped(records) = outcome else { continue };
        if let Some(i) = records.iter().position(|r| record_id(r.get()).is_none()) {
            *outcome = Outcome::Error {
                field: Some("id".into()),
                message: format!("plugin output record {i} has no `id` (the target confirms each record by its id)"),
            };
        }
    }
}

/// The `id` of a mapped record, as text (none when absent or null).
pub(crate) fn record_id(json: &str) -> Option<String> {
    let [id] = crate::fields::top_level(json, ["id"]);
    id.filter(|v| !v.is_null()).map(crate::fields::text)
}
