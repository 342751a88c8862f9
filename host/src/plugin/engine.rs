//! The engine-wide part: one wasmtime Engine, the Linker with WASI (nothing
//! inherited) and the host `log` import, an epoch ticker, the disk cache.

use super::bindings::Mapper;
use super::cache::DiskCache;
use super::compile::Activity;
use super::error::PluginError;
use super::limits::{CompileLimit, CompileLimits};
use super::sandbox::StoreData;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled components are cached (keyed by digest and engine
    /// compatibility hash); `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator, so a fresh instance per batch is cheap.
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// Largest linear memory any plugin may be given, in bytes (per-pipeline
    /// `memory_bytes` limits are capped by this).
    pub max_memory_bytes: u64,
    /// Count fuel (needed for the fuel limit).
    pub fuel: bool,
    /// Check the epoch deadline (needed for the wall-clock limit).
    pub epoch: bool,
    /// With pooling: bytes of each linear memory kept resident between
    /// instances and reset with `memset` (only the pages a batch dirtied,
    /// found with Linux's `PAGEMAP_SCAN` where the kernel has it) instead
    /// of `madvise`, which costs page faults on the next batch and
    /// TLB-shootdown interrupts on every core. 0 = always `madvise`.
    pub keep_resident_bytes: usize,
    /// What compiling a component may take, and where it runs.
    pub compile: CompileLimits,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            pooling: true,
            pool_instances: 64,
            max_memory_bytes: 1 << 30,
            fuel: true,
            epoch: true,
            keep_resident_bytes: 8 << 20,
            compile: CompileLimits::default(),
        }
    }
}

/// The engine-wide state shared by every plugin version.
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreData>,
    pub(crate) cache: Option<DiskCache>,
    pub(crate) options: EngineOptions,
    /// Batches being mapped with this engine's plugins (a cold compile
    /// leaves them a core).
    pub(crate) activity: Arc<Activity>,
    /// One gate per digest being compiled, so concurrent loads of the same
    /// component compile it once and the others take it from the disk cache.
    compiling: Mutex<HashMap<String, Weak<Mutex<()>>>>,
    /// Digests a compile limit refused, with why: the same bomb sent again
    /// is refused at once instead of compiled again (bounded; cleared when
    /// full).
    pub(crate) refused: Mutex<HashMap<String, (CompileLimit, String)>>,
    /// Versions loaded and still held somewhere, by digest: pipelines that
    /// load the same component share one (its code, its types, its
    /// pre-instance) instead of one copy each. Weak, so a version no
    /// registry holds any more is freed.
    pub(crate) loaded: Mutex<HashMap<String, Weak<super::Plugin>>>,
}

impl PluginEngine {
    /// Builds the engine; falls back to on-demand allocation when the pool
    /// cannot be reserved (and says so in the log).
    pub fn new(options: EngineOptions) -> Result<Self, PluginError> {
        let engine = match build(&options, options.pooling) {
            Ok(e) => e,
            Err(e) if options.pooling => {
                tracing::warn!("pooling allocator unavailable ({e:#}); using on-demand allocation");
                build(&options, false).map_err(|e| PluginError::Engine(format!("{e:#}")))?
            }
            Err(e) => return Err(PluginError::Engine(format!("{e:#}"))),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        no_waiting(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        Mapper::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        if options.epoch {
            spawn_ticker(&engine);
        }
        let cache = options.cache_dir.clone().map(|dir| DiskCache::new(dir, &engine));
        Ok(PluginEngine {
            engine,
            linker,
            cache,
            options,
            activity: Arc::default(),
            compiling: Mutex::default(),
            refused: Mutex::default(),
            loaded: Mutex::default(),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The gate for compiling `digest`: hold its lock while looking in the
    /// disk cache and compiling.
    pub(crate) fn compile_gate(&self, digest: &str) -> Arc<Mutex<()>> {
        let mut gates = self.compiling.lock().unwrap_or_else(|e| e.into_inner());
        gates.retain(|_, gate| gate.strong_count() > 0);
        if let Some(gate) = gates.get(digest).and_then(Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(Mutex::new(()));
        gates.insert(digest.to_string(), Arc::downgrade(&gate));
        gate
    }
}

/// What a plugin that tries to wait is told (the trap's message).
pub(crate) const NO_WAITING: &str = "plugins may not wait: wasi:io/poll (sleeping, polling) is not offered to mapping plugins, because a wait inside a host call would hold a host thread past the batch's deadline and fuel";

/// The WASI calls that wait (`poll`, `pollable.block`: what a sleep or a
/// blocking read compiles to) trap at once instead. A host call that
/// blocks runs outside wasm, where neither fuel nor the epoch deadline can
/// stop it, so a sleeping plugin would hold a host thread for as long as it
/// liked. Mapping has nothing to wait for.
fn no_waiting(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    for name in ["poll", "[method]pollable.block"] {
        poll.func_new(name, |_, _, _, _| Err(wasmtime::Error::msg(NO_WAITING)))?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

pub(crate) fn build(options: &EngineOptions, pooling: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).consume_fuel(options.fuel).epoch_interruption(options.epoch);
    // `FERRY_WASM_PROFILER=perfmap` writes /tmp/perf-PID.map, so `perf`
    // names plugin functions instead of showing bare addresses.
    if std::env::var("FERRY_WASM_PROFILER").is_ok_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = options.pool_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .max_memories_per_component(4)
            .max_memory_size(options.max_memory_bytes as usize)
            .max_core_instances_per_component(32)
            .max_tables_per_component(16)
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(options.keep_resident_bytes.min(64 << 10))
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config)
}

/// Advances the epoch every tick while the engine lives.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("ferry-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}
