//! Idempotent writes: the Command target's replay rules, faults at the
//! target, crash-and-resume of the real binary, dead letters and replay.

use crate::helpers::{args, ferry_async, harness, source_config};
use ferry::pipeline::RunStatus;
use ferry_sim::target::{self, TargetFaults, TargetSimConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_target_replays_and_conflicts() {
    let t = target::start(TargetSimConfig::default(), 0).await.unwrap();
    let http = reqwest::Client::new();
    let id = uuid::Uuid::new_v4();
    let url = format!("{}/orders/{id}", t.url);
    let body = json!({"records": [{"id": "1", "amount": 1.5}, {"id": "2", "amount": -1}, {"amount": 3}]});
    let first = http.put(&url).json(&body).send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["taskCount"], json!({"failed": 2, "success": 1, "total": 3}));
    let again = http.put(&url).json(&body).send().await.unwrap();
    assert_eq!(again.status(), 200, "a replay answers 200");
    assert_eq!(again.json::<Value>().await.unwrap()["createdAt"], first["createdAt"]);
    let other = http.put(&url).json(&json!({"records": []})).send().await.unwrap();
    assert_eq!(other.status(), 409);
    let bad = http.put(format!("{}/orders/not-a-uuid", t.url)).json(&body).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("not a UUID"));
    let tasks: Value = http.get(format!("{url}/tasks")).send().await.unwrap().json().await.unwrap();
    let failed: Vec<&Value> = tasks["tasks"].as_array().unwrap().iter().filter(|t| t["status"] == "FAILED").collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["message"].as_str().unwrap().contains("negative"));
    let posted = http.post(format!("{}/orders", t.url)).json(&json!({"records": [{"id": "9"}]})).send().await.unwrap();
    assert_eq!(posted.status(), 201);
    assert!(uuid::Uuid::parse_str(posted.json::<Value>().await.unwrap()["id"].as_str().unwrap()).is_ok());
    let truth = t.state.truth();
    assert_eq!((truth.replays, truth.conflicts), (1, 1));
    assert_eq!(truth.deliveries.get("1"), Some(&1), "replay did not reprocess");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_faults_still_deliver_each_record_once() {
    let faults = TargetFaults { http500: 0.1, slow: 0.1, reset: 0.1, apply_then_500: 0.1, slow_delay: Duration::from_millis(2500) };
    let h = harness(
        source_config(21, "app-target-faults", 1500),
        TargetSimConfig { seed: 5, faults, completion_delay: Duration::from_millis(50), ..TargetSimConfig::default() },
    )
    .await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (20, 8);
    h.write(&s);
    let pipeline = ferry::pipeline::Pipeline::load(&h.file).unwrap();
    let runner = ferry::pipeline::Runner::new(pipeline, crate::helpers::engine(), false).unwrap();
    let summary = runner.run(ferry::pipeline::RunOptions::incremental()).await;
    assert_eq!(summary.status, RunStatus::Ok, "{}", summary.render());
    let landed = h.target.state.truth();
    assert!(landed.faults.values().sum::<u64>() >= 4, "faults were injected: {:?}", landed.faults);
    assert!(landed.faults.contains_key("apply_then_500"), "{:?}", landed.faults);
    assert!(h.missing().is_empty());
    assert!(h.each_once(), "each record applied exactly once");
    assert!(landed.replays > 0, "apply-then-500 was answered by a replay");
    assert_eq!(summary.delivered as usize, landed.records.len());
}

/// Two windows are read at once, and an order modified in the second that
/// ends one window and begins the next is in both: it is written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_a_window_edge_are_written_once() {
    let mut cfg = source_config(23, "app-window-edges", 600);
    // About one order a second, so most edges between 5 s windows hold one.
    cfg.from = cfg.until - jiff::SignedDuration::from_mins(10);
    let h = harness(cfg, TargetSimConfig::default()).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (20, 4);
    std::fs::write(&h.file, s.toml().replace("window = \"1d\"", "window = \"5s\"")).unwrap();
    let pipeline = ferry::pipeline::Pipeline::load(&h.file).unwrap();
    let runner = ferry::pipeline::Runner::new(pipeline, crate::helpers::engine(), false).unwrap();
    let summary = runner.run(ferry::pipeline::RunOptions::incremental()).await;
    assert_eq!(summary.status, RunStatus::Ok, "{}", summary.render());
    assert!(summary.windows >= 100, "{}", summary.render());
    assert!(summary.skipped_id_check >= 20, "edge orders were met twice and taken once: {}", summary.render());
    assert!(h.missing().is_empty());
    assert!(h.each_once(), "each record applied exactly once: doubled {:?}", h.target.state.truth().doubled());
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    eprintln!("kill point `{what}` not reached within {limit:?}; killing anyway");
    false
}

