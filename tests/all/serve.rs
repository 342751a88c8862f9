//! `ferry serve`: idempotent commands, tenant isolation, a plugin swap
//! through the API during scheduled syncs (metrics, health, OpenAPI, the
//! listener and SIGTERM are in `serve_ops`); the in-process server the
//! other API tests use.

use crate::helpers::{Harness, harness, source_config};
use ferry::api::{self, ServeConfig};
use ferry_sim::target::TargetSimConfig;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const TOKEN_A: &str = "token-tenant-a-123";
pub const TOKEN_B: &str = "token-tenant-b-456";

pub struct Server {
    pub url: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(h: &Harness, plugin: &str, every: Option<&str>) -> Server {
        Server::start_with(h, plugin, every, "").await
    }

    /// With `extra` appended to the serve file (e.g. an `[api]` table).
    pub async fn start_with(h: &Harness, plugin: &str, every: Option<&str>, extra: &str) -> Server {
        let every = every.map(|e| format!("every = \"{e}\"\n")).unwrap_or_default();
        Server::start_entry(h, plugin, &every, extra).await
    }

    /// With `entry` in the pipeline's `[[pipelines]]` table and `extra`
    /// appended to the serve file.
    pub async fn start_entry(h: &Harness, plugin: &str, entry: &str, extra: &str) -> Server {
        let mut spec = h.spec(plugin);
        (spec.batch_size, spec.concurrency) = (20, 2);
        // The target's lookup is set (only reconciliation uses it).
        let lookup = format!("[target]\nlookup = \"{}/records/order-commands/{{id}}\"\n", h.target.url);
        let pipeline = spec.toml().replace("name = \"it-orders\"", "name = \"it-orders\"\ntenant = \"a\"").replace("[target]\n", &lookup);
        std::fs::write(&h.file, pipeline).unwrap();
        let serve = format!(
            "listen = \"127.0.0.1:0\"\n[[pipelines]]\nfile = \"p.toml\"\n{entry}\n[[tokens]]\ntoken = \"{TOKEN_A}\"\ntenant = \"a\"\n[[tokens]]\ntoken = \"{TOKEN_B}\"\ntenant = \"b\"\n{extra}"
        );
        let serve_file = h.dir.path().join("serve.toml");
        std::fs::write(&serve_file, serve).unwrap();
        Server::from_file(&serve_file).await
    }

