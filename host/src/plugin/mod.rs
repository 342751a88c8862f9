//! The plugin runtime: mapping plugins are WebAssembly components of the
//! `ferry:mapping` world, run sandboxed, one fresh instance per batch.
//!
//! State is split three ways: engine-wide ([`PluginEngine`]: Engine, Linker,
//! epoch ticker, disk cache), per plugin version ([`Plugin`]: compiled and
//! pre-linked once), per call (a Store with fuel, deadline and memory limit,
//! built in [`Plugin::map_batch`]). Hot swap ([`Registry`]) replaces the
//! per-version value atomically and touches nothing else.

mod cache;
mod compile;
mod contain;
mod engine;
mod error;
mod isolate;
mod limits;
mod loaded;
mod output;
mod pool;
mod registry;
mod sandbox;
mod watch;

/// Host bindings of `wit/mapping.wit`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "mapper",
        path: "../wit",
    });
}

pub use contain::{CompileLimit, CompileLimits, compile_child};
pub use engine::{EngineOptions, PluginEngine};
pub use error::PluginError;
pub use limits::{LimitKind, Limits};
pub use loaded::{BatchOutput, Outcome, Plugin, PluginInfo, digest_of};
pub use output::cut as cut_text;
pub use pool::PluginPool;
pub use registry::{Registry, SwapEvent, SwapRecorder};
pub use sandbox::LogLine;
pub use watch::PluginWatcher;

/// The contract version this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Whether a plugin's contract version can run here: same major and minor
/// (0.x minors only add interfaces, so 0.1.y plugins run on any 0.1 host).
pub fn contract_compatible(found: &str) -> bool {
    let mut ours = CONTRACT_VERSION.split('.');
    let mut theirs = found.trim().split('.');
    ours.next() == theirs.next() && ours.next() == theirs.next() && theirs.next().is_some_and(|p| p.parse::<u32>().is_ok())
}
