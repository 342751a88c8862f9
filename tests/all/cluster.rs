//! Scale-out: several real `ferry serve` processes on one PostgreSQL
//! database share 30 pipelines, one merchant's rate budget, sync commands
//! and plugin swaps, and take over a killed worker's pipelines.

use crate::fleet::{Fleet, fleet_done, source, sync_body};
use ferry_sim::target::TargetSimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Three workers, 30 pipelines: ten share one merchant's budget (5/s), the
/// others have a merchant each. Every command is accepted by one worker,
/// followed on another, and every order lands once with no 199/200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_thirty_pipelines_and_one_merchant_budget() {
    let shared = source(300, "merchant-shared", 200, 5, 300).await;
    let mut sources = vec![shared.clone(); 10];
    for i in 0..20 {
        sources.push(source(301 + i, &format!("merchant-{i}"), 60, 50, 3000).await);
    }
    let mut fleet = Fleet::new(sources, TargetSimConfig::default(), ferry_fixtures::JUSHUITAN_ORDERS, "3s").await;
    for id in ["w1", "w2", "w3"] {
        fleet.start(id).await;
    }
    let mut ids = Vec::new();
    for (i, lane) in fleet.lanes.iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = fleet.call(i % 3, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!(code, 201, "{r}");
        // The same PUT through another worker is a replay of the same command.
        let (code, again) = fleet.call((i + 1) % 3, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!((code, &again["id"]), (200, &r["id"]), "{again}");
        ids.push(id);
    }
    let (code, _) = fleet.call(2, Method::PUT, &format!("/sync-commands/{}", ids[0]), sync_body("p01")).await;
    assert_eq!(code, 409, "another body under a taken id, through another worker");

    let done = fleet.wait_all(1, &ids, Duration::from_secs(180)).await;
    for d in &done {
        assert_eq!(d["status"], json!("succeeded"), "{d}");
        assert!(d["taskCount"]["success"].as_u64().unwrap() > 0, "{d}");
    }
    let ran_on: std::collections::BTreeSet<&str> = done.iter().filter_map(|d| d["worker"].as_str()).collect();
    assert!(ran_on.len() >= 2, "the work spread over the workers: {ran_on:?}");
    fleet.assert_each_order_once();
    let stats = shared.state.stats();
    assert_eq!((stats.code199, stats.code200), (0, 0), "three workers drew on one budget: {stats:?}");
    assert!(stats.max_per_second <= 5, "{stats:?}");
    for lane in &fleet.lanes {
        let s = lane.source.state.stats();
        assert_eq!((s.code199, s.code200), (0, 0), "{}: {s:?}", lane.name);
    }
    for lane in &fleet.lanes {
        let (_, p) = fleet.call(2, Method::GET, &format!("/pipelines/{}", lane.name), None).await;
        assert_eq!(p["lastRuns"].as_array().map(Vec::len), Some(1), "{}: one command, one run: {p}", lane.name);
    }
    let (code, cluster) = fleet.call(0, Method::GET, "/cluster", None).await;
    assert_eq!(code, 200, "{cluster}");
    let alive: Vec<&str> = cluster["workers"].as_array().unwrap().iter().filter(|w| w["alive"] == json!(true)).map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(alive, vec!["w1", "w2", "w3"], "{cluster}");
}

