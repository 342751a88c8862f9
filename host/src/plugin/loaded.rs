//! One plugin version: compiled, pre-linked and described once; run with a
//! fresh sandboxed instance per batch.

use super::bindings::{Mapper, MapperPre, exports::ferry::mapping::mapping as wit, ferry::mapping::types as wit_types};
use super::compile::Activity;
use super::engine::{EPOCH_TICK, PluginEngine};
use super::error::PluginError;
use super::limits::{LimitKind, Limits};
use super::sandbox::{LogLine, StoreData};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Engine, Store, Trap};

/// What a plugin says about itself (`describe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Machine name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The contract version it was built for.
    pub contract: String,
}

/// The result for one input record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Zero or more mapped records (validated JSON).
    Mapped(Vec<Box<RawValue>>),
    /// Deliberately not delivered.
    Skip(String),
    /// The record is bad.
    Error {
        /// The field at fault, if the plugin named one.
        field: Option<String>,
        /// What was wrong.
        message: String,
    },
}

/// A batch's outcomes and what it cost.
#[derive(Debug)]
pub struct BatchOutput {
    /// One per input, in order.
    pub outcomes: Vec<Outcome>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time of the call, instantiation included.
    pub elapsed: Duration,
    /// Guest log/stdout/stderr lines kept.
    pub logs: Vec<LogLine>,
    /// Guest output dropped past the cap, in bytes.
    pub dropped_log_bytes: u64,
    /// The largest linear memory the batch's instance grew to, in bytes
    /// (what `memory_bytes` must allow for this plugin and batch).
    pub peak_memory_bytes: u64,
}

/// A loaded plugin version.
pub struct Plugin {
    /// From `describe`.
    pub info: PluginInfo,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// Time to compile (or load from the disk cache).
    pub compile_time: Duration,
    /// Whether the compiled code came from the disk cache.
    pub from_cache: bool,
    pre: MapperPre<StoreData>,
    engine: Engine,
    fuel: bool,
    epoch: bool,
    max_memory: u64,
    /// The engine's count of batches being mapped.
    activity: Arc<Activity>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// sha256 of bytes, lower-case hex.
pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_header(bytes: &[u8], origin: &str) -> Result<(), PluginError> {
    let not = |reason: &str| Err(PluginError::NotComponent { origin: origin.into(), reason: reason.into() });
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return not("no `\\0asm` header (is this the right file?)");
    }
    match &bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => not("it is a core WebAssembly module; build plugins with `cargo build --target wasm32-wasip2`"),
        v => not(&format!("unknown WebAssembly version/layer {v:02x?}")),
    }
}

impl PluginEngine {
    /// Loads a plugin file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io { path: path.display().to_string(), source })?;
        self.load_bytes(&bytes, &path.display().to_string())
    }

    /// Compiles (or loads from the disk cache), links and describes a plugin.
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<Arc<Plugin>, PluginError> {
        check_header(bytes, origin)?;
        super::contain::check_size(&self.options.compile, bytes.len(), origin)?;
        let digest = digest_of(bytes);
        if let Some(shared) = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).and_then(std::sync::Weak::upgrade) {
            return Ok(shared);
        }
        let gate = self.compile_gate(&digest);
        let compiling = gate.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let cached = self.cache.as_ref().and_then(|c| c.get(&self.engine, &digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(c) => c,
            None => self.compile(bytes, &digest, origin)?,
        };
        let compile_time = started.elapsed();
        drop(compiling);
        let wrong = |e: wasmtime::Error| PluginError::WrongWorld { origin: origin.into(), reason: format!("{e:#}") };
        let pre = MapperPre::new(self.linker.instantiate_pre(&component).map_err(wrong)?).map_err(wrong)?;
        let mut plugin = Plugin {
            info: PluginInfo { name: "?".into(), version: "?".into(), description: String::new(), contract: String::new() },
            digest,
            size: bytes.len(),
            compile_time,
            from_cache,
            pre,
            engine: self.engine.clone(),
            fuel: self.options.fuel,
            epoch: self.options.epoch,
            max_memory: self.options.max_memory_bytes,
            activity: self.activity.clone(),
        };
        let limits = Limits { timeout: Duration::from_secs(5), ..Limits::default() };
        let (mut store, mapper) = plugin.instantiate(&limits)?;
        let info = mapper.ferry_mapping_mapping().call_describe(&mut store).map_err(|e| plugin.classify(e, &store, &limits))?;
        use super::output::{MAX_NAME, MAX_TEXT, cut};
        plugin.info = PluginInfo {
            name: cut(info.name, MAX_NAME),
            version: cut(info.version, MAX_NAME),
            description: cut(info.description, MAX_TEXT),
            contract: cut(info.contract, MAX_NAME),
        };
        if !super::contract_compatible(&plugin.info.contract) {
            return Err(PluginError::Contract { plugin: plugin.label(), found: plugin.info.contract.clone(), expected: super::CONTRACT_VERSION.into() });
        }
        let plugin = Arc::new(plugin);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.retain(|_, w| w.strong_count() > 0);
        loaded.insert(plugin.digest.clone(), Arc::downgrade(&plugin));
        Ok(plugin)
    }
}

