//! `[[alerts]]` in `ferry serve`, against a local webhook receiver: each
//! condition fires once, repeats as configured and resolves; the robot
//! formats arrive signed; a webhook that fails is retried, and one that
//! hangs never holds a sync up.

use crate::helpers::{harness, source_config};
use crate::serve::{Server, TOKEN_A};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_sim::jushuitan::{Quirk, QuirkRule};
use ferry_sim::target::TargetSimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver got: (hook, query, body), and how many posts to the
/// hanging hook are still waiting for an answer.
#[derive(Default)]
pub struct Received {
    posts: Mutex<Vec<(String, String, Value)>>,
    flaky_calls: AtomicU64,
    hanging: AtomicU64,
}

impl Received {
    pub fn states(&self, hook: &str) -> Vec<String> {
        self.posts.lock().unwrap().iter().filter(|p| p.0 == hook).map(|p| p.2["state"].as_str().unwrap_or("robot").to_string()).collect()
    }

    pub fn of(&self, hook: &str) -> Vec<(String, Value)> {
        self.posts.lock().unwrap().iter().filter(|p| p.0 == hook).map(|p| (p.1.clone(), p.2.clone())).collect()
    }
}

async fn hook(State(r): State<Arc<Received>>, Path(name): Path<String>, RawQuery(q): RawQuery, body: axum::Json<Value>) -> (StatusCode, String) {
    match name.as_str() {
        // Answers 500 twice, then takes the post.
        "flaky" if r.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 => return (StatusCode::INTERNAL_SERVER_ERROR, "down".into()),
        // Never answers in time (the poster gives up after its timeout).
        "hang" => {
            r.hanging.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        _ => {}
    }
    r.posts.lock().unwrap().push((name, q.unwrap_or_default(), body.0));
    (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#.into())
}

pub async fn receiver() -> (String, Arc<Received>) {
    let received = Arc::new(Received::default());
    let app = axum::Router::new().route("/hook/{name}", axum::routing::post(hook)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

pub async fn sync(s: &Server) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let (code, r) = s.call(Method::PUT, &format!("/sync-commands/{id}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders"}))).await;
    assert_eq!(code, 201, "{r}");
    s.wait_done(&id).await
}

/// Waits (bounded) until `what` holds.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "waited 30 s for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_repeat_and_resolve() {
    let (url, got) = receiver().await;
    let h = harness(source_config(71, "app-alerts", 200), TargetSimConfig { refuse_every: 9, ..TargetSimConfig::default() }).await;
    let rules = format!(
        "[alerting]\nevery = \"1s\"\n\
         [[alerts]]\nname = \"failed\"\nwhen = \"run_failed\"\nwebhook = \"{url}/failed\"\nrepeat = \"2s\"\n\
         [[alerts]]\nname = \"dead\"\nwhen = \"dead_letters\"\nabove = 0\nwebhook = \"{url}/dead\"\n\
         [[alerts]]\nname = \"lag\"\nwhen = \"checkpoint_lag\"\nover = \"1s\"\nwebhook = \"{url}/lag\"\nformat = \"wecom\"\n\
         [[alerts]]\nname = \"plugin\"\nwhen = \"plugin_rejected\"\nwebhook = \"{url}/plugin?access_token=t\"\nformat = \"dingtalk\"\nsecret = \"SECabc\"\n\
         [[alerts]]\nname = \"flaky\"\nwhen = \"run_failed\"\nwebhook = \"{url}/flaky\"\n\
         [[alerts]]\nname = \"hang\"\nwhen = \"run_failed\"\nwebhook = \"{url}/hang\"\nattempts = 1\n"
    );
    let s = Server::start_with(&h, ferry_fixtures::JUSHUITAN_ORDERS, None, &rules).await;

    // 1. A source that lies on every answer: the run fails; the alert fires once, then repeats.
    h.source.state.set_quirks(vec![QuirkRule { quirk: Quirk::HasNextForever, rate: 1.0 }]);
    let failed = sync(&s).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    until("the failure is posted", || got.states("failed") == ["firing"]).await;
    // The hanging webhook holds a post open; syncs go on regardless.
    until("a post hangs", || got.hanging.load(Ordering::SeqCst) == 1).await;
    until("the failure repeats after 2 s", || got.states("failed").starts_with(&["firing".to_string(), "repeat".to_string()])).await;
    until("the flaky hook took it on the third try", || got.states("flaky") == ["firing"]).await;
    assert_eq!(got.flaky_calls.load(Ordering::SeqCst), 3);

    // 2. Healed: the run succeeds with dead letters (the target refuses every 9th order).
    h.source.state.set_quirks(Vec::new());
    let partial = sync(&s).await;
    assert_eq!(partial["status"], "partial", "{partial}");
    assert!(got.hanging.load(Ordering::SeqCst) >= 1, "the sync finished while a post hung");
    until("resolved and dead letters posted", || got.states("failed").last().map(String::as_str) == Some("resolved") && got.states("dead") == ["firing"]).await;
    let dead = &got.of("dead")[0].1;
    assert_eq!((dead["pipeline"].as_str(), dead["tenant"].as_str(), dead["condition"].as_str()), (Some("it-orders"), Some("a"), Some("dead_letters")));
    assert!(dead["message"].as_str().unwrap().contains("dead letters in the last run"), "{dead}");
    assert!(dead["since"].as_str().unwrap().ends_with("+08:00"), "{dead}");
    // The checkpoint trails now by more than a second; posted once, in WeCom's form.
    until("the lag is posted", || !got.of("lag").is_empty()).await;
    let (_, lag) = &got.of("lag")[0];
    assert_eq!(lag["msgtype"], "text");
    assert!(lag["text"]["content"].as_str().unwrap().contains("[Ferry 告警 FIRING] lag"), "{lag}");

    // 3. Nothing new: no dead letters, the dead-letter alert resolves.
    let ok = sync(&s).await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    until("dead letters resolved", || got.states("dead") == ["firing", "resolved"]).await;

    // 4. A plugin that is not a component is refused; a good one resolves it. DingTalk posts are signed.
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    for (component, status) in [(b64(b"not wasm"), "rejected"), (b64(&std::fs::read(ferry_fixtures::VERSIONED_V2).unwrap()), "live")] {
        let id = uuid::Uuid::new_v4();
        let (_, r) =
            s.call(Method::PUT, &format!("/plugin-commands/{id}"), Some(TOKEN_A), Some(json!({"pipeline": "it-orders", "component": component}))).await;
        assert_eq!(r["status"], status, "{r}");
    }
    until("the refusal and its end are posted", || got.of("plugin").len() == 2).await;
    let plugin = got.of("plugin");
    assert!(plugin[0].1["text"]["content"].as_str().unwrap().contains("was refused"), "{:?}", plugin[0]);
    assert!(plugin[1].1["text"]["content"].as_str().unwrap().contains("恢复 RESOLVED"), "{:?}", plugin[1]);
    for (query, _) in &plugin {
        assert!(query.starts_with("access_token=t&timestamp=") && query.contains("&sign="), "{query}");
    }

    // Ticks go on: a lag that keeps holding is not posted again (no `repeat`);
    // each lag post is a change (runs move the checkpoint, time moves now).
    tokio::time::sleep(Duration::from_millis(3000)).await; // the last run's checkpoint passes 1 s behind
    let lag_posts = got.of("lag").len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let heads: Vec<bool> = got.of("lag").iter().map(|(_, b)| b["text"]["content"].as_str().unwrap().contains("FIRING")).collect();
    assert_eq!(heads.len(), lag_posts, "{heads:?}");
    assert!(heads.iter().enumerate().all(|(i, firing)| *firing == (i % 2 == 0)), "firing and resolved alternate: {heads:?}");
    let failed = got.states("failed");
    assert!(failed.len() >= 3 && failed[0] == "firing" && failed[failed.len() - 1] == "resolved", "{failed:?}");
    assert!(failed[1..failed.len() - 1].iter().all(|s| s == "repeat"), "{failed:?}");
    assert_eq!(got.states("flaky"), ["firing", "resolved"]);
    s.stop().await;
}