/// SIGKILL `ferry run` at several points; the next run must leave no order
/// missing and none applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_and_resume_never_loses_or_doubles() {
    for (point, seed) in [("after-fetch", 31u64), ("after-outbox", 32), ("mid-send", 33)] {
        let mut cfg = source_config(seed, &format!("app-crash-{point}"), 500);
        cfg.per_second = 20;
        let h = harness(cfg, TargetSimConfig { seed, completion_delay: Duration::from_millis(300), ..TargetSimConfig::default() }).await;
        let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
        (s.batch_size, s.concurrency) = (20, 2);
        let file = h.write(&s);
        let mut child = crate::helpers::ferry_command(&["run", &file]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let (src, tgt, state_path) = (h.source.state.clone(), h.target.state.clone(), h.state.clone());
        let pending = move || {
            use ferry::state::DataStore;
            ferry::state::SqliteStore::open(&state_path).ok().and_then(|s| s.pending("it-orders").ok()).is_some_and(|p| !p.is_empty())
        };
        let reached = tokio::task::spawn_blocking(move || match point {
            "after-fetch" => wait_until(point, Duration::from_secs(30), || src.stats().accepted >= 1),
            "after-outbox" => wait_until(point, Duration::from_secs(30), pending),
            _ => wait_until(point, Duration::from_secs(30), || tgt.truth().commands >= 3),
        })
        .await
        .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        eprintln!("{point}: reached {reached}, target had {} commands at the kill", h.target.state.truth().commands);

        let out = ferry_async(args(&["run", &file])).await;
        assert_eq!(out.status.code(), Some(0), "{point}: the resumed run finishes");
        assert!(h.missing().is_empty(), "{point}: missing {:?}", h.missing());
        assert!(h.each_once(), "{point}: a record applied twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_come_back_after_a_plugin_fix() {
    let h = harness(source_config(41, "app-dlq", 300), TargetSimConfig::default()).await;
    // v1 of the mapping: the declarative plugin with an amount the target refuses.
    let mut s = h.spec(ferry_fixtures::DECLARATIVE);
    s.mapping_options =
        r#"{ fields = [ { to = "id", from = "o_id", format = "string" }, { to = "modified", from = "modified" }, { to = "amount", value = -1 } ] }"#;
    let file = h.write(&s);
    let out = ferry_async(args(&["run", &file])).await;
    assert_eq!(out.status.code(), Some(1), "records went to dead letters");
    let listed = ferry_async(args(&["dlq", "list", &file, "--json"])).await;
    let dead: Vec<Value> = String::from_utf8_lossy(&listed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let confirmed = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").count();
    assert_eq!(dead.len(), confirmed);
    assert!(dead.iter().all(|d| d["reason"].as_str().unwrap().contains("must not be negative") && d["plugin"].as_str().unwrap().len() == 64));
    assert!(dead[0]["raw"].as_str().unwrap().contains("\"o_id\""), "the raw input is kept");

    // The fix: a new plugin (the shipped mapping); replay.
    s.plugin = ferry_fixtures::JUSHUITAN_ORDERS;
    s.mapping_options = "{}";
    h.write(&s);
    let out = ferry_async(args(&["dlq", "replay", &file])).await;
    assert_eq!(out.status.code(), Some(0));
    let listed = ferry_async(args(&["dlq", "list", &file])).await;
    assert!(String::from_utf8_lossy(&listed.stderr).contains("0 dead letters"));
    assert!(h.missing().is_empty());
    assert!(h.target.state.truth().records.values().all(|r| r["amount"].as_f64().unwrap() >= 0.0));
    let again = ferry_async(args(&["run", &file])).await;
    assert_eq!(again.status.code(), Some(0), "a later run has nothing new and no dead letters");
    assert!(String::from_utf8_lossy(&again.stdout).contains("dead letters           0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_dead_letters_its_batch() {
    let h = harness(source_config(51, "app-trap", 120), TargetSimConfig::default()).await;
    h.write(&h.spec(ferry_fixtures::VERSIONED_V3_BROKEN));
    let pipeline = ferry::pipeline::Pipeline::load(&h.file).unwrap();
    let runner = ferry::pipeline::Runner::new(pipeline, crate::helpers::engine(), false).unwrap();
    let summary = runner.run(ferry::pipeline::RunOptions::incremental()).await;
    assert_eq!(summary.status, RunStatus::Partial);
    assert_eq!(summary.failed_mapping, summary.fetched);
    let dead = runner.state.dead_letters("it-orders").unwrap();
    assert!(dead.iter().all(|d| d.reason.contains("broken on purpose") && d.reason.contains("versioned@3.0.0-broken")));
    assert_eq!(h.target.state.truth().commands, 0);
    assert!(runner.state.checkpoint("it-orders").unwrap().is_some(), "dead-lettered records are handled; the window completes");
}

/// A batch the plugin refuses with 2 MB of text leaves each record its own
/// reason, cut (not a 2 MB copy), and records without an `id`, or with a
/// forged second one, are dead letters naming it instead of a batch the
/// target could never confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_leave_short_dead_letters_and_no_jam() {
    for (act, says) in [("batch-error", "failed on this record alone"), ("no-id", "has no `id`"), ("dup-id", "`id` is given twice")] {
        let h = harness(source_config(52, "app-hostile-run", 60), TargetSimConfig::default()).await;
        let options = format!("{{ do = \"{act}\" }}");
        let mut spec = h.spec(ferry_fixtures::HOSTILE);
        (spec.mapping_options, spec.batch_size) = (&options, 20);
        h.write(&spec);
        let pipeline = ferry::pipeline::Pipeline::load(&h.file).unwrap();
        let runner = ferry::pipeline::Runner::new(pipeline, crate::helpers::engine(), false).unwrap();
        let summary = runner.run(ferry::pipeline::RunOptions::incremental()).await;
        assert_eq!((summary.status.as_str(), summary.failed_mapping), ("partial", summary.fetched), "{act}: {summary:?}");
        let dead = runner.state.dead_letters("it-orders").unwrap();
        assert!(!dead.is_empty());
        for d in &dead {
            assert!(d.reason.contains(says) && d.reason.len() <= 4096 + 512, "{act}: {} bytes: {}", d.reason.len(), &d.reason[..200.min(d.reason.len())]);
        }
        assert!(runner.state.pending("it-orders").unwrap().is_empty(), "{act}: nothing waits in the outbox");
        assert_eq!(h.target.state.truth().commands, 0, "{act}: nothing reached the target");
    }
}
