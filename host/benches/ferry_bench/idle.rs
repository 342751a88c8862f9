//! Section 9, The idle cost of many pipelines (issue 25): one `ferry
//! serve` (the real binary) holding N pipelines of one plugin, each with
//! its own SQLite state, against an unreachable source (one attempt per
//! call), so a scheduled run fails at once and the host then idles. Read from `/proc` once it
//! has settled: RSS and CPU over 10 s. Two kinds: never run (no schedule)
//! and scheduled hourly (each ran once at start; opened together, the
//! first runs start 10 ms apart).
//! The baseline is one pipeline, in the same run.

use crate::merchants::{Serve, cpu_seconds, files, free_port, mem_mb, plugin_cache};
use crate::util::Scale;
use ferry_sim::jushuitan::JushuitanSimConfig;
use std::time::Duration;

/// (RSS MB, CPU % of a core) of `n` pipelines settled for `settle`.
fn idle(rt: &tokio::runtime::Runtime, n: usize, every: Option<&str>, (settle, window): (Duration, Duration), cache: &std::path::Path) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let unreachable = "http://127.0.0.1:9";
    let serve_file = files(dir.path(), &JushuitanSimConfig::new(9), n, (unreachable, unreachable), "2026-01-01 00:00:00", port, (every, &["max_attempts = 1"]));
    let serve = Serve::start(&serve_file, cache);
    let pid = serve.0.id();
    serve.wait_ready(rt, port, n, Duration::from_secs(300));
    std::thread::sleep(settle);
    let (cpu0, rss) = (cpu_seconds(pid), mem_mb(pid, "VmRSS:"));
    std::thread::sleep(window);
    (rss, (cpu_seconds(pid) - cpu0) / window.as_secs_f64() * 100.0)
}

/// Prints the section.
pub fn idle_cost(scale: &Scale) {
    let (n, settle, window) = match scale.benching {
        false => (5, Duration::from_secs(1), Duration::from_secs(1)),
        true => (1000, Duration::from_secs(20), Duration::from_secs(10)),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_cache_dir, cache) = plugin_cache();
    println!("## 9. The idle cost of many pipelines in one `ferry serve` (settled {} s, CPU over {} s)\n", settle.as_secs(), window.as_secs());
    println!("| pipelines | what | RSS | per pipeline above the baseline | CPU while idle (% of a core) | RSS vs 1 pipeline |");
    println!("|---:|---|---:|---:|---:|---:|");
    let (base_rss, base_cpu) = idle(&rt, 1, None, (settle, window), &cache);
    println!("| 1 (baseline) | never run | {base_rss:.0} MB | | {base_cpu:.2}% | 1.00 |");
    for (what, every) in [("never run", None), ("scheduled hourly, after their first runs (opened together, started 10 ms apart)", Some("1h"))] {
        let (rss, cpu) = idle(&rt, n, every, (settle, window), &cache);
        println!("| {n} | {what} | {rss:.0} MB | {:.1} KB | {cpu:.2}% | {:.2} |", (rss - base_rss) * 1024.0 / n as f64, rss / base_rss);
    }
    println!();
}
