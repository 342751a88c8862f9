//! 3. Loading a new version: bare compile, cold load, warm load from the disk cache.

use crate::util::{Scale, best_of, engine, ms};
use ferry::plugin::{EngineOptions, PluginEngine};
use std::sync::Arc;

/// Prints the load-time table.
pub fn hot_swap(scale: &Scale) {
    println!("## 3. Loading a new version (best of {})\n", scale.rounds);
    println!("| path | ms | vs bare Component::new |\n|---|---:|---:|");
    let bytes = std::fs::read(ferry_fixtures::JUSHUITAN_ORDERS).expect("plugin bytes");
    let plain = engine(true, true, true);
    let (bare, _) = best_of(scale.rounds, || {
        wasmtime::component::Component::new(plain.engine(), &bytes).expect("compile");
        1
    });
    println!("| bare Component::new | {:.1} | 1.00 |", ms(bare));
    let (cold, _) = best_of(scale.rounds, || {
        plain.load_bytes(&bytes, "bench").expect("cold load");
        1
    });
    println!("| cold: compile + link + describe | {:.1} | {:.2} |", ms(cold), cold.as_secs_f64() / bare.as_secs_f64());
    let dir = tempfile::tempdir().expect("tempdir");
    let cached = Arc::new(PluginEngine::new(EngineOptions { cache_dir: Some(dir.path().to_path_buf()), ..EngineOptions::default() }).expect("engine"));
    cached.load_bytes(&bytes, "bench").expect("fill the cache");
    let (warm, _) = best_of(scale.rounds, || {
        cached.load_bytes(&bytes, "bench").expect("warm load");
        1
    });
    println!("| warm: from the disk cache + link + describe | {:.1} | {:.2} |\n", ms(warm), warm.as_secs_f64() / bare.as_secs_f64());
}

