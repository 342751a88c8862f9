//! Timing helpers shared by the benchmark sections.

use ferry::plugin::{EngineOptions, Limits, Plugin, PluginEngine};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much work each section does.
pub struct Scale {
    pub orders: usize,
    pub rounds: usize,
    /// `--bench` (quick or full), not the smoke run under `cargo test`.
    pub benching: bool,
    /// `--quick`.
    pub quick: bool,
}

/// The best wall time of `rounds` runs, and what the last run returned.
pub fn best_of<F: FnMut() -> usize>(rounds: usize, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed());
    }
    (best, n)
}

/// Items per second.
pub fn rate(d: Duration, n: usize) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// An engine with the given sandbox switches and no disk cache.
pub fn engine(pooling: bool, fuel: bool, epoch: bool) -> Arc<PluginEngine> {
    engine_with(EngineOptions { pooling, fuel, epoch, ..EngineOptions::default() })
}

/// An engine with these options.
pub fn engine_with(options: EngineOptions) -> Arc<PluginEngine> {
    Arc::new(PluginEngine::new(options).expect("engine"))
}

/// Maps every order through `plugin` in batches of `batch`; returns the outcome count.
pub fn wasm_throughput(plugin: &Plugin, options: &str, orders: &[String], batch: usize) -> usize {
    let limits = Limits::default();
    let mut out = 0;
    for chunk in orders.chunks(batch) {
        out += plugin.map_batch(&limits, options, chunk).expect("batch").outcomes.len();
    }
    out
}

/// The native baseline: the same mapping code compiled for the host, batch 100.
pub fn native(orders: &[String]) -> usize {
    orders.chunks(100).map(|c| ferry_sdk::run_batch::<jushuitan_orders::JushuitanOrders>("{}", c).expect("native").len()).sum()
}

/// The native baseline through `map` and a `Value` tree per order (no fast path).
pub fn native_tree(orders: &[String]) -> usize {
    let mapping: jushuitan_orders::JushuitanOrders = ferry_sdk::prepare("{}").expect("options");
    orders.iter().map(|o| usize::from(matches!(ferry_sdk::map_value(&mapping, o), ferry_sdk::Outcome::Mapped(_)))).sum()
}

/// A `kB` line of `/proc/{pid}/status` (`VmRSS:`, `VmHWM:`); `None` when
/// the process is gone or a zombie (which has no memory lines).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
