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

pub use contain::{COMPILE_FAILED_EXIT, compile_child};
pub use engine::{EngineOptions, PluginEngine};
pub use error::PluginError;
pub use limits::{CompileLimit, CompileLimits, LimitKind, Limits};
pub use loaded::{BatchOutput, Outcome, Plugin, PluginInfo, digest_of};
pub use output::cut as cut_text;
pub use pool::PluginPool;
pub use registry::{Registry, SwapEvent, SwapRecorder};
pub use sandbox::LogLine;
pub use watch::PluginWatcher;

/// The contract version this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Whether a plugin's contract version can run here, as `wit/mapping.wit`
/// promises: a later minor only adds interfaces, so a plugin runs on a host
/// of the same major version whose minor is the same or later (a 0.1.y
/// plugin on every 0.x host, x >= 1); a plugin for a later minor may need
/// what this host lacks, and another major is another contract.
pub fn contract_compatible(found: &str) -> bool {
    compatible(CONTRACT_VERSION, found)
}

fn compatible(host: &str, found: &str) -> bool {
    let parse = |v: &str| -> Option<(u32, u32, u32)> {
        let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    };
    match (parse(host), parse(found)) {
        (Some((major, minor, _)), Some((m, n, _))) => m == major && n <= minor && (major > 0 || n >= 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn a_plugin_runs_on_its_minor_and_every_later_one() {
        for (host, found, ok) in [
            ("0.1.0", "0.1.0", true),
            ("0.1.0", "0.1.7", true),
            ("0.3.0", "0.1.0", true),
            ("0.3.2", "0.3.9", true),
            ("0.1.0", "0.2.0", false),
            ("0.3.0", "0.0.9", false),
            ("0.3.0", "1.0.0", false),
            ("1.2.0", "1.0.4", true),
            ("1.2.0", "1.3.0", false),
            ("0.1.0", "0.1", false),
            ("0.1.0", "0.1.0.1", false),
            ("0.1.0", "zero", false),
        ] {
            assert_eq!(compatible(host, found), ok, "plugin {found} on host {host}");
        }
    }
}