    /// `ferry serve` of `serve_file`, in process.
    pub async fn from_file(serve_file: &std::path::Path) -> Server {
        let config = ServeConfig::load(serve_file).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = api::state(&config, crate::helpers::engine(), stop_rx).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            api::serve(state, listener, stop_tx, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server { url, http: reqwest::Client::new(), stop: Some(tx), task }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn wait_done(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self.call(reqwest::Method::GET, &format!("/sync-commands/{id}"), Some(TOKEN_A), None).await;
            if !v["completedAt"].is_null() {
                return v;
            }
            assert!(Instant::now() < deadline, "sync {id} did not finish: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_commands_are_idempotent() {
    let h = harness(source_config(91, "app-serve-idem", 300), TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let id = uuid::Uuid::new_v4().to_string();
    let path = format!("/sync-commands/{id}");
    let body = json!({"pipeline": "it-orders"});
    // A reversed range is refused, naming both ends.
    let reversed = json!({"pipeline": "it-orders", "since": "2024-03-02 00:00:00", "until": "2024-03-01 00:00:00"});
    let (code, err) = s.call(Method::PUT, &format!("/sync-commands/{}", uuid::Uuid::new_v4()), Some(TOKEN_A), Some(reversed)).await;
    assert_eq!(code, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("since 2024-03-02T00:00:00+08:00 is not before until 2024-03-01T00:00:00+08:00"), "{err}");
    // A concurrent double PUT of the same id starts one run.
    let (a, b) = tokio::join!(s.call(Method::PUT, &path, Some(TOKEN_A), Some(body.clone())), s.call(Method::PUT, &path, Some(TOKEN_A), Some(body.clone())));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [200, 201], "{a:?} {b:?}");
    assert_eq!(a.1["createdAt"], b.1["createdAt"]);
    assert!(a.1["completedAt"].is_null() || b.1["completedAt"].is_null());
    let done = s.wait_done(&id).await;
    assert_eq!(done["status"], json!("succeeded"), "{done}");
    let confirmed = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").count() as u64;
    assert_eq!(done["taskCount"], json!({"failed": 0, "success": confirmed, "total": confirmed}));
    let (code, again) = s.call(Method::PUT, &path, Some(TOKEN_A), Some(body.clone())).await;
    assert_eq!((code, &again["completedAt"]), (200, &done["completedAt"]), "a replay after the run does not run again");
    let (code, _) = s.call(Method::PUT, &path, Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "since": "2024-01-01 00:00:00"}))).await;
    assert_eq!(code, 409);
    let (code, err) = s.call(Method::PUT, "/sync-commands/not-a-uuid", Some(TOKEN_A), Some(body.clone())).await;
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap().contains("not a UUID"));
    let (code, _) = s.call(Method::PUT, &format!("/sync-commands/{}", uuid::Uuid::new_v4()), Some(TOKEN_A), Some(json!({"pipelin": "x"}))).await;
    assert_eq!(code, 400);
    let (code, posted) = s.call(Method::POST, "/sync-commands", Some(TOKEN_A), Some(body.clone())).await;
    assert_eq!(code, 201);
    s.wait_done(posted["id"].as_str().unwrap()).await;
    let (_, pipeline) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await;
    assert_eq!(pipeline["lastRuns"].as_array().unwrap().len(), 2, "two commands, two runs: {pipeline}");
    assert!(h.missing().is_empty() && h.each_once());
    let (_, tasks) = s.call(Method::GET, &format!("{path}/tasks"), Some(TOKEN_A), None).await;
    assert_eq!(tasks, json!({"tasks": [], "total": 0, "limit": 50, "offset": 0}));

