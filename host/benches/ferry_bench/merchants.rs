//! Section 10, Many merchants on one host (issue 25): one `ferry serve`
//! (the real binary, a child process) with N pipelines, one per merchant of
//! one simulator process ([`ferry_sim::jushuitan::merchants`]), each
//! merchant with its own orders and its own real budget (5 calls/s and 100
//! calls/min, sliding windows). Every pipeline is scheduled daily, so all
//! start a backfill together, 10 ms apart (a bit more than 100 calls each, so each
//! crosses the minute window); the section waits for all to end, then
//! reads the host idling with N scheduled pipelines.
//!
//! Per N it prints each pipeline's budget use (the windows' optimum for its
//! calls ÷ the time from its first to its last call; min and median), the
//! answers with code 199/200, the host's CPU per merchant while syncing,
//! its RSS per pipeline, its idle cost (CPU over 10 s and RSS, 5 s after
//! the last sync, with N scheduled pipelines and no run), and what
//! reached the target. The baseline is one
//! merchant alone, in the same run.

use crate::e2e::{FERRY, warm_cache};
use crate::util::Scale;
use ferry_sim::jushuitan::{JushuitanSimConfig, merchants};
use ferry_sim::target::TargetSimConfig;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "merchants-bench-token";

/// How long after the first call the `n`-th (1-based) can come at the
/// earliest under fresh 5/s + 100/min sliding windows: five at once each
/// second until 100 are used, then the next minute.
fn optimum(n: u64) -> Duration {
    let k = n.saturating_sub(1);
    Duration::from_secs(60 * (k / 100) + (k % 100) / 5)
}

/// The process's CPU seconds so far (user + system), from `/proc`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

/// A `/proc/{pid}/status` line in MB (VmRSS, VmHWM).
pub fn mem_mb(pid: u32, key: &str) -> f64 {
    crate::util::status_kb(pid, key).unwrap_or(0) as f64 / 1024.0
}

/// One merchant count's numbers.
struct Round {
    n: usize,
    uses: Vec<f64>,
    calls: Vec<u64>,
    refused: (u64, u64),
    sync_wall: f64,
    sync_cpu: f64,
    rss_after: f64,
    peak_rss: f64,
    idle_cpu_percent: f64,
    idle_rss: f64,
    delivered: usize,
    expected: usize,
    doubled: usize,
    failed: usize,
}

/// The N pipeline files and the serve file, each pipeline scheduled
/// `every` and with `source_extra` lines in its `[source]`; returns the
/// serve file.
pub fn files(
    dir: &Path,
    base: &JushuitanSimConfig,
    n: usize,
    urls: (&str, &str),
    start: &str,
    port: u16,
    (every, source_extra): (Option<&str>, &[&str]),
) -> String {
    let mut serve = format!("listen = \"127.0.0.1:{port}\"\n[[tokens]]\ntoken = \"{TOKEN}\"\ntenant = \"default\"\n");
    for k in 1..=n {
        let m = merchants::Merchants::config(base, k);
        let text = ferry_sim::PipelineFile {
            name: format!("m{k}"),
            source_url: urls.0.into(),
            app_key: m.app_key,
            app_secret: m.app_secret,
            access_token: m.access_token,
            start: start.into(),
            lookback: "0s".into(),
            source_timeout: "10s".into(),
            rate_limit: Some((base.per_second, base.per_minute)),
            metadata: ferry::source::jushuitan::metadata::SEED_METADATA.into(),
            plugin: ferry_fixtures::JUSHUITAN_ORDERS.into(),
            target_url: urls.1.into(),
            resource: format!("m{k}"),
            target_timeout: Some("30s".into()),
            state: dir.join(format!("m{k}.db")),
            source_extra: source_extra.iter().map(|l| l.to_string()).collect(),
            ..ferry_sim::PipelineFile::default()
        }
        .toml();
        std::fs::write(dir.join(format!("m{k}.toml")), text).expect("pipeline file");
        serve.push_str(&format!("[[pipelines]]\nfile = \"m{k}.toml\"\n"));
        if let Some(every) = every {
            serve.push_str(&format!("every = \"{every}\"\n"));
        }
    }
    let file = dir.join("serve.toml");
    std::fs::write(&file, serve).expect("serve file");
    file.display().to_string()
}

