//! The same mapping written in Rust, Python and JavaScript: throughput at
//! batch 100 against native Rust, cold and warm load times, and the linear
//! memory each runtime needs. The Python and JavaScript components come from
//! `scripts/build-plugins.sh`.

use crate::util::{self, Scale, best_of, engine, ms, rate, wasm_throughput};
use ferry::plugin::{EngineOptions, Limits, PluginEngine};
use std::sync::Arc;

/// Prints the per-language table.
pub fn languages(scale: &Scale) {
    if !scale.benching {
        println!("## 4. Plugins in other languages: measured under `--bench` only\n");
        return;
    }
    let orders = ferry_sim::jushuitan::sample_orders(7, scale.orders.min(2_000));
    println!("## 4. The same mapping in Rust, Python and JavaScript ({} orders, batch 100, best of {})\n", orders.len(), scale.rounds);
    println!("| plugin | size | records/s | time vs native | cold load ms | warm load ms | peak linear memory |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (native, n) = best_of(scale.rounds, || util::native(&orders));
    println!("| native Rust (baseline) | | {:.0} | 1.00 | | | |", rate(native, n));
    let dir = ferry_fixtures::polyglot_dir();
    let plugins = [
        ("Rust (wasm)", std::path::PathBuf::from(ferry_fixtures::JUSHUITAN_ORDERS)),
        ("Python (componentize-py)", dir.join("jushuitan_orders_py.wasm")),
        ("JavaScript (componentize-js)", dir.join("jushuitan_orders_js.wasm")),
    ];
    for (label, path) in plugins {
        let Ok(bytes) = std::fs::read(&path) else {
            println!("| {label} | not built: run scripts/build-plugins.sh | | | | | |");
            continue;
        };
        let cold_engine = engine(true, true, true);
        let (cold, _) = best_of(scale.rounds.min(2), || {
            cold_engine.load_bytes(&bytes, label).expect("cold load");
            1
        });
        let cache = tempfile::tempdir().expect("tempdir");
        let cached = Arc::new(PluginEngine::new(EngineOptions { cache_dir: Some(cache.path().to_path_buf()), ..EngineOptions::default() }).expect("engine"));
        let plugin = cached.load_bytes(&bytes, label).expect("fill the cache");
        let (warm, _) = best_of(scale.rounds, || {
            cached.load_bytes(&bytes, label).expect("warm load");
            1
        });
        let (d, n) = best_of(scale.rounds, || wasm_throughput(&plugin, "{}", &orders, 100));
        let peak = plugin.map_batch(&Limits::default(), "{}", &orders[..100.min(orders.len())]).expect("batch").peak_memory_bytes;
        println!(
            "| {label} | {:.1} MB | {:.0} | {:.2} | {:.0} | {:.1} | {:.1} MiB |",
            bytes.len() as f64 / 1e6,
            rate(d, n),
            d.as_secs_f64() / native.as_secs_f64(),
            ms(cold),
            ms(warm),
            peak as f64 / (1 << 20) as f64
        );
    }
    println!();
}
