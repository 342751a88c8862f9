//! Command history: commands are kept in their pipeline's state store (so
//! they survive restarts) and listed newest first, filtered and paged.

use super::{CommandError, Engine, PipelineHandle};
use crate::state::{CommandFilter, CommandRecord};
use jiff::Timestamp;
use std::sync::Arc;

/// Filters and paging of a listing (times as the store sorts them).
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// Only this pipeline's commands.
    pub pipeline: Option<String>,
    /// Only commands in this status.
    pub status: Option<String>,
    /// Created at or after.
    pub since: Option<String>,
    /// Created before.
    pub until: Option<String>,
    /// Page size.
    pub limit: u64,
    /// Entries skipped.
    pub offset: u64,
}

/// The tenant's commands of `kind` matching `q`: one page and the total.
pub(crate) fn list(engine: &Engine, tenant: &str, kind: &str, q: &ListQuery) -> Result<(Vec<CommandRecord>, u64), CommandError> {
    let handles: Vec<&Arc<PipelineHandle>> = match &q.pipeline {
        Some(p) => vec![engine.pipeline_for(p, tenant)?],
        None => engine.pipelines.values().filter(|h| h.tenant == tenant).collect(),
    };
    let mut all = Vec::new();
    for h in handles {
        let filter = CommandFilter {
            kind: kind.into(),
            pipeline: Some(h.pipeline.name.clone()),
            tenant: Some(tenant.to_string()),
            status: q.status.clone(),
            since: q.since.clone(),
            until: q.until.clone(),
        };
        all.extend(h.state.commands(&filter)?);
    }
    all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    let total = all.len() as u64;
    Ok((all.into_iter().skip(q.offset as usize).take(q.limit as usize).collect(), total))
}

/// A command as its pipeline's state store keeps it.
pub(crate) fn record(
    handle: &PipelineHandle,
    kind: &str,
    id: &str,
    tenant: &str,
    created: Timestamp,
    status: &str,
    record: serde_json::Value,
) -> CommandRecord {
    CommandRecord {
        id: id.to_string(),
        kind: kind.to_string(),
        pipeline: handle.pipeline.name.clone(),
        tenant: tenant.to_string(),
        created: crate::time::sortable(created),
        status: status.to_string(),
        record,
    }
}

/// Stores a command in its pipeline's state store; failures are logged
/// (the command itself goes on).
pub(crate) fn persist(handle: &PipelineHandle, kind: &str, id: &str, tenant: &str, created: Timestamp, status: &str, record: serde_json::Value) {
    let c = self::record(handle, kind, id, tenant, created, status, record);
    if let Err(e) = handle.state.put_command(&c) {
        tracing::warn!(pipeline = %handle.pipeline.name, command = id, "cannot store the command history: {e}");
    }
}

/// Forgets commands older than the retention, in every pipeline.
pub(crate) fn prune(engine: &Engine) {
    let before = crate::time::sortable(Timestamp::now() - jiff::SignedDuration::try_from(engine.history).unwrap_or_default());
    for h in engine.pipelines.values() {
        match h.state.prune_commands(&before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(pipeline = %h.pipeline.name, "forgot {n} commands older than the history retention"),
            Err(e) => tracing::warn!(pipeline = %h.pipeline.name, "cannot prune the command history: {e}"),
        }
        h.state.rest();
    }
}
