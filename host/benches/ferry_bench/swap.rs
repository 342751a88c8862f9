//! Section 3, Loading a new version: bare compile, cold load, warm load from the
//! disk cache; and what batches see while versions are installed.

use crate::util::{Scale, best_of, engine, ms};
use ferry::plugin::{EngineOptions, Limits, PluginEngine, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    swap_latency(scale, &bytes);
}

/// The plugin with a custom section appended: the same code under a new
/// digest, as a new version of a mapping looks to the host.
fn variant(bytes: &[u8], name: &str) -> Vec<u8> {
    let leb = |mut n: usize, out: &mut Vec<u8>| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    };
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// One thread maps batches of 100 without pause while the main thread
/// installs new versions through the registry, as `ferry serve` does on a
/// push: a batch held up by a swap shows up far above the median.
fn swap_latency(scale: &Scale, bytes: &[u8]) {
    let swaps = if scale.benching { 5 } else { 1 };
    let orders = ferry_sim::jushuitan::sample_orders(7, 100);
    println!("## 3b. Batches during a swap ({swaps} installs 300 ms apart, batches of 100 mapped throughout)\n");
    println!(
        "| install | median batch ms | batches overlapping an install | slowest of those ms | batches > 2× median | install ms (median) | install start to first batch on it done, ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for warm in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = EngineOptions { cache_dir: warm.then(|| dir.path().to_path_buf()), ..EngineOptions::default() };
        let engine = Arc::new(PluginEngine::new(options).expect("engine"));
        let versions: Vec<Vec<u8>> = (0..swaps).map(|i| variant(bytes, &format!("ferry-bench-{warm}-{i}"))).collect();
        if warm {
            for v in &versions {
                engine.load_bytes(v, "bench").expect("fill the cache");
            }
        }
        let registry = Arc::new(Registry::new(engine));
        registry.register("bench", "{}".into(), Limits::default(), Vec::new());
        registry.install_bytes("bench", bytes, "bench").expect("first version");
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (registry, stop, orders) = (registry.clone(), stop.clone(), orders.clone());
            std::thread::spawn(move || {
                let mut batches = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let (plugin, _) = registry.map_batch("bench", &orders).expect("batch");
                    batches.push((t, Instant::now(), plugin.digest.clone()));
                }
                batches
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut installs = Vec::new();
        for v in &versions {
            let t = Instant::now();
            let plugin = registry.install_bytes("bench", v, "bench").expect("install");
            installs.push((t, Instant::now(), plugin.digest.clone()));
            std::thread::sleep(Duration::from_millis(300));
        }
        stop.store(true, Ordering::Relaxed);
        let batches = worker.join().expect("batch thread");
        let typical = median(batches.iter().map(|(s, e, _)| *e - *s).collect());
        let overlapping: Vec<Duration> =
            batches.iter().filter(|(s, e, _)| installs.iter().any(|(is, ie, _)| s < ie && e > is)).map(|(s, e, _)| *e - *s).collect();
        let delayed = batches.iter().filter(|(s, e, _)| *e - *s > typical * 2).count();
        let to_first = installs.iter().filter_map(|(is, _, d)| batches.iter().find(|(_, _, bd)| bd == d).map(|(_, e, _)| *e - *is)).collect();
        println!(
            "| {} | {:.2} | {} | {:.2} | {} | {:.1} | {:.1} |",
            if warm { "warm (disk cache)" } else { "cold (compile)" },
            ms(typical),
            overlapping.len(),
            ms(overlapping.iter().max().copied().unwrap_or_default()),
            delayed,
            ms(median(installs.iter().map(|(s, e, _)| *e - *s).collect())),
            ms(median(to_first))
        );
    }
    println!();
}
