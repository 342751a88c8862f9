//! Watches plugin files and hot-swaps each through its registry's checks
//! whenever it changes on disk.
//!
//! One watcher serves the whole process: one inotify instance and one
//! thread, however many pipelines are served. (A watcher per pipeline cost
//! two threads and an inotify instance each, and past the kernel's
//! per-user limit of instances, 128 by default, later pipelines could not
//! watch their file at all.) Each pipeline subscribes to its file's path;
//! the directory is watched, so a replace-by-rename is seen too, and a
//! change is applied once the file has been quiet for [`SETTLE`].

use super::registry::Registry;
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// How long a file must stay quiet before it is loaded (editors and
/// `cargo build` write in several steps).
const SETTLE: Duration = Duration::from_millis(300);

/// A pipeline watching its plugin file.
struct Subscriber {
    id: u64,
    registry: Arc<Registry>,
    pipeline: String,
}

/// The process's watcher and who listens to which file.
struct Hub {
    watcher: Mutex<notify::RecommendedWatcher>,
    /// Subscribers by watched file.
    files: Mutex<HashMap<PathBuf, Vec<Subscriber>>>,
    /// How many subscriptions each watched directory serves.
    dirs: Mutex<HashMap<PathBuf, usize>>,
    next: AtomicU64,
}

impl Hub {
    /// The process's hub, started on first use.
    fn get() -> notify::Result<&'static Hub> {
        static HUB: OnceLock<Result<Hub, String>> = OnceLock::new();
        let hub = HUB.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<PathBuf>();
            let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(e) = event
                    && (e.kind.is_create() || e.kind.is_modify())
                {
                    for p in e.paths {
                        let _ = tx.send(p);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
            std::thread::Builder::new().name("ferry-watch".into()).spawn(move || settle(rx)).map_err(|e| e.to_string())?;
            Ok(Hub { watcher: Mutex::new(watcher), files: Mutex::default(), dirs: Mutex::default(), next: AtomicU64::new(1) })
        });
        hub.as_ref().map_err(|e| notify::Error::generic(e))
    }

    /// Installs the file at `path` for each of its subscribers.
    fn apply(&self, path: &Path) {
        let subscribers: Vec<(Arc<Registry>, String)> =
            self.files.lock().expect("watch lock").get(path).map(|s| s.iter().map(|s| (s.registry.clone(), s.pipeline.clone())).collect()).unwrap_or_default();
        for (registry, pipeline) in subscribers {
            if let Err(e) = registry.install_file(&pipeline, path) {
                tracing::warn!(pipeline, "watched plugin change not applied: {e}");
            }
        }
    }
}

/// The hub's one thread: a path that changed is applied once it has been
/// quiet for [`SETTLE`] (each change of it starts the wait again).
fn settle(rx: mpsc::Receiver<PathBuf>) {
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let wait = pending.values().min().map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(path) => {
                pending.insert(path, Instant::now() + SETTLE);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let due: Vec<PathBuf> = pending.iter().filter(|(_, at)| **at <= now).map(|(p, _)| p.clone()).collect();
        for path in due {
            pending.remove(&path);
            if let Ok(hub) = Hub::get() {
                hub.apply(&path);
            }
        }
    }
}

/// Keeps watching while alive; dropping it ends the subscription.
pub struct PluginWatcher {
    id: u64,
    path: PathBuf,
    dir: PathBuf,
}

impl PluginWatcher {
    /// Watches `path` for `pipeline`, through the process's one watcher.
    pub fn watch(registry: Arc<Registry>, pipeline: &str, path: &Path) -> notify::Result<Self> {
        let hub = Hub::get()?;
        let path: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        {
            let mut dirs = hub.dirs.lock().expect("watch lock");
            let count = dirs.entry(dir.clone()).or_insert(0);
            if *count == 0 {
                hub.watcher.lock().expect("watcher lock").watch(&dir, RecursiveMode::NonRecursive).inspect_err(|_| {
                    dirs.remove(&dir);
                })?;
            }
            *dirs.get_mut(&dir).expect("just counted") += 1;
        }
        let id = hub.next.fetch_add(1, Ordering::Relaxed);
        hub.files.lock().expect("watch lock").entry(path.clone()).or_default().push(Subscriber { id, registry, pipeline: pipeline.to_string() });
        Ok(PluginWatcher { id, path, dir })
    }
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        let Ok(hub) = Hub::get() else { return };
        let mut files = hub.files.lock().expect("watch lock");
        if let Some(subs) = files.get_mut(&self.path) {
            subs.retain(|s| s.id != self.id);
            if subs.is_empty() {
                files.remove(&self.path);
            }
        }
        drop(files);
        let mut dirs = hub.dirs.lock().expect("watch lock");
        if let Some(count) = dirs.get_mut(&self.dir) {
            *count -= 1;
            if *count == 0 {
                dirs.remove(&self.dir);
                let _ = hub.watcher.lock().expect("watcher lock").unwatch(&self.dir);
            }
        }
    }
}
