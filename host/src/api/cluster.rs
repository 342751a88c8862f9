//! `ferry serve` in a cluster, beside the sync commands (whose shared queue
//! and dispatcher are in `sync::shared` and `sync::dispatch`): a worker
//! starts with, and follows, the plugin version the cluster put live, and
//! answers `GET /cluster`.

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::cluster::{Cluster, LeaseView, WorkerView};
use crate::state::StateStore;
use axum::Json;
use axum::extract::State;
use std::collections::HashSet;
use std::sync::Arc;

/// The version last put live for `pipeline` by any worker, with its bytes.
pub fn live_version(store: &dyn StateStore, pipeline: &str) -> Option<(String, Vec<u8>)> {
    let digest = crate::pipeline::history::last_live(store, pipeline)?;
    let bytes = store.plugin_version(&digest).ok()??;
    Some((digest, bytes))
}

/// Puts in the version another worker put live, once per version (a
/// version this worker refuses is not tried again).
pub(crate) async fn follow_plugins(state: &AppState, cluster: &Cluster, refused: &mut HashSet<(String, String)>) {
    let live = match cluster.live_digests() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the cluster's live plugin versions: {e}");
            return;
        }
    };
    for (name, digest) in live {
        let Some(h) = state.pipelines.get(&name) else { continue };
        if h.registry.live(&name).is_some_and(|p| p.digest == digest) || refused.contains(&(name.clone(), digest.clone())) {
            continue;
        }
        let Ok(Some(bytes)) = h.state.plugin_version(&digest) else { continue };
        let (registry, pipeline, origin) = (h.registry.clone(), name.clone(), format!("cluster (live version sha256:{digest})"));
        match tokio::task::spawn_blocking(move || registry.install_bytes(&pipeline, &bytes, &origin)).await {
            Ok(Ok(p)) => tracing::info!(pipeline = %name, plugin = %p.label(), "following the cluster's live plugin version"),
            Ok(Err(e)) => {
                tracing::warn!(pipeline = %name, digest, "the cluster's live plugin version is refused here: {e}");
                refused.insert((name, digest));
            }
            Err(e) => tracing::warn!(pipeline = %name, "plugin install task failed: {e}"),
        }
    }
}

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
    let c = state.cluster.as_ref().ok_or_else(|| ApiError::not_found("this server is not part of a cluster (its serve file has no [cluster])"))?;
    let (workers, leases) = c.view().map_err(|e| ApiError::internal(e.to_string()))?;
    let leases = leases.into_iter().filter(|l| state.pipelines.get(&l.pipeline).is_some_and(|h| h.tenant == tenant.0)).collect();
    Ok(Json(ClusterView { worker: c.worker.clone(), lease_seconds: c.lease.as_secs_f64(), workers, leases }))
}
