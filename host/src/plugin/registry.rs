//! The live plugin per pipeline, with atomic hot swap.
//!
//! A new version goes live only after it compiled, linked, described itself
//! with a compatible contract, accepted the pipeline's options and mapped a
//! sample (the pipeline's examples, else the last good batch) without a
//! trap or limit. Batches hold the `Arc<Plugin>` they started with, so
//! in-flight batches finish on the old version while the next starts on
//! the new one.

use super::engine::PluginEngine;
use super::error::PluginError;
use super::limits::Limits;
use super::loaded::{BatchOutput, Plugin};
use arc_swap::ArcSwapOption;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// How many records of the last good batch are kept as the swap sample.
const SAMPLE_RECORDS: usize = 16;

/// One attempt to put a version live.
#[derive(Debug, Clone, Serialize)]
pub struct SwapEvent {
    /// When (RFC 3339).
    pub at: String,
    /// sha256 of the candidate (empty when it could not be read).
    pub digest: String,
    /// `name@version (sha256:...)`, or the origin when it never loaded.
    pub plugin: String,
    /// Whether it went live.
    pub accepted: bool,
    /// Why not, when rejected.
    pub reason: Option<String>,
    /// Where it came from: `file ...`, `plugin command ...`, `undo of ...`.
    pub origin: String,
    /// The digest live before the attempt.
    pub previous: Option<String>,
}

/// Called on every swap attempt with the pipeline, the event and, when it
/// went live, the component bytes (so they can be kept for undo).
pub type SwapRecorder = Arc<dyn Fn(&str, &SwapEvent, Option<&[u8]>) + Send + Sync>;

struct Slot {
    live: ArcSwapOption<Plugin>,
    options: String,
    limits: Limits,
    examples: Vec<String>,
    last_good: Mutex<Vec<String>>,
    install: Mutex<()>,
    history: Mutex<Vec<SwapEvent>>,
}

/// The plugins of every pipeline in this process.
pub struct Registry {
    engine: Arc<PluginEngine>,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    recorder: RwLock<Option<SwapRecorder>>,
}

impl Registry {
    /// An empty registry over an engine.
    pub fn new(engine: Arc<PluginEngine>) -> Self {
        Registry { engine, slots: RwLock::new(HashMap::new()), recorder: RwLock::new(None) }
    }

