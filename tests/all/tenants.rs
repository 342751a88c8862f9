//! Two tenants on one `ferry serve` (the real binary). Tenant B floods the
//! host with hostile plugin swaps (a `describe` that sleeps, a 50 MB
//! `describe`, a compile bomb) and with syncs whose every record fails with
//! 4 MB of text, while tenant A syncs: A's sync finishes with every record
//! delivered once, no sleeping or bomb swap goes live, B's dead letters and tasks
//! stay small, the host's peak memory stays bounded, and SIGTERM ends it
//! within its grace.

use crate::helpers::{harness, source_config};
use crate::serve::{TOKEN_A, TOKEN_B};
use base64::Engine as _;
use ferry_sim::target::TargetSimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The host may hold at most this much at its peak (the flood once took 5.3 GB).
const PEAK_RSS: u64 = 1 << 30;

struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait_done(&self, id: &str, token: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (_, v) = self.call(Method::GET, &format!("/sync-commands/{id}"), token, None).await;
            if !v["completedAt"].is_null() {
                return v;
            }
            assert!(Instant::now() < deadline, "sync {id} did not finish within {within:?}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn component(path: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

/// A figure from `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).expect(key);
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_tenant_cannot_starve_another() {
    let h = harness(source_config(121, "app-flood", 300), TargetSimConfig::default()).await;
    let dir = h.dir.path();
    let (state_a, state_b) = (dir.join("a.db"), dir.join("b.db"));
    let mut spec = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    spec.batch_size = 20;
    spec.state = &state_a;
    std::fs::write(dir.join("a.toml"), spec.toml().replacen("name = \"it-orders\"", "name = \"a-orders\"\ntenant = \"a\"", 1)).unwrap();
    spec.plugin = ferry_fixtures::HOSTILE;
    spec.state = &state_b;
    spec.mapping_options = r#"{ do = "huge-error" }"#;
    std::fs::write(dir.join("b.toml"), spec.toml().replacen("name = \"it-orders\"", "name = \"b-orders\"\ntenant = \"b\"", 1)).unwrap();
    let serve_file = dir.join("serve.toml");
    std::fs::write(
        &serve_file,
        format!(
            "[api]\nshutdown_grace = \"5s\"\n[[pipelines]]\nfile = \"a.toml\"\n[[pipelines]]\nfile = \"b.toml\"\n\
             [[tokens]]\ntoken = \"{TOKEN_A}\"\ntenant = \"a\"\n[[tokens]]\ntoken = \"{TOKEN_B}\"\ntenant = \"b\"\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = crate::helpers::ferry_command(&["serve", serve_file.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .env("FERRY_COMPILE_TIMEOUT", "20s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let api = std::sync::Arc::new(Api { url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(format!("{}/readyz", api.url)).await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "serve never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // B floods: hostile swaps, eight at a time, and three failing syncs.
    let flood = {
        let api = api.clone();
        tokio::spawn(async move {
            let hostile = [ferry_fixtures::HOSTILE_SLEEP_DESCRIBE, ferry_fixtures::HOSTILE_HUGE_DESCRIBE, ferry_fixtures::COMPILE_BOMB].map(component);
            let mut syncs = Vec::new();
            for _ in 0..3 {
                let id = uuid::Uuid::new_v4().to_string();
                let (code, _) = api.call(Method::PUT, &format!("/sync-commands/{id}"), TOKEN_B, Some(json!({"pipeline": "b-orders"}))).await;
                assert_eq!(code, 201);
                syncs.push(id);
            }
            let mut answers = Vec::new();
            for round in 0..5 {
                let calls = (0..8).map(|i| {
                    let (api, body) = (api.clone(), json!({"pipeline": "b-orders", "component": hostile[(round * 8 + i) % 3]}));
                    async move { api.call(Method::PUT, &format!("/plugin-commands/{}", uuid::Uuid::new_v4()), TOKEN_B, Some(body)).await }
                });
                answers.extend(futures_util::future::join_all(calls).await);
            }
            (syncs, answers)
        })
    };

    // A's sync finishes with every record delivered once.
    let id = uuid::Uuid::new_v4().to_string();
    let (code, _) = api.call(Method::PUT, &format!("/sync-commands/{id}"), TOKEN_A, Some(json!({"pipeline": "a-orders"}))).await;
    assert_eq!(code, 201);
    let done = api.wait_done(&id, TOKEN_A, Duration::from_secs(120)).await;
    assert_eq!(done["status"], json!("succeeded"), "{done}");
    assert!(h.missing().is_empty(), "A's records all delivered");
    assert!(h.each_once(), "and each once");

    // Command ids are scoped per tenant: B may choose A's UUID for its own
    // command, and neither sees the other's.
    let (code, mine) = api.call(Method::PUT, &format!("/sync-commands/{id}"), TOKEN_B, Some(json!({"pipeline": "b-orders"}))).await;
    assert_eq!((code, mine["pipeline"].as_str()), (201, Some("b-orders")), "{mine}");
    let (_, theirs) = api.call(Method::GET, &format!("/sync-commands/{id}"), TOKEN_A, None).await;
    assert_eq!((theirs["pipeline"].as_str(), theirs["status"].as_str()), (Some("a-orders"), Some("succeeded")), "{theirs}");

    // B's sleeping and bomb swaps were refused with their reasons; the
    // 50 MB describe went live with its name cut.
    let (syncs, answers) = flood.await.unwrap();
    for (code, answer) in &answers {
        match answer["status"].as_str() {
            Some("live") => assert!(answer["plugin"].as_str().unwrap().contains("…cut, 52428800 bytes"), "{answer}"),
            _ => assert_eq!(answer["status"], json!("rejected"), "{code} {answer}"),
        }
    }
    assert_eq!(answers.iter().filter(|(_, a)| a["status"] == json!("rejected")).count(), 27, "the sleeping and bomb swaps (27 of 40)");
    let reasons: Vec<&str> = answers.iter().filter_map(|(_, a)| a["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("plugins may not wait")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("compile time limit") || r.contains("compile memory limit")), "{reasons:?}");
    assert!(answers.iter().all(|(_, a)| a.to_string().len() < 16 << 10), "every answer is small");

    // B's syncs end; their failures are kept small.
    for (i, id) in syncs.iter().enumerate() {
        let done = api.wait_done(id, TOKEN_B, Duration::from_secs(120)).await;
        // The first fails every record; the next ones find nothing new.
        assert_eq!(done["status"], json!(if i == 0 { "partial" } else { "succeeded" }), "{done}");
        let (_, tasks) = api.call(Method::GET, &format!("/sync-commands/{id}/tasks?limit=500"), TOKEN_B, None).await;
        assert!(tasks.to_string().len() < (tasks["tasks"].as_array().unwrap().len() + 1) * (9 << 10), "tasks stay small");
    }
    let (_, dead) = api.call(Method::GET, "/pipelines/b-orders/dead-letters?limit=500", TOKEN_B, None).await;
    assert!(dead["total"].as_u64().unwrap() > 0, "{dead}");
    for d in dead["items"].as_array().unwrap() {
        assert!(d["reason"].as_str().unwrap().len() < 9 << 10, "a dead letter's reason is cut");
    }
    let (code, _) = api.call(Method::GET, "/pipelines/b-orders/dead-letters", TOKEN_A, None).await;
    assert_eq!(code, 404, "A cannot see B's pipeline");

    let peak = status_bytes(pid, "VmHWM:");
    assert!(peak < PEAK_RSS, "ferry serve peaked at {peak} bytes");

    // SIGTERM ends the host within its grace.
    crate::helpers::signal(pid, "-TERM");
    let status = crate::helpers::wait_exit(child, Duration::from_secs(30)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "SIGTERM stops serve within its grace");
}
