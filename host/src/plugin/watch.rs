//! Watches a plugin file and hot-swaps it through the registry's checks
//! whenever it changes on disk.

use super::registry::Registry;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How long a file must stay quiet before it is loaded (editors and
/// `cargo build` write in several steps).
const SETTLE: Duration = Duration::from_millis(300);

/// Keeps watching while alive.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl PluginWatcher {
    /// Watches `path` for `pipeline`. The directory is watched so that a
    /// replace-by-rename is seen too.
    pub fn watch(registry: Arc<Registry>, pipeline: &str, path: &Path) -> notify::Result<Self> {
        let path: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let (tx, rx) = mpsc::channel::<()>();
        let target = path.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(e) = event
                && e.paths.iter().any(|p| p == &target)
                && (e.kind.is_create() || e.kind.is_modify())
            {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let pipeline = pipeline.to_string();
        std::thread::Builder::new()
            .name(format!("ferry-watch-{pipeline}"))
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.recv_timeout(SETTLE).is_ok() {}
                    if let Err(e) = registry.install_file(&pipeline, &path) {
                        tracing::warn!(pipeline, "watched plugin change not applied: {e}");
                    }
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(PluginWatcher { _watcher: watcher })
    }
}
