//! Section 6, Rate-limit efficiency: `ferry run` against the simulator's default
//! budget (5 calls/s and 100 calls/min per app_key, sliding windows) for a
//! fixed time, then Ctrl-C. Efficiency = calls the simulator accepted ÷ calls
//! the budget allows in that time; 199/200 answers are counted separately.
//! Then a 10,000-order backfill run to its end: the windows' optimum for
//! the calls it made ÷ the time it took.

use crate::e2e::{FERRY, pipeline, warm_cache};
use crate::util::Scale;
use ferry_sim::jushuitan::JushuitanSimConfig;
use ferry_sim::target::TargetSimConfig;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Calls a 5/s + 100/min sliding budget allows in `t`, starting fresh.
fn allowed(t: Duration, per_second: u64, per_minute: u64) -> u64 {
    let secs = t.as_secs();
    per_minute * (secs / 60) + (per_second * (secs % 60)).min(per_minute)
}

/// When the `n`-th call (1-based) can start at the earliest from a fresh
/// budget: each minute's calls go at `per_second` until `per_minute` are
/// used, then wait for the first of them to leave the window.
fn optimum(n: u64, per_second: u64, per_minute: u64) -> Duration {
    let k = n.saturating_sub(1);
    Duration::from_secs(60 * (k / per_minute)) + Duration::from_secs_f64((k % per_minute) as f64 / per_second as f64)
}

/// Both simulators and a pipeline file against them, its plugin cache warm.
struct Setup {
    source: ferry_sim::Running<std::sync::Arc<ferry_sim::jushuitan::SimState>>,
    target: ferry_sim::Running<std::sync::Arc<ferry_sim::target::TargetState>>,
    _dir: tempfile::TempDir,
    file: String,
    cache: std::path::PathBuf,
    per_second: u64,
    per_minute: u64,
}

impl Setup {
    fn new(rt: &tokio::runtime::Runtime, seed: u64, orders: usize, days: i64) -> Setup {
        let mut cfg = JushuitanSimConfig::new(seed);
        cfg.orders = orders;
        cfg.from = cfg.until - jiff::SignedDuration::from_hours(24 * days);
        let source = rt.block_on(ferry_sim::jushuitan::start(cfg.clone(), 0)).expect("source simulator");
        let target = rt.block_on(ferry_sim::target::start(TargetSimConfig::default(), 0)).expect("target simulator");
        let dir = tempfile::tempdir().expect("tempdir");
        let start = ferry::time::format(cfg.from - jiff::SignedDuration::from_hours(1));
        let file = pipeline(dir.path(), &source.url, &target.url, &start, (cfg.per_second, cfg.per_minute));
        let cache = warm_cache(dir.path(), &file);
        let (per_second, per_minute) = (u64::from(cfg.per_second), u64::from(cfg.per_minute));
        Setup { source, target, _dir: dir, file, cache, per_second, per_minute }
    }

    fn run(&self) -> Command {
        let mut c = Command::new(FERRY);
        c.args(["run", &self.file]).env("FERRY_CACHE_DIR", &self.cache).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    fn stop(self, rt: &tokio::runtime::Runtime) {
        rt.block_on(async {
            self.source.stop().await;
            self.target.stop().await;
        });
    }
}

/// A 10,000-order backfill to its end: time against the windows' optimum.
fn backfill(rt: &tokio::runtime::Runtime) {
    let setup = Setup::new(rt, 6, 10_000, 3);
    let (ps, pm) = (setup.per_second, setup.per_minute);
    let before = setup.source.state.stats().accepted;
    let started = Instant::now();
    let status = setup.run().status();
    let took = started.elapsed();
    let s = setup.source.state.stats();
    let calls = s.accepted - before;
    let best = optimum(calls, ps, pm);
    println!("### A 10,000-order backfill to its end ({ps}/s, {pm}/min; exit {:?})\n", status.ok().and_then(|s| s.code()));
    println!("| calls | time | the windows' optimum | budget use (optimum ÷ time) | 199/200 answers |");
    println!("|---:|---:|---:|---:|---:|");
    let use_ = best.as_secs_f64() / took.as_secs_f64();
    println!("| {calls} | {:.1} s | {:.1} s | {use_:.3} | {}/{} |\n", took.as_secs_f64(), best.as_secs_f64(), s.code199, s.code200);
    setup.stop(rt);
}

/// Prints the efficiency table.
pub fn rate_limit(scale: &Scale) {
    if !scale.benching {
        println!("## 6. Rate-limit efficiency: measured under `--bench` only (minutes of wall clock)\n");
        return;
    }
    let span = if scale.quick { Duration::from_secs(70) } else { Duration::from_secs(300) };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let setup = Setup::new(&rt, 5, 60_000, 20);
    let (ps, pm) = (setup.per_second, setup.per_minute);
    let before = setup.source.state.stats().accepted;
    let started = Instant::now();
    let mut child = setup.run().spawn().expect("ferry run");
    std::thread::sleep(span);
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let elapsed = started.elapsed();
    let _ = child.wait();
    let s = setup.source.state.stats();
    let accepted = s.accepted - before;
    let budget = allowed(elapsed, ps, pm);
    println!("## 6. Rate-limit efficiency: {ps}/s and {pm}/min, {:.0} s of `ferry run`\n", elapsed.as_secs_f64());
    println!("| calls accepted | calls the budget allows | efficiency | 199/200 answers | busiest minute | busiest second |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let efficiency = accepted as f64 / budget as f64;
    println!("| {accepted} | {budget} | {efficiency:.3} | {}/{} | {} | {} |\n", s.code199, s.code200, s.max_per_minute, s.max_per_second);
    setup.stop(&rt);
    backfill(&rt);
}
