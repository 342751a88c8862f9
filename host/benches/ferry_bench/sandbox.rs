//! Section 2, Sandbox cost: a fresh instance per batch, pooling and fuel/epoch on and off.

use crate::util::{Scale, best_of, engine_with};
use ferry::plugin::{EngineOptions, Limits};

/// Prints the fresh-instance table.
pub fn sandbox(scale: &Scale) {
    let calls = scale.orders.min(2000);
    println!("## 2. Sandbox cost: a fresh instance per batch ({calls} empty batches, best of {})\n", scale.rounds);
    println!("| engine | µs per fresh instance + call | vs pooling, fuel, epoch |\n|---|---:|---:|");
    let mut base = None;
    let keep = EngineOptions::default().keep_resident_bytes;
    for (label, pooling, fuel, epoch, keep_resident_bytes) in [
        ("pooling, fuel, epoch (default)", true, true, true, keep),
        ("pooling, fuel, epoch, madvise reset (no memory kept resident)", true, true, true, 0),
        ("pooling, no fuel, no epoch", true, false, false, keep),
        ("on-demand, fuel, epoch", false, true, true, keep),
        ("on-demand, no fuel, no epoch", false, false, false, keep),
    ] {
        let e = engine_with(EngineOptions { pooling, fuel, epoch, keep_resident_bytes, ..EngineOptions::default() });
        let plugin = e.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
        let (d, n) =
            best_of(scale.rounds, || (0..calls).map(|_| plugin.map_batch(&Limits::default(), "{}", &[]).expect("empty batch").outcomes.len() + 1).sum());
        let us = d.as_secs_f64() * 1e6 / n as f64;
        let b = *base.get_or_insert(us);
        println!("| {label} | {us:.1} | {:.2} |", us / b);
    }
    println!();
}
