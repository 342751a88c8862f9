//! `ferry serve` as operators meet it: metrics (labels, histograms),
//! health, the OpenAPI document, SIGTERM, and the listener's bounds.

use crate::helpers::{harness, source_config};
use crate::serve::{Server, TOKEN_A};
use ferry_sim::target::TargetSimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_openapi() {
    let mut cfg = source_config(94, "app-serve-ops", 300);
    cfg.per_second = 5;
    let h = harness(cfg, TargetSimConfig::default()).await;
    let s = Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let (code, _) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(code, 200);
    let (code, _) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(code, 200);
    let (_, r) = s.call(Method::POST, "/sync-commands", Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    s.wait_done(r["id"].as_str().unwrap()).await;
    let (code, text) = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(code, 200);
    let text = text.as_str().unwrap().to_string();
    for name in [
        "ferry_source_requests_total",
        "ferry_records_total",
        "ferry_plugin_batch_seconds",
        "ferry_batch_send_seconds",
        "ferry_commands_total",
        "ferry_plugin_fuel_total",
        "ferry_rate_limit_waits_total",
    ] {
        assert!(text.contains(name), "metrics lack {name}");
    }
    // Labelled by pipeline and tenant, and real histograms (buckets), not summaries.
    for want in [
        "ferry_run_records_total{pipeline=\"it-orders\",tenant=\"a\",outcome=\"delivered\"}",
        "ferry_runs_total{pipeline=\"it-orders\",tenant=\"a\",status=\"ok\"}",
        "ferry_run_duration_seconds_bucket{pipeline=\"it-orders\",tenant=\"a\",le=\"",
        "ferry_records_total{outcome=\"delivered\",pipeline=\"it-orders\"}",
        "ferry_source_request_seconds_bucket{app_key=\"app-serve-ops\",le=\"",
        "ferry_checkpoint_lag_seconds{pipeline=\"it-orders\",tenant=\"a\"}",
        // (values are not compared: other tests' servers in this process share the recorder)
        "ferry_queue_length{pipeline=\"it-orders\",tenant=\"a\"}",
        "ferry_last_success_timestamp_seconds{pipeline=\"it-orders\",tenant=\"a\"}",
    ] {
        assert!(text.contains(want), "metrics lack {want}:\n{text}");
    }
    assert!(!text.contains("quantile="), "no summaries: quantiles are the reader's to compute");
    let (code, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(code, 200);
    for path in ["/sync-commands/{id}", "/sync-commands", "/sync-commands/{id}/tasks", "/plugin-commands/{id}", "/pipelines", "/pipelines/{name}"] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert!(!text.contains(TOKEN_A));
    s.stop().await;
}

/// The real binary: ready, then SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_stops_on_sigterm() {
    let h = harness(source_config(95, "app-serve-term", 50), TargetSimConfig::default()).await;
    let mut spec = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    spec.batch_size = 20;
    std::fs::write(&h.file, spec.toml()).unwrap();
    let serve_file = h.dir.path().join("serve.toml");
    std::fs::write(&serve_file, format!("[[pipelines]]\nfile = \"p.toml\"\n[[tokens]]\ntoken = \"{TOKEN_A}\"\ntenant = \"default\"\n")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = crate::helpers::ferry_command(&["serve", serve_file.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(format!("{url}/readyz")).await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "serve never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pipelines: Value = reqwest::Client::new().get(format!("{url}/pipelines")).bearer_auth(TOKEN_A).send().await.unwrap().json().await.unwrap();
    assert_eq!(pipelines[0]["name"], json!("it-orders"), "pipelines without a tenant belong to `default`");
    crate::helpers::signal(child.id(), "-TERM");
    let status = crate::helpers::wait_exit(child, Duration::from_secs(30)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "SIGTERM stops serve cleanly");
}

/// Connections that send nothing are closed after `header_timeout`; past
/// `max_connections` a new one is closed at once; the API then answers as
/// before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_excess_connections_are_bounded() {
    use tokio::io::AsyncReadExt;
    let h = harness(source_config(12, "app-serve-slow", 50), TargetSimConfig::default()).await;
    let s =
        Server::start_with(&h, ferry_fixtures::JUSHUITAN_ORDERS, None, "[api]\nmax_connections = 6\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\n").await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The seventh is closed at once.
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an excess connection is closed: {read:?}");
    // The idle ones are closed by the header timeout.
    let started = Instant::now();
    for mut c in idle {
        let read = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an idle connection is closed: {read:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let (code, _) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(code, 200);
    // A body that stalls is refused after the body timeout, saying so.
    use tokio::io::AsyncWriteExt;
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /sync-commands/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN_A}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        uuid::Uuid::new_v4()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer)).await.expect("answered in time").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 4") && answer.contains("not received within"), "{answer}");
    s.stop().await;
}
