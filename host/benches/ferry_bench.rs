//! Ferry's benchmarks, each printed as a ratio against a baseline run in the
//! same process. `cargo bench -p ferry --bench ferry_bench` runs them in
//! full; `-- --quick` shortens them; under `cargo test` they run as a smoke
//! test of a few iterations. Results go in BENCHMARKS.md.

use ferry::plugin::{EngineOptions, Limits, Plugin, PluginEngine};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Scale {
    orders: usize,
    rounds: usize,
}

fn best_of<F: FnMut() -> usize>(rounds: usize, mut f: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed());
    }
    (best, n)
}

fn rate(d: Duration, n: usize) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn engine(pooling: bool, fuel: bool, epoch: bool) -> Arc<PluginEngine> {
    Arc::new(PluginEngine::new(EngineOptions { pooling, fuel, epoch, ..EngineOptions::default() }).expect("engine"))
}

fn wasm_throughput(plugin: &Plugin, options: &str, orders: &[String], batch: usize) -> usize {
    let limits = Limits::default();
    let mut out = 0;
    for chunk in orders.chunks(batch) {
        out += plugin.map_batch(&limits, options, chunk).expect("batch").outcomes.len();
    }
    out
}

const DECLARATIVE_OPTIONS: &str = r#"{"fields": [
  {"to": "id", "from": "o_id", "format": "string", "required": true},
  {"to": "io_id", "from": "io_id"}, {"to": "so_id", "from": "so_id"}, {"to": "shop_id", "from": "shop_id"},
  {"to": "status", "from": "status"}, {"to": "modified", "from": "modified"}, {"to": "name", "from": "receiver_name"},
  {"to": "date", "from": "io_date", "format": "date", "pattern": "%Y%m%d"},
  {"to": "amount", "sum": {"over": "items", "multiply": ["qty", "sale_price"]}, "format": "amount"}
]}"#;

fn mapping(scale: &Scale) {
    let orders = ferry::sim::jushuitan::sample_orders(7, scale.orders);
    println!("## 1. Mapping throughput ({} orders, best of {})\n", orders.len(), scale.rounds);
    println!("| mapping | records/s | time vs native |\n|---|---:|---:|");
    let (native, n) = best_of(scale.rounds, || {
        orders.chunks(100).map(|c| ferry_sdk::run_batch::<jushuitan_orders::JushuitanOrders>("{}", c).expect("native").len()).sum()
    });
    println!("| native Rust (same mapping code, batch 100) | {:.0} | 1.00 |", rate(native, n));
    let e = engine(true, true, true);
    let plugin = e.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
    for batch in [1, 100, 1000] {
        let (d, n) = best_of(scale.rounds, || wasm_throughput(&plugin, "{}", &orders, batch));
        println!("| wasm jushuitan-orders, batch {batch} | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    }
    let decl = e.load_file(ferry_fixtures::DECLARATIVE.as_ref()).expect("declarative");
    let (d, n) = best_of(scale.rounds, || wasm_throughput(&decl, DECLARATIVE_OPTIONS, &orders, 100));
    println!("| wasm declarative (equivalent options), batch 100 | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    println!("| VRL | not measured yet | |\n");
}

fn sandbox(scale: &Scale) {
    let calls = scale.orders.min(2000);
    println!("## 2. Sandbox cost: a fresh instance per batch ({calls} empty batches, best of {})\n", scale.rounds);
    println!("| engine | µs per fresh instance + call | vs pooling, fuel, epoch |\n|---|---:|---:|");
    let mut base = None;
    for (label, pooling, fuel, epoch) in [
        ("pooling, fuel, epoch (default)", true, true, true),
        ("pooling, no fuel, no epoch", true, false, false),
        ("on-demand, fuel, epoch", false, true, true),
        ("on-demand, no fuel, no epoch", false, false, false),
    ] {
        let e = engine(pooling, fuel, epoch);
        let plugin = e.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
        let (d, n) = best_of(scale.rounds, || (0..calls).map(|_| plugin.map_batch(&Limits::default(), "{}", &[]).expect("empty batch").outcomes.len() + 1).sum());
        let us = d.as_secs_f64() * 1e6 / n as f64;
        let b = *base.get_or_insert(us);
        println!("| {label} | {us:.1} | {:.2} |", us / b);
    }
    println!();
}

fn hot_swap(scale: &Scale) {
    println!("## 3. Loading a new version (best of {})\n", scale.rounds);
    println!("| path | ms | vs bare Component::new |\n|---|---:|---:|");
    let bytes = std::fs::read(ferry_fixtures::JUSHUITAN_ORDERS).expect("plugin bytes");
    let plain = engine(true, true, true);
    let (bare, _) = best_of(scale.rounds, || {
        wasmtime::component::Component::new(plain.engine(), &bytes).expect("compile");
        1
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let scale = match (benching, quick) {
        (true, false) => Scale { orders: 20_000, rounds: 5 },
        (true, true) => Scale { orders: 2_000, rounds: 2 },
        (false, _) => Scale { orders: 50, rounds: 1 },
    };
    mapping(&scale);
    sandbox(&scale);
    hot_swap(&scale);
}
