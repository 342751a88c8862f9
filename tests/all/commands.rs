//! Commands as objects (seed 001): history that survives restarts, a
//! cancellable queue, undo for plugin swaps, delivered records, and the
//! plugin history/rollback CLI.

use crate::helpers::{args, ferry_async, harness, source_config};
use crate::serve::{Server, TOKEN_A, TOKEN_B};
use base64::Engine as _;
use ferry_sim::target::TargetSimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn component(path: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn digest(path: &str) -> String {
    ferry::plugin::digest_of(&std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_and_lists_by_tenant() {
    let h = harness(source_config(101, "app-history", 100), TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let first = uuid::Uuid::new_v4().to_string();
    s.call(Method::PUT, &format!("/sync-commands/{first}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    let done = s.wait_done(&first).await;
    let second = uuid::Uuid::new_v4().to_string();
    s.call(Method::PUT, &format!("/sync-commands/{second}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "since": "2024-01-01 00:00:00"}))).await;
    s.wait_done(&second).await;
    let (_, records) = s.call(Method::GET, &format!("/sync-commands/{first}/records"), Some(TOKEN_A), None).await;
    assert_eq!(records["count"], done["taskCount"]["success"], "{records}");
    assert_eq!(records["records"].as_array().unwrap().len() as u64, records["count"].as_u64().unwrap());
    let pid = uuid::Uuid::new_v4().to_string();
    let (code, _) = s
        .call(
            Method::PUT,
            &format!("/plugin-commands/{pid}"),
            Some(TOKEN_A),
            Some(json!({"pipeline": "it-orders", "component": component(ferry_fixtures::DECLARATIVE)})),
        )
        .await;
    assert_eq!(code, 201);
    s.stop().await;

    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let (code, page) = s.call(Method::GET, "/sync-commands", Some(TOKEN_A), None).await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()], "newest first, after a restart");
    let item = &page["items"][1];
    assert_eq!((item["tenant"].as_str(), item["status"].as_str()), (Some("a"), Some("succeeded")));
    assert_eq!(item["input"], json!({"pipeline": "it-orders"}));
    assert_eq!(item["taskCount"], done["taskCount"]);
    assert!(item["completedAt"].is_string() && item["createdAt"].is_string());
    assert_eq!(page["items"][0]["input"]["since"], json!("2024-01-01 00:00:00"));
    let (_, paged) = s.call(Method::GET, "/sync-commands?limit=1&offset=1", Some(TOKEN_A), None).await;
    assert_eq!((paged["total"].as_u64(), paged["items"][0]["id"].as_str()), (Some(2), Some(first.as_str())));
    let (_, none) = s.call(Method::GET, "/sync-commands?status=failed", Some(TOKEN_A), None).await;
    assert_eq!(none["total"], json!(0));
    let (_, future) = s.call(Method::GET, "/sync-commands?since=2100-01-01%2000:00:00", Some(TOKEN_A), None).await;
    assert_eq!(future["total"], json!(0));
    let (code, _) = s.call(Method::GET, "/sync-commands?limit=many", Some(TOKEN_A), None).await;
    assert_eq!(code, 400);
    let (code, one) = s.call(Method::GET, &format!("/sync-commands/{first}"), Some(TOKEN_A), None).await;
    assert_eq!((code, &one["taskCount"]), (200, &done["taskCount"]));
    let (_, plugins) = s.call(Method::GET, "/plugin-commands", Some(TOKEN_A), None).await;
    assert_eq!(plugins["items"][0]["id"], json!(pid));
    assert_eq!(plugins["items"][0]["status"], json!("rejected"), "declarative without options is rejected: {plugins}");

    // Tenant isolation on every listing and action.
    let (_, theirs) = s.call(Method::GET, "/sync-commands", Some(TOKEN_B), None).await;
    assert_eq!(theirs["total"], json!(0));
    let (_, theirs) = s.call(Method::GET, "/plugin-commands", Some(TOKEN_B), None).await;
    assert_eq!(theirs["total"], json!(0));
    for (method, path) in [
        (Method::GET, "/sync-commands?pipeline=it-orders".to_string()),
        (Method::GET, format!("/sync-commands/{first}/records")),
        (Method::DELETE, format!("/sync-commands/{first}")),
        (Method::POST, format!("/plugin-commands/{pid}/undo")),
    ] {
        let (code, _) = s.call(method.clone(), &path, Some(TOKEN_B), None).await;
        assert_eq!(code, 404, "another tenant's resources answer like missing ones: {method} {path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commands_cancel_and_started_ones_refuse() {
    let mut cfg = source_config(102, "app-cancel", 400);
    cfg.per_second = 20;
    let h = harness(cfg, TargetSimConfig { completion_delay: Duration::from_millis(200), ..TargetSimConfig::default() }).await;
    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let (a, b) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    s.call(Method::PUT, &format!("/sync-commands/{a}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    // Under load the worker may not have taken `a` yet: wait until it has,
    // so that `b` is the only one queued.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let (_, first) = s.call(Method::GET, &format!("/sync-commands/{a}"), Some(TOKEN_A), None).await;
        if first["status"] != json!("queued") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The running sync says where it is: windows done of planned.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut live = Value::Null;
    while std::time::Instant::now() < deadline {
        let (_, p) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await;
        if p["live"]["windowsPlanned"].as_u64().is_some_and(|n| n > 0) {
            live = p["live"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let planned = live["windowsPlanned"].as_u64().expect("the running sync shows the windows it planned");
    assert!(live["windowsDone"].as_u64().unwrap() <= planned, "{live}");
    // So does the command resource, while it runs; and once done, it has no progress.
    let (_, running) = s.call(Method::GET, &format!("/sync-commands/{a}"), Some(TOKEN_A), None).await;
    if running["status"] == json!("running") {
        assert_eq!(running["progress"]["windowsPlanned"].as_u64(), Some(planned), "{running}");
    }
    let (_, queued) = s.call(Method::PUT, &format!("/sync-commands/{b}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    assert_eq!((queued["status"].as_str(), queued["queuePosition"].as_u64()), (Some("queued"), Some(1)), "{queued}");
    let (code, cancelled) = s.call(Method::DELETE, &format!("/sync-commands/{b}"), Some(TOKEN_A), None).await;
    assert_eq!((code, cancelled["status"].as_str()), (200, Some("cancelled")));
    let (code, again) = s.call(Method::DELETE, &format!("/sync-commands/{b}"), Some(TOKEN_A), None).await;
    assert_eq!((code, &again["completedAt"]), (200, &cancelled["completedAt"]), "cancelling twice is harmless");
    let (code, err) = s.call(Method::DELETE, &format!("/sync-commands/{a}"), Some(TOKEN_A), None).await;
    assert_eq!(code, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("already started"));
    let (code, err) = s.call(Method::POST, "/pipelines/it-orders/dead-letters/replay", Some(TOKEN_A), None).await;
    assert_eq!(code, 409, "a replay does not write beside a running sync: {err}");
    s.wait_done(&a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, p) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await;
    assert_eq!(p["lastRuns"].as_array().unwrap().len(), 1, "the cancelled command never ran");
    let (_, a_done) = s.call(Method::GET, &format!("/sync-commands/{a}"), Some(TOKEN_A), None).await;
    assert!(a_done["progress"].is_null(), "{a_done}");
    let (_, b_now) = s.call(Method::GET, &format!("/sync-commands/{b}"), Some(TOKEN_A), None).await;
    assert_eq!(b_now["status"], json!("cancelled"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_puts_the_previous_version_back() {
    let h = harness(source_config(103, "app-undo", 60), TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::VERSIONED_V1, None).await;
    let put = |plugin: &'static str| {
        let id = uuid::Uuid::new_v4().to_string();
        let s = &s;
        async move {
            let (code, r) = s
                .call(Method::PUT, &format!("/plugin-commands/{id}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "component": component(plugin)})))
                .await;
            assert_eq!((code, r["status"].as_str()), (201, Some("live")), "{r}");
            id
        }
    };
    let to_v2 = put(ferry_fixtures::VERSIONED_V2).await;
    let to_orders = put(ferry_fixtures::JUSHUITAN_ORDERS).await;
    let undo = |id: &str| {
        let path = format!("/plugin-commands/{id}/undo");
        let s = &s;
        async move { s.call(Method::POST, &path, Some(TOKEN_A), None).await }
    };
    let (code, err) = undo(&to_v2).await;
    assert_eq!(code, 409);
    assert!(err["error"].as_str().unwrap().contains(&to_orders), "the refusal names the later command: {err}");
    let (code, r) = undo(&to_orders).await;
    assert_eq!((code, r["status"].as_str()), (200, Some("undone")), "{r}");
    async fn live(s: &Server) -> Value {
        s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await.1["plugin"]["digest"].clone()
    }
    assert_eq!(live(&s).await, json!(digest(ferry_fixtures::VERSIONED_V2)));
    let (code, again) = undo(&to_orders).await;
    assert_eq!((code, &again["undoneAt"]), (200, &r["undoneAt"]), "undoing twice is a no-op");
    assert_eq!(live(&s).await, json!(digest(ferry_fixtures::VERSIONED_V2)));
    let (code, _) = undo(&to_v2).await;
    assert_eq!(code, 200, "no longer superseded once the later swap is undone");
    assert_eq!(live(&s).await, json!(digest(ferry_fixtures::VERSIONED_V1)));
    // The next batch runs on the restored version.
    let (_, r) = s.call(Method::POST, "/sync-commands", Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    s.wait_done(r["id"].as_str().unwrap()).await;
    let landed = h.target.state.truth();
    assert!(!landed.records.is_empty() && landed.records.values().all(|r| r["_version"] == json!("1.0.0")));
    s.stop().await;

    // The same history from the CLI, and a rollback that goes through the checks.
    let file = h.file.to_str().unwrap().to_string();
    let out = ferry_async(args(&["plugin", "history", &file])).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for origin in ["from file", "from plugin command", "from undo of plugin command"] {
        assert!(text.contains(origin), "history lacks `{origin}`:\n{text}");
    }
    let plugin_file = h.dir.path().join("plugin.wasm");
    std::fs::copy(ferry_fixtures::VERSIONED_V1, &plugin_file).unwrap();
    let mut spec = h.spec(plugin_file.to_str().unwrap());
    spec.batch_size = 20;
    let pipeline = spec.toml().replace("name = \"it-orders\"", "name = \"it-orders\"\ntenant = \"a\"");
    std::fs::write(&h.file, pipeline).unwrap();
    let out = ferry_async(args(&["plugin", "rollback", &file])).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        ferry::plugin::digest_of(&std::fs::read(&plugin_file).unwrap()),
        digest(ferry_fixtures::VERSIONED_V2),
        "rolled back to the version before v1's return"
    );
    let v: Value = json!(String::from_utf8_lossy(&out.stdout));
    assert!(v.as_str().unwrap().contains("versioned@2.0.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_replay_through_the_api_after_a_plugin_fix() {
    let h = harness(source_config(104, "app-api-replay", 80), TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::VERSIONED_V3_BROKEN, None).await;
    let (_, r) = s.call(Method::POST, "/sync-commands", Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    let done = s.wait_done(r["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], json!("partial"), "{done}");
    let (_, dead) = s.call(Method::GET, "/pipelines/it-orders/dead-letters", Some(TOKEN_A), None).await;
    let n = dead["total"].as_u64().unwrap() as usize;
    assert!(n > 0 && dead["items"][0]["reason"].as_str().unwrap().contains("broken on purpose"), "{dead}");
    let (_, page) = s.call(Method::GET, "/pipelines/it-orders/dead-letters?limit=2&offset=1", Some(TOKEN_A), None).await;
    assert_eq!((page["items"].as_array().unwrap().len(), page["total"].as_u64()), (2.min(n - 1), Some(n as u64)), "paged");
    assert_eq!(page["items"][0]["id"], dead["items"][1]["id"], "the page starts at its offset");
    let (code, _) = s.call(Method::GET, "/pipelines/it-orders/dead-letters?limit=many", Some(TOKEN_A), None).await;
    assert_eq!(code, 400);
    let (code, _) = s.call(Method::GET, "/pipelines/it-orders/dead-letters", Some(TOKEN_B), None).await;
    assert_eq!(code, 404);
    let (code, r) = s
        .call(
            Method::PUT,
            &format!("/plugin-commands/{}", uuid::Uuid::new_v4()),
            Some(TOKEN_A),
            Some(json!({"pipeline": "it-orders", "component": component(ferry_fixtures::VERSIONED_V2)})),
        )
        .await;
    assert_eq!((code, r["status"].as_str()), (201, Some("live")));
    let (code, report) = s.call(Method::POST, "/pipelines/it-orders/dead-letters/replay", Some(TOKEN_A), None).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!((report["total"].as_u64(), report["resolved"].as_u64()), (Some(n as u64), Some(n as u64)));
    let (_, dead) = s.call(Method::GET, "/pipelines/it-orders/dead-letters", Some(TOKEN_A), None).await;
    assert_eq!((dead["items"].clone(), dead["total"].as_u64()), (json!([]), Some(0)));
    assert!(h.missing().is_empty() && h.each_once());
    let (_, swaps) = s.call(Method::GET, "/pipelines/it-orders/plugin-history", Some(TOKEN_A), None).await;
    assert_eq!((swaps["items"].as_array().unwrap().len(), swaps["total"].as_u64()), (2, Some(2)), "{swaps}");
    s.stop().await;
}
