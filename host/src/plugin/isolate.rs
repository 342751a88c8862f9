//! One bad record costs one dead letter, not its batch-mates'.
//!
//! A batch that fails as a whole (a record over `max_input_bytes`, a trap,
//! memory, output size, a refused batch) is mapped again in halves, down
//! to the records that fail alone; those become record errors with the
//! plugin's reason, the rest map normally. At most `2n - 2` extra calls for
//! `n` records (every record found, even when all are bad); each of those
//! failures is cheap (a trap, a refused allocation, a size check). Fuel and
//! the wall-clock deadline are not split on: each half could burn the
//! whole budget again, so a batch that runs out of either fails whole.

use super::error::PluginError;
use super::limits::LimitKind;
use super::loaded::{BatchOutput, Outcome, Plugin};
use super::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Whether mapping the halves of a batch can tell its bad records apart.
fn splittable(e: &PluginError) -> bool {
    match e {
        PluginError::Limit { limit, .. } => !matches!(limit, LimitKind::Deadline | LimitKind::Fuel),
        PluginError::Trap { .. } | PluginError::Batch { .. } => true,
        _ => false,
    }
}

struct Split<'a> {
    registry: &'a Registry,
    pipeline: &'a str,
    records: &'a [String],
    plugin: Option<Arc<Plugin>>,
    outcomes: Vec<Outcome>,
    fuel_used: u64,
    elapsed: Duration,
    peak_memory_bytes: u64,
}

impl Split<'_> {
    fn fail(&mut self, at: usize, len: usize, message: String) {
        for slot in &mut self.outcomes[at..at + len] {
            *slot = Outcome::Error { field: None, message: message.clone() };
        }
    }

    /// Maps `records[at..at + len]`, whose batch failed with `failed`. Each
    /// call maps one node of a binary tree over the batch, so splitting `n`
    /// records down to singles takes at most `2n - 2` calls.
    fn halves(&mut self, at: usize, len: usize, failed: &PluginError) -> Result<(), PluginError> {
        if len == 1 {
            self.fail(at, len, format!("the plugin failed on this record alone: {failed}"));
            return Ok(());
        }
        let half = len / 2;
        for (start, n) in [(at, half), (at + half, len - half)] {
            match self.registry.map_batch(self.pipeline, &self.records[start..start + n]) {
                Ok((plugin, out)) => {
                    self.fuel_used += out.fuel_used;
                    self.elapsed += out.elapsed;
                    self.peak_memory_bytes = self.peak_memory_bytes.max(out.peak_memory_bytes);
                    for (slot, outcome) in self.outcomes[start..start + n].iter_mut().zip(out.outcomes) {
                        *slot = outcome;
                    }
                    self.plugin.get_or_insert(plugin);
                }
                Err(e @ PluginError::NoPlugin(_)) => return Err(e),
                Err(e) if splittable(&e) => self.halves(start, n, &e)?,
                Err(e) => self.fail(start, n, e.to_string()),
            }
        }
        Ok(())
    }
}

impl Registry {
    /// Maps a batch like [`Registry::map_batch`]; when the batch fails as a
    /// whole for a reason a record can cause, maps its halves until the
    /// records that fail alone are found (see the module doc).
    pub fn map_isolating(&self, pipeline: &str, records: &[String]) -> Result<(Arc<Plugin>, BatchOutput), PluginError> {
        let failed = match self.map_batch(pipeline, records) {
            Ok(done) => return Ok(done),
            Err(e) if records.len() <= 1 || !splittable(&e) => return Err(e),
            Err(e) => e,
        };
        tracing::info!(pipeline, records = records.len(), "the batch failed as a whole ({failed}); mapping its halves to find the records at fault");
        let mut split = Split {
            registry: self,
            pipeline,
            records,
            plugin: None,
            // Every slot is written by `halves`.
            outcomes: vec![Outcome::Error { field: None, message: failed.to_string() }; records.len()],
            fuel_used: 0,
            elapsed: Duration::ZERO,
            peak_memory_bytes: 0,
        };
        split.halves(0, records.len(), &failed)?;
        let plugin = match split.plugin.take().or_else(|| self.live(pipeline)) {
            Some(p) => p,
            None => return Err(failed),
        };
        Ok((
            plugin,
            BatchOutput {
                outcomes: split.outcomes,
                fuel_used: split.fuel_used,
                elapsed: split.elapsed,
                logs: Vec::new(),
                dropped_log_bytes: 0,
                peak_memory_bytes: split.peak_memory_bytes,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_a_record_can_cause_cheaply_are_split() {
        let limit = |limit| PluginError::Limit { plugin: "p".into(), limit, detail: String::new() };
        assert!(splittable(&limit(LimitKind::InputBytes)) && splittable(&limit(LimitKind::Memory)) && splittable(&limit(LimitKind::OutputBytes)));
        assert!(!splittable(&limit(LimitKind::Fuel)) && !splittable(&limit(LimitKind::Deadline)));
        assert!(splittable(&PluginError::Trap { plugin: "p".into(), message: "m".into(), stderr: String::new() }));
        assert!(!splittable(&PluginError::NoPlugin("p".into())));
    }
}