/// One plugin for every pipeline: compiled once into a disk cache (in
/// the returned temporary dir) that every `ferry serve` child reads.
pub fn plugin_cache() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = ferry_sim::PipelineFile {
        metadata: ferry::source::jushuitan::metadata::SEED_METADATA.into(),
        plugin: ferry_fixtures::JUSHUITAN_ORDERS.into(),
        state: dir.path().join("probe.db"),
        ..ferry_sim::PipelineFile::default()
    };
    let probe_file = dir.path().join("probe.toml");
    std::fs::write(&probe_file, probe.toml()).expect("probe file");
    let cache = warm_cache(dir.path(), &probe_file.display().to_string());
    (dir, cache)
}

/// A free port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The serve child, killed on drop.
pub struct Serve(pub Child);

impl Serve {
    /// Waits until its API on `port` shows pipeline `m{n}`, the last one
    /// opened (panics after `within`).
    pub fn wait_ready(&self, rt: &tokio::runtime::Runtime, port: u16, n: usize, within: Duration) {
        let (http, deadline) = (reqwest::Client::new(), Instant::now() + within);
        let answers =
            || rt.block_on(http.get(format!("http://127.0.0.1:{port}/pipelines/m{n}")).bearer_auth(TOKEN).send()).is_ok_and(|r| r.status().is_success());
        while !answers() {
            assert!(Instant::now() < deadline, "ferry serve with {n} pipelines did not answer within {within:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ferry serve FILE`, its plugin cache in `cache`.
    pub fn start(file: &str, cache: &Path) -> Serve {
        let child =
            Command::new(FERRY).args(["serve", file]).env("FERRY_CACHE_DIR", cache).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("ferry serve");
        Serve(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs N merchants and measures them.
fn round(rt: &tokio::runtime::Runtime, n: usize, orders: usize, cache: &Path, idle: Duration) -> Round {
    let mut base = JushuitanSimConfig::new(25);
    base.orders = orders;
    base.from = base.until - jiff::SignedDuration::from_hours(48);
    let sims = rt.block_on(merchants::start(&base, n, 0)).expect("merchants simulator");
    let target = rt.block_on(ferry_sim::target::start(TargetSimConfig::default(), 0)).expect("target simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let start = ferry::time::format(base.from - jiff::SignedDuration::from_hours(1));
    // Scheduled: the first run, at start, is the backfill measured;
    // afterwards the host idles with N scheduled pipelines.
    let serve_file = files(dir.path(), &base, n, (&sims.url, &target.url), &start, port, (Some("24h"), &[]));
    let t0 = Instant::now();
    let serve = Serve::start(&serve_file, cache);
    let pid = serve.0.id();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let got = |path: String| {
        let req = http.get(format!("{api}{path}")).bearer_auth(TOKEN);
        async move {
            let r = req.send().await.ok()?;
            r.json::<serde_json::Value>().await.ok()
        }
    };
    serve.wait_ready(rt, port, n, Duration::from_secs(120));
    // Each schedule queued its first run at start: find its command.
    let mut ids = Vec::new();
    for k in 1..=n {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let page = rt.block_on(got(format!("/sync-commands?pipeline=m{k}&limit=1")));
            if let Some(id) = page.as_ref().and_then(|p| p["items"][0]["id"].as_str()) {
                ids.push(id.to_string());
                break;
            }
            assert!(Instant::now() < deadline, "pipeline m{k} queued no scheduled sync within a minute: {page:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut open: Vec<&String> = ids.iter().collect();
    let mut failed = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    while !open.is_empty() {
        assert!(Instant::now() < deadline, "{} of {n} syncs did not end within 15 minutes", open.len());
        std::thread::sleep(Duration::from_secs(2));
        let mut still = Vec::new();
        for id in open {
            match rt.block_on(got(format!("/sync-commands/{id}"))).and_then(|r| r["status"].as_str().map(str::to_string)).as_deref() {
                Some("succeeded") => {}
                Some("failed" | "cancelled") => failed += 1,
                _ => still.push(id),
            }
        }
        open = still;
    }
    let (sync_cpu, sync_wall) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
    let (rss_after, peak_rss) = (mem_mb(pid, "VmRSS:"), mem_mb(pid, "VmHWM:"));
    std::thread::sleep(idle / 2);
    let idle0 = cpu_seconds(pid);
    std::thread::sleep(idle);
    let (idle_cpu_percent, idle_rss) = ((cpu_seconds(pid) - idle0) / idle.as_secs_f64() * 100.0, mem_mb(pid, "VmRSS:"));
    drop(serve);
    let stats = sims.state.stats();
    let uses = stats
        .iter()
        .map(|s| match (s.first_call_ms, s.last_call_ms) {
            // Calls that fit in the first second have no pace to measure.
            (Some(a), Some(b)) if s.accepted > 5 => optimum(s.accepted).as_secs_f64() / ((b - a).max(1) as f64 / 1e3),
            _ => 1.0,
        })
        .collect();
    let calls = stats.iter().map(|s| s.accepted).collect();
    let refused = stats.iter().fold((0, 0), |(a, b), s| (a + s.code199, b + s.code200));
    let expected = (1..=n).map(|k| sims.state.get(k).expect("merchant").truth().orders.iter().filter(|o| o.status == "Confirmed").count()).sum();
    let truth = target.state.truth();
    let (delivered, doubled) = (truth.records.len(), truth.doubled().len());
    rt.block_on(async {
        sims.stop().await;
        target.stop().await;
    });
    Round { n, uses, calls, refused, sync_wall, sync_cpu, rss_after, peak_rss, idle_cpu_percent, idle_rss, delivered, expected, doubled, failed }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Prints the section.
pub fn merchants(scale: &Scale) {
    let (counts, orders): (&[usize], usize) = match (scale.benching, scale.quick) {
        (false, _) => (&[1, 3], 200),
        (true, true) => (&[1, 10, 100], 7_000),
        (true, false) => (&[1, 10, 50, 100, 200], 7_000),
    };
    // FERRY_BENCH_MERCHANTS=1,300 measures other counts (the first is the baseline).
    let chosen: Vec<usize> =
        std::env::var("FERRY_BENCH_MERCHANTS").ok().map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect()).unwrap_or_default();
    let counts = if chosen.is_empty() { counts } else { &chosen[..] };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_cache_dir, cache) = plugin_cache();
    println!("## 10. Many merchants on one host: one `ferry serve`, a pipeline per merchant, each at 5/s and 100/min ({orders} orders each)\n");
    println!(
        "| merchants | calls per pipeline | budget use min | median | 199/200 | wall s (start-up included) | host CPU s | CPU per merchant (% of a core) | vs 1 merchant | RSS after, per pipeline | peak RSS | idle: CPU, RSS | delivered / expected | doubled | failed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut baseline = None;
    for &n in counts {
        // Idle for 5 s, then CPU over 10 s (1 s in the smoke run).
        let idle = Duration::from_secs(if scale.benching { 10 } else { 1 });
        let r = round(&rt, n, orders, &cache, idle);
        let uses = sorted(&r.uses);
        let per_merchant = r.sync_cpu / r.sync_wall / r.n as f64 * 100.0;
        let base = *baseline.get_or_insert(per_merchant);
        let (cmin, cmax) = (r.calls.iter().min().copied().unwrap_or(0), r.calls.iter().max().copied().unwrap_or(0));
        println!(
            "| {} | {cmin}–{cmax} | {:.3} | {:.3} | {}/{} | {:.1} | {:.1} | {per_merchant:.2}% | {:.2} | {:.0} MB, {:.2} MB | {:.0} MB | {:.2}%, {:.0} MB | {}/{} | {} | {} |",
            r.n,
            uses[0],
            uses[uses.len() / 2],
            r.refused.0,
            r.refused.1,
            r.sync_wall,
            r.sync_cpu,
            per_merchant / base,
            r.rss_after,
            r.rss_after / r.n as f64,
            r.peak_rss,
            r.idle_cpu_percent,
            r.idle_rss,
            r.delivered,
            r.expected,
            r.doubled,
            r.failed,
        );
    }
    println!();
}
