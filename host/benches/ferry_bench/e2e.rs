//! Section 5, End-to-end sync: the real `ferry run` binary against the Jushuitan and
//! Command-target simulators, each in its own `ferry sim` process with the
//! rate limits off, so the CPU time and peak RSS measured (of the `ferry run`
//! child alone) are Ferry's, not the simulators'. The baseline is the
//! same binary's `--dry-run` over the same simulators: fetch, idCheck and
//! map, but no outbox, no writes and no checkpoints.

use crate::util::Scale;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A simulator child process, killed on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child =
            Command::new(FERRY).arg("sim").args(args).args(["--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start ferry sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("simulator banner");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("simulator url").to_string();
        Sim { child, url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compiles the pipeline's plugin into a disk cache under `dir` (by running
/// `ferry validate`), so a run measures syncing, not compiling; returns the
/// cache dir for `FERRY_CACHE_DIR`.
pub fn warm_cache(dir: &Path, file: &str) -> std::path::PathBuf {
    let cache = dir.join("cache");
    let out = Command::new(FERRY).args(["validate", file]).env("FERRY_CACHE_DIR", &cache).output().expect("ferry validate");
    assert!(out.status.success(), "ferry validate: {}", String::from_utf8_lossy(&out.stderr));
    cache
}

/// Samples the peak RSS (VmHWM) of process `pid` every 10 ms until it exits;
/// wait4's ru_maxrss would also count the parent's RSS at spawn.
fn sample_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        // Until the process is reaped or a zombie: it has exited.
        while let Some(kb) = crate::util::status_kb(pid, "VmHWM:") {
            peak = peak.max(kb * 1024);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}

/// Waits for `child`; returns its own CPU seconds (the kernel's accounting).
#[allow(unsafe_code)]
fn wait_cpu(child: Child) -> f64 {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in; `pid` is our
    // own child, which nothing else waits for (std's Child is dropped unwaited).
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut u) };
    assert_eq!(got, pid, "wait4 on ferry run");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

struct Measured {
    wall: Duration,
    cpu: f64,
    max_rss: u64,
    delivered: u64,
    fetched: u64,
    id_check_dropped: u64,
    status: String,
}

/// A pipeline file against the two simulators; returns its path.
pub fn pipeline(dir: &Path, source: &str, target: &str, start: &str, budget: (u32, u32)) -> String {
    let text = ferry_sim::PipelineFile {
        name: "bench-orders".into(),
        source_url: source.into(),
        start: start.into(),
        lookback: "0s".into(),
        source_timeout: "10s".into(),
        rate_limit: Some(budget),
        metadata: ferry::source::jushuitan::metadata::SEED_METADATA.into(),
        plugin: ferry_fixtures::JUSHUITAN_ORDERS.into(),
        target_url: target.into(),
        concurrency: 16,
        batch_size: 500,
        target_timeout: Some("10s".into()),
        state: dir.join("state.db"),
        ..ferry_sim::PipelineFile::default()
    }
    .toml();
    let file = dir.join("bench.toml");
    std::fs::write(&file, text).expect("pipeline file");
    file.display().to_string()
}

fn run(orders: usize, dry_run: bool) -> Measured {
    run_on(orders, dry_run, None)
}

/// [`run`], `ferry run` pinned to the CPUs `cores` (`taskset -c`) when given.
fn run_on(orders: usize, dry_run: bool, cores: Option<&str>) -> Measured {
    let days = (orders / 5_000).max(1);
    let source = Sim::start(&[
        "jushuitan",
        "--orders",
        &orders.to_string(),
        "--days",
        &days.to_string(),
        "--per-second",
        "100000",
        "--per-minute",
        "100000000",
        "--seed",
        "7",
    ]);
    let target = Sim::start(&["target"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * (days as i64 + 1));
    let file = pipeline(dir.path(), &source.url, &target.url, &ferry::time::format(start), (100_000, 100_000_000));
    let cache = warm_cache(dir.path(), &file);
    let started = Instant::now();
    let mut cmd = match cores {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list, FERRY]);
            c
        }
        None => Command::new(FERRY),
    };
    cmd.args(["run", "--log-format", "json", &file]).env("FERRY_CACHE_DIR", &cache).stdout(Stdio::piped()).stderr(Stdio::null());
    if dry_run {
        cmd.arg("--dry-run");
    }
    let mut child = cmd.spawn().expect("ferry run");
    let peak = sample_peak_rss(child.id());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout).expect("read ferry run output");
    let cpu = wait_cpu(child);
    let max_rss = peak.join().expect("RSS sampler");
    let wall = started.elapsed();
    let out = stdout;
    let summary: serde_json::Value = out.lines().rev().find_map(|l| serde_json::from_str(l).ok()).expect("run summary JSON");
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    Measured {
        wall,
        cpu,
        max_rss,
        delivered: n("delivered"),
        fetched: n("fetched"),
        id_check_dropped: n("skipped_id_check"),
        status: summary["status"].as_str().unwrap_or("?").to_string(),
    }
}