/// SIGKILL a worker in the middle of its runs: once its leases run out the
/// other workers take its pipelines over, resume them from the outbox and
/// checkpoint, and the targets' own counts show nothing lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_pipelines_are_taken_over() {
    let mut sources = Vec::new();
    for i in 0..4 {
        sources.push(source(320 + i, &format!("merchant-kill-{i}"), 400, 50, 3000).await);
    }
    let slow = TargetSimConfig { completion_delay: Duration::from_millis(150), ..TargetSimConfig::default() };
    let lease = Duration::from_secs(2);
    let mut fleet = Fleet::new(sources, slow, ferry_fixtures::JUSHUITAN_ORDERS, "2s").await;
    for id in ["w1", "w2", "w3"] {
        fleet.start(id).await;
    }
    let mut ids = Vec::new();
    for lane in &fleet.lanes {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = fleet.call(0, Method::PUT, &format!("/sync-commands/{id}"), sync_body(&lane.name)).await;
        assert_eq!(code, 201, "{r}");
        ids.push(id);
    }
    // w1 is woken by its own PUTs and claims first; kill it mid-run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let (_, cluster) = fleet.call(1, Method::GET, "/cluster", None).await;
        let held: Vec<String> =
            cluster["leases"].as_array().unwrap().iter().filter(|l| l["worker"] == json!("w1")).map(|l| l["pipeline"].as_str().unwrap().to_string()).collect();
        let delivered = fleet.lanes.iter().filter(|l| held.contains(&l.name)).map(|l| l.target.state.truth().records.len()).sum::<usize>();
        // w1 has confirmed some records of a run it holds (its published
        // taskCount says so), so a takeover has work of w1's to count.
        let mut confirmed = 0;
        for (lane, id) in fleet.lanes.iter().zip(&ids) {
            if held.contains(&lane.name) {
                let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
                confirmed += c["taskCount"]["success"].as_u64().unwrap_or(0);
            }
        }
        if delivered >= 40 && confirmed >= 20 {
            break held;
        }
        assert!(Instant::now() < deadline, "w1 ran nothing: {cluster}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut killed = fleet.workers.remove(0);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    // Taken over within the lease time (plus a poll and a little slack).
    let taken = loop {
        let (_, cluster) = fleet.call(0, Method::GET, "/cluster", None).await;
        let leases = cluster["leases"].as_array().unwrap();
        let moved = held.iter().all(|p| leases.iter().any(|l| l["pipeline"] == json!(p) && l["worker"] != json!("w1")) || fleet_done(&fleet, p));
        if moved && !leases.iter().any(|l| l["worker"] == json!("w1")) {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "w1's pipelines were never taken over: {cluster}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(taken < lease + Duration::from_secs(3), "taken over after {taken:?}");
    let done = fleet.wait_all(0, &ids, Duration::from_secs(120)).await;
    for d in &done {
        assert_eq!(d["status"], json!("succeeded"), "{d}");
        assert_ne!(d["worker"], json!("w1"), "finished by a live worker: {d}");
    }
    let taken: Vec<&Value> = done.iter().filter(|d| d["notes"].to_string().contains("taken over by worker")).collect();
    assert_eq!(taken.len(), held.len(), "each run w1 held was taken over: {done:?}");
    // Each command's taskCount counts what every worker that ran it
    // delivered: it agrees with the records the command lists.
    for (id, d) in ids.iter().zip(&done) {
        let (_, records) = fleet.call(0, Method::GET, &format!("/sync-commands/{id}/records"), None).await;
        assert_eq!(d["taskCount"]["success"], records["count"], "taskCount and /records agree after a takeover: {d}");
    }
    fleet.assert_each_order_once();
    drop(killed);
}

/// A worker stopped (SIGSTOP) past its lease and woken again (SIGCONT)
/// writes nothing: the command keeps the worker that took it over and the
/// note saying so at every look, the run finishes there, and each order
/// lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_woken_after_a_takeover_writes_nothing() {
    let sources = vec![source(350, "merchant-stop", 400, 50, 3000).await];
    let slow = TargetSimConfig { completion_delay: Duration::from_millis(150), ..TargetSimConfig::default() };
    let mut fleet = Fleet::new(sources, slow, ferry_fixtures::JUSHUITAN_ORDERS, "2s").await;
    fleet.start("w1").await;
    let id = uuid::Uuid::new_v4().to_string();
    let (code, _) = fleet.call(0, Method::PUT, &format!("/sync-commands/{id}"), sync_body("p00")).await;
    assert_eq!(code, 201);
    // w1 runs it and has published some progress.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = fleet.call(0, Method::GET, &format!("/sync-commands/{id}"), None).await;
        if c["worker"] == json!("w1") && c["taskCount"]["success"].as_u64().unwrap_or(0) >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "w1 never ran it: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.start("w2").await;
    let w1 = fleet.workers[0].child.id();
    crate::helpers::signal(w1, "-STOP");
    // w2 takes the run over once w1's lease has run out.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
        if c["worker"] == json!("w2") {
            break;
        }
        assert!(Instant::now() < deadline, "w2 never took it over: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crate::helpers::signal(w1, "-CONT");
    // From now on every look shows w2 and the takeover note, until the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let (_, c) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}"), None).await;
        assert_eq!(c["worker"], json!("w2"), "the woken worker's write landed: {c}");
        assert!(c["notes"].to_string().contains("taken over by worker w2"), "the takeover note is kept: {c}");
        if !c["completedAt"].is_null() {
            break c;
        }
        assert!(Instant::now() < deadline, "the run never finished: {c}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], json!("succeeded"), "{done}");
    let (_, records) = fleet.call(1, Method::GET, &format!("/sync-commands/{id}/records"), None).await;
    assert_eq!(done["taskCount"]["success"], records["count"], "{done}");
    fleet.assert_each_order_once();
}

/// A plugin swap through worker A reaches worker B: B's next batch maps
/// with the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_through_one_worker_reaches_the_others() {
    let sources = vec![source(340, "merchant-swap", 60, 50, 3000).await];
    let mut fleet = Fleet::new(sources, TargetSimConfig::default(), ferry_fixtures::VERSIONED_V1, "3s").await;
    fleet.start("a").await;
    fleet.start("b").await;
    let v2 = std::fs::read(ferry_fixtures::VERSIONED_V2).unwrap();
    let v2_digest = ferry::plugin::digest_of(&v2);
    let component = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &v2);
    let id = uuid::Uuid::new_v4().to_string();
    let (code, r) = fleet.call(0, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": component }))).await;
    assert_eq!((code, r["status"].as_str()), (201, Some("live")), "{r}");
    // The command is read, and replayed, through the other worker too.
    let (code, seen) = fleet.call(1, Method::GET, &format!("/plugin-commands/{id}"), None).await;
    assert_eq!((code, seen["status"].as_str(), seen["digest"].as_str()), (200, Some("live"), Some(v2_digest.as_str())), "{seen}");
    let (code, again) = fleet.call(1, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": component }))).await;
    assert_eq!((code, again["completedAt"].clone()), (200, r["completedAt"].clone()), "a replay through b changes nothing: {again}");
    let (code, _) = fleet.call(1, Method::PUT, &format!("/plugin-commands/{id}"), Some(json!({ "pipeline": "p00", "component": "AAAA" }))).await;
    assert_eq!(code, 409, "another body under the id, through b");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, p) = fleet.call(1, Method::GET, "/pipelines/p00", None).await;
        if p["plugin"]["digest"] == json!(v2_digest) {
            break;
        }
        assert!(Instant::now() < deadline, "worker b still runs {}", p["plugin"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stop a, so that b runs the next sync.
    let a = fleet.workers.remove(0);
    crate::helpers::signal(a.child.id(), "-TERM");
    drop(a);
    let sync = uuid::Uuid::new_v4().to_string();
    let (code, _) = fleet.call(0, Method::PUT, &format!("/sync-commands/{sync}"), sync_body("p00")).await;
    assert_eq!(code, 201);
    let done = fleet.wait_all(0, &[sync], Duration::from_secs(60)).await;
    assert_eq!((done[0]["status"].as_str(), done[0]["worker"].as_str()), (Some("succeeded"), Some("b")), "{}", done[0]);
    let landed = fleet.lanes[0].target.state.truth();
    assert!(!landed.records.is_empty() && landed.records.values().all(|r| r["_version"] == json!("2.0.0")), "b mapped with v2");
    // A restarted worker takes the cluster's live version, not its file's.
    fleet.start("c").await;
    let (_, p) = fleet.call(1, Method::GET, "/pipelines/p00", None).await;
    assert_eq!(p["plugin"]["digest"], json!(v2_digest));
}
