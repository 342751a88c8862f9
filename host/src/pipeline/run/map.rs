//! Mapping one batch: the plugin runs over the records in the tenant's
//! share of the plugin pool, and its outcomes become the outbox entry to
//! send, the dead letters (a record the plugin failed, or every record of
//! a batch that failed in the plugin) and the keys skipped, with their
//! counters and metrics.

use super::{RunError, Runner};
use crate::pipeline::batch::Fate;
use crate::pipeline::summary::{Counters, PluginUsed};
use crate::plugin::PluginError;
use crate::source::jushuitan::Window;
use crate::state::{DeadLetter, OutboxEntry, RecordKey, SourceRecord};
use jiff::Timestamp;

impl Runner {
    /// Runs the plugin over a batch of (key, JSON text); returns the outbox
    /// entry, the dead letters and the skipped keys.
    pub(super) async fn map(&self, keyed: Vec<(RecordKey, String)>, w: &Window) -> Result<(Option<OutboxEntry>, Vec<DeadLetter>, Vec<RecordKey>), RunError> {
        let name = self.pipeline.name.clone();
        let (keys, raws): (Vec<RecordKey>, Vec<String>) = keyed.into_iter().unzip();
        let registry = self.registry.clone();
        // The texts go to the blocking task and come back, not copied.
        let tenant = self.pipeline.tenant.as_deref().unwrap_or("default");
        let (result, raws) =
            crate::plugin::PluginPool::global().run(tenant, move || (registry.map_isolating(&name, &raws), raws)).await.map_err(RunError::Task)?;
        metrics::counter!("ferry_records_total", "outcome" => "fetched", "pipeline" => self.pipeline.name.clone()).increment(raws.len() as u64);
        let now = Timestamp::now().to_string();
        let c = &self.counters;
        let dead_letter = |key: &RecordKey, raw: &str, reason: String, plugin: &str| DeadLetter {
            id: 0,
            key: key.clone(),
            reason,
            plugin: plugin.to_string(),
            raw: raw.to_string(),
            command: None,
            created: now.clone(),
        };
        let (plugin, out) = match result {
            Err(e @ PluginError::NoPlugin(_)) => return Err(e.into()),
            Err(e) => {
                let digest = self.registry.live(&self.pipeline.name).map(|p| p.digest.clone()).unwrap_or_default();
                tracing::warn!(pipeline = %self.pipeline.name, "batch of {} records failed in the plugin: {e}", keys.len());
                Counters::add(&c.failed_mapping, keys.len() as u64);
                metrics::counter!("ferry_plugin_traps_total", "pipeline" => self.pipeline.name.clone(), "limit" => e.stopped_by()).increment(1);
                metrics::counter!("ferry_records_total", "outcome" => "failed_mapping", "pipeline" => self.pipeline.name.clone()).increment(keys.len() as u64);
                // Each record keeps a short reason; the whole error is in the log once.
                let reason = batch_reason(keys.len(), &e);
                let dead = keys.iter().zip(&raws).map(|(k, raw)| dead_letter(k, raw, reason.clone(), &digest)).collect();
                return Ok((None, dead, Vec::new()));
            }
            Ok(x) => x,
        };
        *self.plugin_used.lock().expect("plugin lock") =
            Some(PluginUsed { name: plugin.info.name.clone(), version: plugin.info.version.clone(), digest: plugin.digest.clone() });
        Counters::add(&c.fuel, out.fuel_used);
        Counters::add(&c.plugin_us, out.elapsed.as_micros() as u64);
        metrics::histogram!("ferry_plugin_batch_seconds", "pipeline" => self.pipeline.name.clone()).record(out.elapsed.as_secs_f64());
        metrics::counter!("ferry_plugin_fuel_total").increment(out.fuel_used);
        let records = keys.into_iter().zip(raws).map(|(key, raw)| SourceRecord { key, raw }).collect();
        let batch = crate::pipeline::batch::build(&self.pipeline, "batch", &plugin.digest, Some(w.end.to_string()), out.outcomes, records);
        let (mut dead, mut skipped) = (vec![], vec![]);
        for fate in batch.fates {
            match fate {
                Fate::Sent => {}
                Fate::Empty(key) => skipped.push(key),
                Fate::Skipped(key, reason) => {
                    tracing::debug!(record = %key.id, "skipped by the plugin: {reason}");
                    Counters::add(&c.skipped_plugin, 1);
                    skipped.push(key);
                }
                Fate::Failed(source, reason) => {
                    Counters::add(&c.failed_mapping, 1);
                    metrics::counter!("ferry_records_total", "outcome" => "failed_mapping", "pipeline" => self.pipeline.name.clone()).increment(1);
                    dead.push(dead_letter(&source.key, &source.raw, reason, &plugin.digest));
                }
            }
        }
        if let Some(e) = &batch.entry {
            Counters::add(&c.mapped, e.sources.len() as u64);
            Counters::add(&c.outputs, e.record_ids.len() as u64);
        }
        Ok((batch.entry, dead, skipped))
    }
}

/// The longest part of a batch's error copied into each of its records'
/// dead letters.
const BATCH_REASON: usize = 512;

/// A record's dead-letter reason when its whole batch failed in the plugin.
fn batch_reason(records: usize, e: &PluginError) -> String {
    crate::plugin::cut_text(format!("its batch of {records} records failed in the plugin: {e}"), BATCH_REASON)
}