    // Plugin commands: 201 live, 200 replay, 409 different body, rejected with a reason.
    let bytes = std::fs::read(ferry_fixtures::JUSHUITAN_ORDERS).unwrap();
    use base64::Engine as _;
    let component = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let pid = format!("/plugin-commands/{}", uuid::Uuid::new_v4());
    let pbody = json!({"pipeline": "it-orders", "component": component});
    let (code, r) = s.call(Method::PUT, &pid, Some(TOKEN_A), Some(pbody.clone())).await;
    assert_eq!((code, r["status"].as_str()), (201, Some("live")), "{r}");
    let (code, _) = s.call(Method::PUT, &pid, Some(TOKEN_A), Some(pbody.clone())).await;
    assert_eq!(code, 200);
    let (code, _) = s.call(Method::PUT, &pid, Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "component": "AAAA"}))).await;
    assert_eq!(code, 409);
    let (code, _) = s.call(Method::PUT, "/plugin-commands/nope", Some(TOKEN_A), Some(pbody.clone())).await;
    assert_eq!(code, 400, "a plugin command needs a UUID");
    let (code, err) = s
        .call(
            Method::PUT,
            &format!("/plugin-commands/{}", uuid::Uuid::new_v4()),
            Some(TOKEN_A),
            Some(json!({"pipeline": "it-orders", "component": "not base64!"})),
        )
        .await;
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap().contains("base64"));
    let bad = json!({"pipeline": "it-orders", "component": base64::engine::general_purpose::STANDARD.encode(b"\0asm\x01\0\0\0")});
    let (code, r) = s.call(Method::PUT, &format!("/plugin-commands/{}", uuid::Uuid::new_v4()), Some(TOKEN_A), Some(bad)).await;
    assert_eq!((code, r["status"].as_str()), (201, Some("rejected")));
    assert!(r["reason"].as_str().unwrap().contains("core WebAssembly module"), "{r}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_and_act_on_their_own_pipelines_only() {
    let h = harness(source_config(92, "app-serve-tenant", 50), TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let (code, _) = s.call(Method::GET, "/pipelines", None, None).await;
    assert_eq!(code, 401);
    let (code, _) = s.call(Method::GET, "/pipelines", Some("wrong-token-000"), None).await;
    assert_eq!(code, 401);
    let (_, mine) = s.call(Method::GET, "/pipelines", Some(TOKEN_A), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (_, theirs) = s.call(Method::GET, "/pipelines", Some(TOKEN_B), None).await;
    assert_eq!(theirs, json!([]));
    let (code, theirs) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_B), None).await;
    let (_, unknown) = s.call(Method::GET, "/pipelines/no-such-pipeline", Some(TOKEN_B), None).await;
    assert_eq!(code, 404, "another tenant's pipeline answers like a missing one");
    assert_eq!(theirs["error"].as_str().map(|e| e.replace("it-orders", "X")), unknown["error"].as_str().map(|e| e.replace("no-such-pipeline", "X")));
    let id = uuid::Uuid::new_v4();
    let (code, _) = s.call(Method::PUT, &format!("/sync-commands/{id}"), Some(TOKEN_B), Some(json!({"pipeline": "it-orders"}))).await;
    assert_eq!(code, 404, "B cannot run A's pipeline");
    let (code, _) = s.call(Method::PUT, &format!("/sync-commands/{id}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    assert_eq!(code, 201);
    let (code, _) = s.call(Method::GET, &format!("/sync-commands/{id}"), Some(TOKEN_B), None).await;
    assert_eq!(code, 404, "B cannot read A's command");
    let (code, _) = s
        .call(Method::PUT, &format!("/plugin-commands/{}", uuid::Uuid::new_v4()), Some(TOKEN_B), Some(json!({"pipeline": "it-orders", "component": "AAAA"})))
        .await;
    assert_eq!(code, 404, "B cannot swap A's plugin");
    s.wait_done(&id.to_string()).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_swap_through_the_api_during_scheduled_syncs() {
    let mut cfg = source_config(93, "app-serve-swap", 600);
    cfg.per_second = 20;
    cfg.mutation = ferry_sim::jushuitan::Mutation { changes_per_request: 0.5, new_per_request: 0.5, ..Default::default() };
    let h = harness(cfg, TargetSimConfig { completion_delay: Duration::from_millis(100), ..TargetSimConfig::default() }).await;
    let s = Server::start(&h, ferry_fixtures::VERSIONED_V1, Some("1s")).await;
    // Wait until the scheduled sync has delivered something on v1, then swap.
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.target.state.truth().commands < 3 {
        assert!(Instant::now() < deadline, "the schedule did not start a sync");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    use base64::Engine as _;
    let component = base64::engine::general_purpose::STANDARD.encode(std::fs::read(ferry_fixtures::VERSIONED_V2).unwrap());
    let (code, r) = s
        .call(Method::PUT, &format!("/plugin-commands/{}", uuid::Uuid::new_v4()), Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "component": component})))
        .await;
    assert_eq!((code, r["status"].as_str()), (201, Some("live")), "{r}");
    let swapped_at = h.target.state.truth().commands;
    // Let scheduled syncs pick up the changes made meanwhile, then stop changing and drain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.source.state.set_mutation(ferry_sim::jushuitan::Mutation::default());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, p) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await;
        if p["running"].is_null() && p["queued"] == json!(0) && h.missing().is_empty() {
            assert_eq!(p["plugin"]["version"], json!("2.0.0"));
            break;
        }
        assert!(Instant::now() < deadline, "scheduled syncs did not catch up: missing {:?}", h.missing());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
    let landed = h.target.state.truth();
    assert!(landed.doubled().is_empty(), "no version applied twice: {:?}", landed.doubled());
    let versions: std::collections::BTreeSet<&str> = landed.records.values().filter_map(|r| r["_version"].as_str()).collect();
    assert!(versions.contains("1.0.0") && versions.contains("2.0.0"), "{versions:?}");
    assert!(landed.commands > swapped_at, "batches ran after the swap");
    let changed: Vec<_> = h.source.state.truth().orders.into_iter().filter(|o| o.ts > 600 && o.status == "Confirmed").collect();
    assert!(!changed.is_empty());
    for o in changed {
        let r = &landed.records[&o.o_id.to_string()];
        assert_eq!(r["_version"], json!("2.0.0"), "order {} changed after the swap carries the new version", o.o_id);
    }
}