    /// Sets the hook that persists swap attempts.
    pub fn set_recorder(&self, recorder: SwapRecorder) {
        *self.recorder.write().expect("recorder lock") = Some(recorder);
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// Declares a pipeline: its options (JSON text), limits and example
    /// records for the swap check. Replaces an earlier declaration.
    pub fn register(&self, pipeline: &str, options: String, limits: Limits, examples: Vec<String>) {
        let slot = Slot {
            live: ArcSwapOption::empty(),
            options,
            limits,
            examples,
            last_good: Mutex::new(Vec::new()),
            install: Mutex::new(()),
            history: Mutex::new(Vec::new()),
        };
        self.slots.write().expect("registry lock").insert(pipeline.to_string(), Arc::new(slot));
    }

    fn slot(&self, pipeline: &str) -> Result<Arc<Slot>, PluginError> {
        self.slots.read().expect("registry lock").get(pipeline).cloned().ok_or_else(|| PluginError::NoPlugin(pipeline.into()))
    }

    /// The version live now.
    pub fn live(&self, pipeline: &str) -> Option<Arc<Plugin>> {
        self.slot(pipeline).ok()?.live.load_full()
    }

    /// The pipeline's options and limits.
    pub fn settings(&self, pipeline: &str) -> Option<(String, Limits)> {
        self.slot(pipeline).ok().map(|s| (s.options.clone(), s.limits.clone()))
    }

    /// Every attempt to swap this pipeline's plugin, oldest first.
    pub fn history(&self, pipeline: &str) -> Vec<SwapEvent> {
        self.slot(pipeline).map(|s| s.history.lock().expect("history lock").clone()).unwrap_or_default()
    }

    /// Loads a file and swaps it in if it passes every check.
    pub fn install_file(&self, pipeline: &str, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let origin = format!("file {}", path.display());
        match std::fs::read(path) {
            Ok(bytes) => self.install_bytes(pipeline, &bytes, &origin),
            Err(source) => {
                let err = PluginError::Io { path: path.display().to_string(), source };
                let slot = self.slot(pipeline)?;
                Err(self.reject(pipeline, &slot, String::new(), &origin, err))
            }
        }
    }

    /// Loads bytes and swaps them in if they pass every check.
    pub fn install_bytes(&self, pipeline: &str, bytes: &[u8], origin: &str) -> Result<Arc<Plugin>, PluginError> {
        let slot = self.slot(pipeline)?;
        let _one_at_a_time = slot.install.lock().expect("install lock");
        let digest = super::loaded::digest_of(bytes);
        let checked = self.engine.load_bytes(bytes, origin).and_then(|p| self.check(&slot, &p).map(|()| p));
        let plugin = match checked {
            Ok(p) => p,
            Err(e) => return Err(self.reject(pipeline, &slot, digest, origin, e)),
        };
        let previous = slot.live.load().as_ref().map(|l| l.digest.clone());
        if previous.as_deref() == Some(plugin.digest.as_str()) {
            return Ok(plugin);
        }
        slot.live.store(Some(plugin.clone()));
        tracing::info!(pipeline, plugin = %plugin.label(), origin, "plugin version is live");
        let event = SwapEvent {
            at: jiff::Timestamp::now().to_string(),
            digest: plugin.digest.clone(),
            plugin: plugin.label(),
            accepted: true,
            reason: None,
            origin: origin.to_string(),
            previous,
        };
        self.record(pipeline, &slot, event, Some(bytes));
        Ok(plugin)
    }

    fn record(&self, pipeline: &str, slot: &Slot, event: SwapEvent, bytes: Option<&[u8]>) {
        if let Some(r) = self.recorder.read().expect("recorder lock").as_ref() {
            r(pipeline, &event, bytes);
        }
        slot.history.lock().expect("history lock").push(event);
    }

    fn reject(&self, pipeline: &str, slot: &Slot, digest: String, origin: &str, reason: PluginError) -> PluginError {
        let live = slot.live.load().as_ref().map_or_else(|| "nothing".to_string(), |p| p.label());
        if slot.live.load().is_some() {
            tracing::warn!(pipeline, origin, %live, "plugin version rejected: {reason}");
        } else {
            tracing::debug!(pipeline, origin, "plugin cannot be loaded: {reason}"); // the caller reports it
        }
        let event = SwapEvent {
            at: jiff::Timestamp::now().to_string(),
            digest,
            plugin: origin.to_string(),
            accepted: false,
            reason: Some(reason.to_string()),
            origin: origin.to_string(),
            previous: slot.live.load().as_ref().map(|l| l.digest.clone()),
        };
        self.record(pipeline, slot, event, None);
        PluginError::Rejected { pipeline: pipeline.into(), live, reason: Box::new(reason) }
    }

    fn check(&self, slot: &Slot, plugin: &Plugin) -> Result<(), PluginError> {
        plugin.check_options(&slot.limits, &slot.options)?;
        let sample = if slot.examples.is_empty() { slot.last_good.lock().expect("sample lock").clone() } else { slot.examples.clone() };
        if !sample.is_empty() {
            plugin.map_batch(&slot.limits, &slot.options, &sample)?;
        }
        Ok(())
    }

    /// Maps a batch on the version live when the batch starts.
    pub fn map_batch(&self, pipeline: &str, records: &[String]) -> Result<(Arc<Plugin>, BatchOutput), PluginError> {
        let slot = self.slot(pipeline)?;
        let plugin = slot.live.load_full().ok_or_else(|| PluginError::NoPlugin(pipeline.into()))?;
        let output = plugin.map_batch(&slot.limits, &slot.options, records)?;
        if !records.is_empty() {
            *slot.last_good.lock().expect("sample lock") = records.iter().take(SAMPLE_RECORDS).cloned().collect();
        }
        Ok((plugin, output))
    }
}
