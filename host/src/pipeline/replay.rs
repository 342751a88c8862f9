//! `dlq replay`: dead letters are mapped again with the plugin live now and
//! written like any batch (outbox first, deterministic UUID, confirm);
//! the ones that go through leave the table.

use super::batch::Fate;
use super::run::{RunError, Runner, deliver};
use crate::state::SourceRecord;
use serde::Serialize;

/// Which dead letters a replay takes (all when empty).
#[derive(Debug, Default, Clone)]
pub struct ReplayFilter {
    /// Record ids (the source id, e.g. the `o_id`); any of them.
    pub ids: Vec<String>,
    /// Text the reason contains (case-insensitive).
    pub reason: Option<String>,
}

impl ReplayFilter {
    fn takes(&self, d: &crate::state::DeadLetter) -> bool {
        (self.ids.is_empty() || self.ids.contains(&d.key.id)) && self.reason.as_ref().is_none_or(|r| d.reason.to_lowercase().contains(&r.to_lowercase()))
    }
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Dead letters at the start.
    pub total: usize,
    /// Those the filter took.
    pub selected: usize,
    /// Dead letters in the table after the replay (not taken, or failing again).
    pub left: usize,
    /// Delivered (or deliberately skipped) and removed.
    pub resolved: usize,
    /// Still failing in the plugin; kept.
    pub still_failing: usize,
    /// Refused again by the target; kept with the new reason.
    pub refused_again: u64,
}

impl Runner {
    /// Re-maps and re-sends the dead letters `filter` takes.
    pub async fn replay_dead_letters(&self, filter: &ReplayFilter) -> Result<ReplayReport, RunError> {
        let name = self.pipeline.name.clone();
        let all = self.state.dead_letters(&name)?;
        let total = all.len();
        let dead: Vec<_> = all.into_iter().filter(|d| filter.takes(d)).collect();
        let mut report = ReplayReport { total, selected: dead.len(), ..ReplayReport::default() };
        for chunk in dead.chunks(self.pipeline.target.batch_size) {
            let texts: Vec<String> = chunk.iter().map(|d| d.raw.clone()).collect();
            let registry = self.registry.clone();
            let n = name.clone();
            let tenant = self.pipeline.tenant.as_deref().unwrap_or("default");
            let (plugin, out) = crate::plugin::PluginPool::global().run(tenant, move || registry.map_isolating(&n, &texts)).await.map_err(RunError::Task)??;
            let ids: Vec<String> = chunk.iter().map(|d| d.id.to_string()).collect();
            let records = chunk.iter().map(|d| SourceRecord { key: d.key.clone(), raw: d.raw.clone() }).collect();
            let batch = super::batch::build(&self.pipeline, &format!("replay:{}", ids.join(",")), &plugin.digest, None, out.outcomes, records);
            let mut resolved = Vec::new();
            for (fate, d) in batch.fates.iter().zip(chunk) {
                match fate {
                    Fate::Failed(..) => report.still_failing += 1,
                    Fate::Sent | Fate::Empty(_) | Fate::Skipped(..) => resolved.push(d.id),
                }
            }
            if let Some(entry) = batch.entry {
                self.state.stage(&name, Some(&entry), &[], &[])?;
                let sink = self.sink().ok_or_else(|| RunError::Task("no sink".into()))?;
                let before = self.counters.failed_target.load(std::sync::atomic::Ordering::Relaxed);
                deliver(&sink, &*self.state, &self.counters, &name, entry).await?;
                report.refused_again += self.counters.failed_target.load(std::sync::atomic::Ordering::Relaxed) - before;
            }
            self.state.remove_dead_letters(&name, &resolved)?;
            report.resolved += resolved.len();
        }
        report.resolved -= report.refused_again as usize;
        report.left = self.state.dead_letter_count(&name)? as usize;
        Ok(report)
    }
}
