//! Command history: commands are kept in their pipeline's state store (so
//! they survive restarts) and listed newest first, filtered and paged.

use super::auth::Tenant;
use super::error::ApiError;
use super::{AppState, PipelineHandle};
use crate::state::{CommandFilter, CommandRecord};
use jiff::Timestamp;
use std::sync::Arc;

/// Filters and paging of a listing.
#[derive(Debug, Default)]
pub struct ListQuery {
    pipeline: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: u64,
    /// Entries skipped.
    pub offset: u64,
}

/// Parses `?pipeline=&status=&since=&until=&limit=&offset=`.
pub fn parse_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery { limit: 50, ..ListQuery::default() };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let number = |what: &str| v.parse::<u64>().map_err(|_| ApiError::bad(format!("{what}: expected a whole number, got `{v}`")));
        let time = |what: &str| crate::time::parse(&v).map(crate::time::sortable).map_err(|e| ApiError::bad(format!("{what}: {e}")));
        match k.as_ref() {
            "pipeline" => q.pipeline = Some(v.to_string()),
            "status" => q.status = Some(v.to_string()),
            "since" => q.since = Some(time("since")?),
            "until" => q.until = Some(time("until")?),
            "limit" => q.limit = number("limit")?.clamp(1, 500),
            "offset" => q.offset = number("offset")?,
            _ => {}
        }
    }
    Ok(q)
}

/// The tenant's commands of `kind` matching `q`: one page and the total.
pub fn list(state: &AppState, tenant: &Tenant, kind: &str, q: &ListQuery) -> Result<(Vec<CommandRecord>, u64), ApiError> {
    let handles: Vec<&Arc<PipelineHandle>> = match &q.pipeline {
        Some(p) => vec![state.pipeline_for(p, tenant)?],
        None => state.pipelines.values().filter(|h| h.tenant == tenant.0).collect(),
    };
    let mut all = Vec::new();
    for h in handles {
        let filter = CommandFilter {
            kind: kind.into(),
            pipeline: Some(h.pipeline.name.clone()),
            tenant: Some(tenant.0.clone()),
            status: q.status.clone(),
            since: q.since.clone(),
            until: q.until.clone(),
        };
        all.extend(h.state.commands(&filter).map_err(|e| ApiError::internal(e.to_string()))?);
    }
    all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    let total = all.len() as u64;
    Ok((all.into_iter().skip(q.offset as usize).take(q.limit as usize).collect(), total))
}

/// A command as its pipeline's state store keeps it.
pub fn record(handle: &PipelineHandle, kind: &str, id: &str, tenant: &str, created: Timestamp, status: &str, record: serde_json::Value) -> CommandRecord {
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
pub fn persist(handle: &PipelineHandle, kind: &str, id: &str, tenant: &str, created: Timestamp, status: &str, record: serde_json::Value) {
    let c = self::record(handle, kind, id, tenant, created, status, record);
    if let Err(e) = handle.state.put_command(&c) {
        tracing::warn!(pipeline = %handle.pipeline.name, command = id, "cannot store the command history: {e}");
    }
}

/// Forgets commands older than the retention, in every pipeline.
pub fn prune(state: &AppState) {
    let before = crate::time::sortable(Timestamp::now() - jiff::SignedDuration::try_from(state.history).unwrap_or_default());
    for h in state.pipelines.values() {
        match h.state.prune_commands(&before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(pipeline = %h.pipeline.name, "forgot {n} commands older than the history retention"),
            Err(e) => tracing::warn!(pipeline = %h.pipeline.name, "cannot prune the command history: {e}"),
        }
    }
}
