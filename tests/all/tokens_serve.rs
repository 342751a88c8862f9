//! Access tokens in `ferry serve`: an app that needs re-authorization is
//! paused while the others sync, a token is kept fresh between runs, and
//! one token in two state stores is refused.

use super::tokens::{KEY, expires_in, tokened, write};
use crate::helpers::{ferry_command, harness, source_config, wait_exit};
use ferry_sim::target::TargetSimConfig;
use std::time::Duration;

/// `ferry serve` with a service-provider app whose token runs out beside a
/// plain app: the first is shown as needing re-authorization (pipeline
/// view, metric) and its schedule pauses; the other keeps syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_pauses_an_app_that_needs_reauthorization_and_serves_the_others() {
    let lifetime = Duration::from_secs(3);
    let provider = harness(tokened(308, "app-serve-provider", 60, lifetime, true), TargetSimConfig::default()).await;
    let plain = harness(source_config(309, "app-serve-plain", 60), TargetSimConfig::default()).await;
    let lines = vec!["refresh_token = \"ferry-demo-refresh\"".to_string(), expires_in(lifetime), "token_refresh_margin = \"2s\"".into()];
    let text = std::fs::read_to_string(write(&provider, &lines)).unwrap().replacen("name = \"it-orders\"", "name = \"provider\"", 1);
    std::fs::write(provider.dir.path().join("provider.toml"), text).unwrap();
    let text = plain.spec(ferry_fixtures::JUSHUITAN_ORDERS).toml().replacen("name = \"it-orders\"", "name = \"plain\"", 1);
    std::fs::write(provider.dir.path().join("plain.toml"), text).unwrap();
    let serve_file = provider.dir.path().join("serve.toml");
    let text = "[[pipelines]]\nfile = \"provider.toml\"\nevery = \"1s\"\n[[pipelines]]\nfile = \"plain.toml\"\nevery = \"1s\"\n[[tokens]]\ntoken = \"t-0123456789\"\ntenant = \"default\"\n";
    std::fs::write(&serve_file, text).unwrap();
    let (child, url) = serve(&serve_file);
    let http = reqwest::Client::new();
    let view = |name: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(format!("{url}/pipelines/{name}")).bearer_auth("t-0123456789").send().await.ok()?;
            r.json::<serde_json::Value>().await.ok()
        }
    };
    // Wait (at most 40 s) for the provider app's token to need the merchant.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        if let Some(v) = view("provider").await
            && v["token"]["state"] == "needs_reauthorization"
        {
            seen = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.expect("the provider app's token was never shown as needing re-authorization");
    assert_eq!(seen["token"]["key"], "app-serve-provider/default", "{seen}");
    let refusals = provider.source.state.stats().tokens.code150;
    let plain_runs = plain.source.state.stats().requests;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(provider.source.state.stats().tokens.code150, refusals, "the paused schedule asks no more");
    assert!(plain.source.state.stats().requests > plain_runs, "the other app keeps syncing");
    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ferry_token_expires_in_seconds{token=\"app-serve-provider/default\"}"), "{metrics}");
    crate::helpers::signal(child.id(), "-TERM");
    assert!(wait_exit(child, Duration::from_secs(30)).await.is_some());
}

/// Two served pipelines of one app and merchant with their tokens in two
/// state stores are refused at load, naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_file_refuses_one_token_in_two_stores() {
    let h = harness(tokened(310, "app-two-stores", 10, Duration::from_secs(60), false), TargetSimConfig::default()).await;
    let base = std::fs::read_to_string(write(&h, &["refresh_token = \"ferry-demo-refresh\"".into()])).unwrap();
    for (name, db) in [("one", "one.db"), ("two", "two.db")] {
        let text = base.replacen("name = \"it-orders\"", &format!("name = \"{name}\""), 1);
        let text = format!("{}[state]\npath = \"{db}\"\n", &text[..text.find("[state]").unwrap()]);
        std::fs::write(h.dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    let serve = h.dir.path().join("serve.toml");
    std::fs::write(
        &serve,
        "[[pipelines]]\nfile = \"one.toml\"\n[[pipelines]]\nfile = \"two.toml\"\n[[tokens]]\ntoken = \"t-0123456789\"\ntenant = \"default\"\n",
    )
    .unwrap();
    let err = ferry::api::ServeConfig::load(&serve).unwrap_err();
    assert!(err.contains("`two` and `one` keep the token of app-two-stores/default in different state stores"), "{err}");
}

/// The real `ferry serve` of `serve_file` with the sealing key, on a free port.
fn serve(serve_file: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = ferry_command(&["serve", serve_file.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .env("FERRY_TOKEN_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// A pipeline that syncs only on demand keeps its token: `ferry serve`
/// renews it ahead of expiry between runs, and a sync much later needs no
/// second chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_a_token_fresh_between_runs() {
    let lifetime = Duration::from_secs(4);
    let h = harness(tokened(311, "app-idle", 40, lifetime, false), TargetSimConfig::default()).await;
    let lines = vec!["refresh_token = \"ferry-demo-refresh\"".to_string(), expires_in(lifetime), "token_refresh_margin = \"1500ms\"".into()];
    write(&h, &lines);
    let serve_file = h.dir.path().join("serve.toml");
    std::fs::write(&serve_file, "[[pipelines]]\nfile = \"p.toml\"\n[[tokens]]\ntoken = \"t-0123456789\"\ntenant = \"default\"\n").unwrap();
    let (child, url) = serve(&serve_file);
    // Three lifetimes with no run at all.
    tokio::time::sleep(lifetime * 3).await;
    let stats = h.source.state.stats();
    assert_eq!(stats.requests, 0, "no business call was made");
    assert!(stats.tokens.refreshed >= 2 && stats.tokens.expired_refresh == 0, "renewed ahead of expiry while idle: {stats:?}");
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{url}/sync-commands"))
        .bearer_auth("t-0123456789")
        .json(&serde_json::json!({"pipeline": "it-orders"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let v: serde_json::Value = http.get(format!("{url}/sync-commands/{id}")).bearer_auth("t-0123456789").send().await.unwrap().json().await.unwrap();
        if v["completedAt"].is_string() || std::time::Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(h.source.state.stats().code100, 0, "the run found a fresh token");
    assert!(h.missing().is_empty());
    crate::helpers::signal(child.id(), "-TERM");
    assert!(wait_exit(child, Duration::from_secs(30)).await.is_some());
}