/// Prints the end-to-end table.
pub fn e2e(scale: &Scale) {
    let sizes: &[usize] = match (scale.benching, scale.quick) {
        (false, _) => &[1_000],
        (true, true) => &[20_000],
        (true, false) => &[100_000, 1_000_000],
    };
    println!("## 5. End-to-end sync, rate limits off (`ferry run` vs `ferry run --dry-run`)\n");
    println!("| orders | run | status | fetched | dropped by idCheck | delivered | wall s | orders/s | CPU s per 100k | peak RSS MB | time vs dry run |");
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &orders in sizes {
        let base = run(orders, true);
        let full = run(orders, false);
        for (label, m) in [("dry run (baseline)", &base), ("ferry run", &full)] {
            println!(
                "| {orders} | {label} | {} | {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.0} | {:.2} |",
                m.status,
                m.fetched,
                m.id_check_dropped,
                m.delivered,
                m.wall.as_secs_f64(),
                m.fetched as f64 / m.wall.as_secs_f64(),
                m.cpu * 100_000.0 / m.fetched.max(1) as f64,
                m.max_rss as f64 / 1e6,
                m.wall.as_secs_f64() / base.wall.as_secs_f64()
            );
        }
        assert_eq!(full.status, "ok", "the benchmark sync must finish cleanly");
    }
    println!();
}

/// Section 8: `ferry run` on one core and on two (`taskset`, the binary
/// alone; the simulators run unpinned beside it), rate limits off. The
/// baseline is the two-core run, in the same process.
pub fn cores(scale: &Scale) {
    if std::process::Command::new("taskset").arg("-V").output().is_err() {
        println!("## 8. Cores: skipped (no `taskset`: util-linux)\n");
        return;
    }
    let orders = match (scale.benching, scale.quick) {
        (false, _) => 1_000,
        (true, true) => 20_000,
        (true, false) => 100_000,
    };
    println!("## 8. Cores: `ferry run` of {orders} orders pinned with `taskset`, rate limits off\n");
    println!("| CPUs | status | fetched | wall s | orders/s | CPU s per 100k | throughput vs 2 cores |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let two = run_on(orders, false, Some("0,1"));
    let one = run_on(orders, false, Some("0"));
    for (label, m) in [("0,1 (baseline)", &two), ("0", &one)] {
        let rate = m.fetched as f64 / m.wall.as_secs_f64();
        println!(
            "| {label} | {} | {} | {:.1} | {rate:.0} | {:.2} | {:.2} |",
            m.status,
            m.fetched,
            m.wall.as_secs_f64(),
            m.cpu * 100_000.0 / m.fetched.max(1) as f64,
            rate / (two.fetched as f64 / two.wall.as_secs_f64())
        );
    }
    println!();
}