/// Refused digests an engine remembers.
const REFUSED_KEPT: usize = 1024;

impl PluginEngine {
    /// A cold compile: in the helper process under the compile limits when
    /// there is one, else here; the result goes to the disk cache.
    fn compile(&self, bytes: &[u8], digest: &str, origin: &str) -> Result<Component, PluginError> {
        let failed = |e: wasmtime::Error| PluginError::Compile { origin: origin.into(), reason: format!("{e:#}") };
        let Some(helper) = &self.options.compile.helper else {
            let c = super::compile::beside_batches(&self.activity, || Component::new(&self.engine, bytes)).map_err(failed)?;
            if let Some(cache) = &self.cache {
                cache.put(digest, &c);
            }
            return Ok(c);
        };
        let flags = super::contain::EngineFlags { fuel: self.options.fuel, epoch: self.options.epoch };
        let threads = super::compile::threads_beside_batches(&self.activity);
        let refused = || self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((limit, detail)) = refused().get(digest).cloned() {
            return Err(PluginError::CompileLimit { origin: origin.into(), limit, detail: format!("{detail} (refused before, not compiled again)") });
        }
        let artifact = match super::contain::in_child(helper, &self.options.compile, &flags, bytes, threads, origin) {
            Ok(artifact) => artifact,
            Err(PluginError::CompileLimit { origin, limit, detail }) => {
                let mut refused = refused();
                if refused.len() >= REFUSED_KEPT {
                    refused.clear();
                }
                refused.insert(digest.to_string(), (limit, detail.clone()));
                return Err(PluginError::CompileLimit { origin, limit, detail });
            }
            Err(e) => return Err(e),
        };
        // SAFETY: the artifact is what `Engine::precompile_component` of this
        // binary wrote for an engine of the same settings; wasmtime checks its
        // header and compatibility again here.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(failed)?;
        if let Some(cache) = &self.cache {
            cache.put_bytes(digest, &artifact);
        }
        Ok(component)
    }
}

impl Plugin {
    /// `name@version (sha256:0123456789ab)`.
    pub fn label(&self) -> String {
        format!("{}@{} (sha256:{})", self.info.name, self.info.version, &self.digest[..12.min(self.digest.len())])
    }

    fn instantiate(&self, limits: &Limits) -> Result<(Store<StoreData>, Mapper), PluginError> {
        let memory = limits.memory_bytes.min(self.max_memory) as usize;
        let mut store = Store::new(&self.engine, StoreData::new(memory, limits.max_log_bytes as usize));
        store.limiter(|d| &mut d.limiter);
        if self.fuel {
            let fuel = if limits.fuel == 0 { u64::MAX } else { limits.fuel };
            store.set_fuel(fuel).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        }
        if self.epoch {
            let ticks = limits.timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
            store.set_epoch_deadline(ticks);
            store.epoch_deadline_trap();
        }
        let mapper = self.pre.instantiate(&mut store).map_err(|e| self.classify(e, &store, limits))?;
        Ok((store, mapper))
    }

