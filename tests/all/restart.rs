//! Crash and restart: what a killed `ferry run` leaves behind is told
//! apart and picked up by the next process.

use crate::helpers::{args, ferry_async, harness, source_config};
use ferry::state::{DataStore, SqliteStore};
use ferry_sim::target::TargetSimConfig;
use std::time::{Duration, Instant};

/// `ferry run FILE` in the background, its output dropped (it is killed).
fn spawn_run(file: &str) -> std::process::Child {
    crate::helpers::ferry_command(&["run", file]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A run killed with SIGKILL shows as `interrupted`, not `running`, once
/// a later process opens the state; the next run finishes the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_shows_as_interrupted() {
    let mut cfg = source_config(91, "app-killed-run", 400);
    cfg.per_second = 2;
    let h = harness(cfg, TargetSimConfig::default()).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency, s.per_second) = (20, 2, 2);
    let file = h.write(&s);
    let mut child = spawn_run(&file);
    until("some orders are fetched", Duration::from_secs(60), || h.source.state.stats().accepted >= 2).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let shown = ferry_async(args(&["state", &file])).await;
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    let last = text.lines().find(|l| l.starts_with("run ")).unwrap_or_default().to_string();
    assert!(last.contains("interrupted") && !last.contains("running"), "{text}");
    let runs = SqliteStore::open(&h.state).unwrap().runs("it-orders", 1).unwrap();
    assert!(runs[0].summary.as_ref().and_then(|s| s["error"].as_str()).is_some_and(|e| e.contains("ended without finishing")), "{:?}", runs[0]);

    let out = ferry_async(args(&["run", &file])).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(h.missing().is_empty() && h.each_once());
    let runs = SqliteStore::open(&h.state).unwrap().runs("it-orders", 5).unwrap();
    assert_eq!(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(), ["ok", "interrupted"], "the finished run stays as it is");
}

/// Killed and restarted right after each call, `ferry run` still spaces
/// its calls by the budget: the next process waits for the slot the last
/// one left, and the source answers no code 199/200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_do_not_burst_past_the_budget() {
    let mut cfg = source_config(92, "app-restart-budget", 300);
    (cfg.per_second, cfg.per_minute) = (1, 1000);
    let h = harness(cfg, TargetSimConfig::default()).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency, s.per_second, s.per_minute) = (20, 2, 1, 1000);
    let file = h.write(&s);
    for cycle in 0..6 {
        let before = h.source.state.stats().requests;
        let mut child = spawn_run(&file);
        until(&format!("cycle {cycle}: a call"), Duration::from_secs(30), || h.source.state.stats().requests > before).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = ferry_async(args(&["run", &file])).await;
    assert_eq!(out.status.code(), Some(0));
    let stats = h.source.state.stats();
    assert_eq!((stats.code199, stats.code200), (0, 0), "{stats:?}");
    assert!(h.missing().is_empty() && h.each_once());
}

/// A process killed mid-window leaves the `ts` cursor its staged rows
/// reach; the next one reads the window on from there, not from its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_on_from_the_staged_cursor() {
    let mut cfg = source_config(93, "app-window-progress", 700);
    cfg.per_second = 2;
    let h = harness(cfg, TargetSimConfig::default()).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency, s.per_second) = (25, 2, 2);
    // One window holds every order.
    std::fs::write(&h.file, s.toml().replace("window = \"1d\"", "window = \"7d\"")).unwrap();
    let file = h.file.to_str().unwrap().to_string();
    let confirmed = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").count();
    let pages = confirmed.div_ceil(50) as u64;
    for cycle in 0..3 {
        let before = h.source.state.stats().accepted;
        let mut child = spawn_run(&file);
        until(&format!("cycle {cycle}: four pages"), Duration::from_secs(30), || h.source.state.stats().accepted >= before + 4).await;
        // Let the pages read be mapped and staged (the next page waits for
        // its rate-limit slot meanwhile).
        tokio::time::sleep(Duration::from_millis(250)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let saved = SqliteStore::open(&h.state).unwrap().window_progress("it-orders").unwrap();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let before = h.source.state.stats().accepted;
    let out = ferry_async(args(&["run", &file])).await;
    assert_eq!(out.status.code(), Some(0));
    let last_run = h.source.state.stats().accepted - before;
    assert!(last_run + 4 <= pages, "the last run read {last_run} of the window's {pages} pages: it went on from the cursor");
    assert!(h.missing().is_empty() && h.each_once(), "doubled {:?}", h.target.state.truth().doubled());
    assert!(SqliteStore::open(&h.state).unwrap().window_progress("it-orders").unwrap().is_empty(), "a finished window's progress is forgotten");
}
