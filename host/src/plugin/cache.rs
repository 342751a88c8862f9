//! Compiled components cached on disk, keyed by the component's sha256 and
//! the engine's compatibility hash, so a restart does not recompile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(root: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        DiskCache { dir: root.join(format!("engine-{:016x}", h.finish())) }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// A cached compilation of `digest`, if present and loadable.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `put` below from `Component::serialize`
        // of the component with this digest, for an engine with this
        // compatibility hash; wasmtime checks the header again on load.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compile cache entry: {e:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compilation; failures only cost a recompile later.
    pub fn put(&self, digest: &str, component: &Component) {
        match component.serialize() {
            Ok(bytes) => self.put_bytes(digest, &bytes),
            Err(e) => tracing::warn!(dir = %self.dir.display(), "cannot write compile cache: {e:#}"),
        }
    }

    /// Stores a serialized compilation (what `Component::serialize` or
    /// `Engine::precompile_component` gave).
    pub fn put_bytes(&self, digest: &str, bytes: &[u8]) {
        let result = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join(format!(".{digest}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, self.path(digest))?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), "cannot write compile cache: {e:#}");
        }
    }
}
