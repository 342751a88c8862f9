//! `GET /cluster`: the workers of the cluster this server is part of,
//! their heartbeats, and the leases on the caller's pipelines.

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::cluster::{LeaseView, WorkerView};
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// `GET /cluster`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The worker that answered.
    pub worker: String,
    /// Lease time in seconds.
    pub lease_seconds: f64,
    /// Every worker that joined, with its heartbeat.
    pub workers: Vec<WorkerView>,
    /// Leases held on the caller's pipelines.
    pub leases: Vec<LeaseView>,
}

/// `GET /cluster`: the workers, their heartbeats and the leases on the
/// caller's pipelines.
#[utoipa::path(get, path = "/cluster",
    responses((status = 200, body = ClusterView), (status = 401, body = super::model::ErrorBody), (status = 404, body = super::model::ErrorBody, description = "not part of a cluster")),
    security(("bearer" = [])))]
pub async fn view(State(state): State<Arc<AppState>>, axum::Extension(tenant): axum::Extension<Tenant>) -> Result<Json<ClusterView>, ApiError> {
    let c = state.engine.cluster().ok_or_else(|| ApiError::not_found("this server is not part of a cluster (its serve file has no [cluster])"))?;
    let (workers, leases) = c.view()?;
    let leases = leases.into_iter().filter(|l| state.engine.pipeline_for(&l.pipeline, &tenant.0).is_ok()).collect();
    Ok(Json(ClusterView { worker: c.worker.clone(), lease_seconds: c.lease.as_secs_f64(), workers, leases }))
}