    /// Turns a wasmtime error into the limit or trap it was.
    fn classify(&self, err: wasmtime::Error, store: &Store<StoreData>, limits: &Limits) -> PluginError {
        if let Some(e) = self.memory_refused(store, limits) {
            return e;
        }
        let plugin = self.label();
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::Limit { plugin, limit: LimitKind::Fuel, detail: format!("fuel = {} units per batch, all used", limits.fuel) },
            Some(Trap::Interrupt) => PluginError::Limit {
                plugin,
                limit: LimitKind::Deadline,
                detail: format!("timeout = {} per batch, exceeded", humantime::format_duration(limits.timeout)),
            },
            _ => {
                let (lines, _) = store.data().take_log();
                let stderr: Vec<String> = lines.into_iter().filter(|l| l.level == "stderr").map(|l| l.message).collect();
                PluginError::Trap { plugin, message: format!("{err:#}"), stderr: stderr.join("\n") }
            }
        }
    }

    /// The memory-limit error, when the limiter refused growth in this store.
    fn memory_refused(&self, store: &Store<StoreData>, limits: &Limits) -> Option<PluginError> {
        let asked = store.data().limiter.refused?;
        Some(PluginError::Limit {
            plugin: self.label(),
            limit: LimitKind::Memory,
            detail: format!("memory_bytes = {}, the plugin asked for {asked} bytes", limits.memory_bytes.min(self.max_memory)),
        })
    }

    /// Asks the plugin to validate the pipeline's options.
    pub fn check_options(&self, limits: &Limits, options: &str) -> Result<(), PluginError> {
        let (mut store, mapper) = self.instantiate(limits)?;
        match mapper.ferry_mapping_mapping().call_check_options(&mut store, options) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(PluginError::Options { plugin: self.label(), reason: super::output::cut(reason, super::output::MAX_TEXT) }),
            Err(e) => Err(self.classify(e, &store, limits)),
        }
    }

    /// Maps one batch in a fresh sandboxed instance.
    pub fn map_batch(&self, limits: &Limits, options: &str, records: &[String]) -> Result<BatchOutput, PluginError> {
        let input: u64 = records.iter().map(|r| r.len() as u64).sum();
        if input > limits.max_input_bytes {
            return Err(PluginError::Limit {
                plugin: self.label(),
                limit: LimitKind::InputBytes,
                detail: format!("max_input_bytes = {}, the batch has {input} bytes", limits.max_input_bytes),
            });
        }
        let started = Instant::now();
        let _mapping = self.activity.batch();
        let (mut store, mapper) = self.instantiate(limits)?;
        let fuel_before = if self.fuel { store.get_fuel().unwrap_or(0) } else { 0 };
        let result = mapper.ferry_mapping_mapping().call_map_batch(&mut store, options, records);
        let raw = match result {
            Ok(Ok(outcomes)) => outcomes,
            // A runtime that catches its own allocation failure (JavaScript
            // reports "out of memory") still hit the memory limit.
            Ok(Err(reason)) => {
                let reason = super::output::cut(reason, super::output::MAX_TEXT);
                return Err(self.memory_refused(&store, limits).unwrap_or_else(|| PluginError::Batch { plugin: self.label(), reason }));
            }
            Err(e) => return Err(self.classify(e, &store, limits)),
        };
        let fuel_used = if self.fuel { fuel_before.saturating_sub(store.get_fuel().unwrap_or(0)) } else { 0 };
        if raw.len() != records.len() {
            return Err(PluginError::Batch {
                plugin: self.label(),
                reason: format!("returned {} outcomes for {} records (the contract is one per record)", raw.len(), records.len()),
            });
        }
        let output: u64 = raw.iter().map(outcome_bytes).sum();
        if output > limits.max_output_bytes {
            return Err(PluginError::Limit {
                plugin: self.label(),
                limit: LimitKind::OutputBytes,
                detail: format!("max_output_bytes = {}, the batch produced {output} bytes", limits.max_output_bytes),
            });
        }
        let (logs, dropped_log_bytes) = store.data().take_log();
        let label = self.label();
        for line in &logs {
            tracing::info!(target: "ferry::plugin", plugin = %label, level = line.level, "{}", line.message);
        }
        if dropped_log_bytes > 0 {
            tracing::warn!(target: "ferry::plugin", plugin = %label, "guest output capped: {dropped_log_bytes} bytes dropped");
        }
        Ok(BatchOutput {
            outcomes: raw.into_iter().map(convert).collect(),
            fuel_used,
            elapsed: started.elapsed(),
            logs,
            dropped_log_bytes,
            peak_memory_bytes: store.data().limiter.peak as u64,
        })
    }
}

fn outcome_bytes(o: &wit_types::Outcome) -> u64 {
    match o {
        wit_types::Outcome::Mapped(v) => v.iter().map(|s| s.len() as u64).sum(),
        wit_types::Outcome::Skip(s) => s.len() as u64,
        wit_types::Outcome::Error(e) => (e.message.len() + e.field.as_ref().map_or(0, String::len)) as u64,
    }
}

fn convert(o: wit::Outcome) -> Outcome {
    use super::output::{MAX_NAME, MAX_TEXT, cut};
    match o {
        wit_types::Outcome::Mapped(records) => {
            let mut out = Vec::with_capacity(records.len());
            for (i, text) in records.into_iter().enumerate() {
                if let Err(why) = super::output::check_record(&text) {
                    return Outcome::Error { field: None, message: format!("plugin output record {i} {why}") };
                }
                match RawValue::from_string(text) {
                    Ok(v) => out.push(v),
                    Err(e) => return Outcome::Error { field: None, message: format!("plugin output record {i} is not JSON: {e}") },
                }
            }
            Outcome::Mapped(out)
        }
        wit_types::Outcome::Skip(reason) => Outcome::Skip(cut(reason, MAX_TEXT)),
        wit_types::Outcome::Error(e) => Outcome::Error { field: e.field.map(|f| cut(f, MAX_NAME)), message: cut(e.message, MAX_TEXT) },
    }
}
