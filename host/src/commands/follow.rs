//! A cluster worker's plugin versions: it starts with, and follows, the
//! version the cluster put live (a plugin command through any worker, or a
//! file change on one), so every worker maps with the same code.

use super::Engine;
use crate::cluster::Cluster;
use crate::state::StateStore;
use std::collections::HashSet;

/// The version last put live for `pipeline` by any worker, with its bytes.
pub fn live_version(store: &dyn StateStore, pipeline: &str) -> Option<(String, Vec<u8>)> {
    let digest = crate::pipeline::history::last_live(store, pipeline)?;
    let bytes = store.plugin_version(&digest).ok()??;
    Some((digest, bytes))
}

/// Puts in the version another worker put live, once per version (a
/// version this worker refuses is not tried again).
pub(crate) async fn follow_plugins(engine: &Engine, cluster: &Cluster, refused: &mut HashSet<(String, String)>) {
    let live = match cluster.live_digests() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the cluster's live plugin versions: {e}");
            return;
        }
    };
    for (name, digest) in live {
        let Some(h) = engine.pipelines.get(&name) else { continue };
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
