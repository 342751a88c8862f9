//! Access tokens that expire: a sync that outlives several of them, a
//! service-provider app that cannot renew, a self-built app whose token
//! expired, no key to seal tokens with, and a process killed between the
//! gateway's new pair and storing it.

use crate::helpers::{args, ferry_async, ferry_command, harness, source_config, wait_exit};
use ferry_sim::jushuitan::{JushuitanSimConfig, TokenPolicy};
use ferry_sim::target::TargetSimConfig;
use std::time::Duration;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn tokened(seed: u64, app: &str, orders: usize, lifetime: Duration, provider: bool) -> JushuitanSimConfig {
    let mut c = source_config(seed, app, orders);
    (c.per_second, c.per_minute) = (2, 120);
    c.tokens = Some(TokenPolicy { lifetime, refresh_window: lifetime / 2, provider, answer_delay: Duration::ZERO });
    c
}

/// The pipeline file with the token keys under `[source]`.
fn write(h: &crate::helpers::Harness, token_lines: &[String]) -> String {
    let text = h.spec(ferry_fixtures::JUSHUITAN_ORDERS).toml();
    let text = text.replacen("\nstart = ", &format!("\n{}\nstart = ", token_lines.join("\n")), 1);
    std::fs::write(&h.file, text).unwrap();
    h.file.to_str().unwrap().to_string()
}

fn expires_in(d: Duration) -> String {
    format!("token_expires_at = \"{}\"", jiff::Timestamp::now() + jiff::SignedDuration::try_from(d).unwrap())
}

/// What a run said, stdout and stderr.
fn said(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `ferry run` with the sealing key.
async fn run(file: &str, key: Option<&str>) -> std::process::Output {
    let file = file.to_string();
    let key = key.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut cmd = ferry_command(&["run", &file]);
        cmd.env_remove("FERRY_TOKEN_KEY");
        if let Some(k) = key {
            cmd.env("FERRY_TOKEN_KEY", k);
        }
        let out = cmd.output().unwrap();
        eprintln!("--- stdout\n{}\n--- stderr\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_outlives_several_tokens() {
    let lifetime = Duration::from_secs(4);
    let h = harness(tokened(301, "app-tokens", 700, lifetime, false), TargetSimConfig::default()).await;
    let lines = vec!["refresh_token = \"ferry-demo-refresh\"".to_string(), expires_in(lifetime), "token_refresh_margin = \"1500ms\"".into()];
    let f = write(&h, &lines);
    let out = run(&f, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(0));
    let stats = h.source.state.stats();
    assert!(stats.tokens.refreshed >= 2, "the run outlived several tokens: {:?} in {} requests", stats.tokens, stats.requests);
    // Renewed ahead of expiry, each once; a call in flight while the pair
    // rotated may be refused once (code 100) and is signed again.
    assert_eq!((stats.tokens.stale_refresh, stats.tokens.too_early, stats.tokens.expired_refresh), (0, 0, 0), "{stats:?}");
    assert!(stats.code100 <= stats.tokens.refreshed, "{stats:?}");
    assert!(h.missing().is_empty() && h.each_once(), "every order delivered once");
    // The state holds the pair sealed: no token in the clear.
    let bytes = std::fs::read(&h.state).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("sim-at-") && !text.contains("sim-rt-") && !text.contains("ferry-demo-refresh"), "a token in the clear in the state file");
    // A second run takes the stored pair, not the configured (burnt) one.
    let out = run(&f, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(h.source.state.stats().code100, 0);
    // The CLI shows where the token stands, never the token.
    let status = token_cli(&["status", &f], None, None).await;
    assert!(status.contains("state:        ok") && status.contains("obtained:     refreshed") && status.contains("+08:00"), "{status}");
    assert!(!status.contains("sim-at-") && !status.contains("sim-rt-"), "{status}");
    let json: serde_json::Value = serde_json::from_str(token_cli(&["status", &f, "--json"], None, None).await.trim()).unwrap();
    assert_eq!((json["state"].as_str(), json["key"].as_str()), (Some("ok"), Some("app-tokens/default")), "{json}");
    // A pair set by hand (after a re-authorization) replaces the stored one.
    let set = token_cli(&["set", &f, "--expires-in", "3600"], Some(KEY), Some("new-access\nnew-refresh\n")).await;
    assert!(set.contains("stored the new pair of app-tokens/default") && set.contains("obtained:     set") && !set.contains("new-access"), "{set}");
    // Without the key the stored pair cannot be read, and Ferry says so.
    let out = run(&f, Some(&base64_of(&[9u8; 32]))).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(said(&out).contains("cannot be decrypted with FERRY_TOKEN_KEY"));
}

/// `ferry jushuitan token ARGS`, with the key and stdin given; what it said.
async fn token_cli(a: &[&str], key: Option<&str>, stdin: Option<&str>) -> String {
    let mut all = vec!["jushuitan".to_string(), "token".to_string()];
    all.extend(a.iter().map(|s| s.to_string()));
    let (key, stdin) = (key.map(str::to_string), stdin.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut cmd = ferry_command(&all.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env_remove("FERRY_TOKEN_KEY").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        if let Some(k) = key {
            cmd.env("FERRY_TOKEN_KEY", k);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = said(&out);
        assert!(out.status.success(), "{text}");
        text
    })
    .await
    .unwrap()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_tokens_are_not_stored() {
    let h = harness(tokened(302, "app-nokey", 50, Duration::from_secs(60), false), TargetSimConfig::default()).await;
    let f = write(&h, &["refresh_token = \"ferry-demo-refresh\"".into()]);
    let out = run(&f, None).await;
    assert_eq!(out.status.code(), Some(2));
    let err = said(&out);
    assert!(err.contains("FERRY_TOKEN_KEY is not set") && err.contains("openssl rand -base64 32") && err.contains("app-nokey/default"), "{err}");
    assert_eq!(h.source.state.stats().requests, 0, "nothing was called");
    let out = ferry_async(args(&["validate", &f])).await;
    assert!(said(&out).contains("token_expires_at is not set"), "the unknown expiry is warned about");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_provider_app_fails_at_once_with_the_fix() {
    let lifetime = Duration::from_secs(3);
    let h = harness(tokened(303, "app-provider", 400, lifetime, true), TargetSimConfig::default()).await;
    let f = write(&h, &["refresh_token = \"ferry-demo-refresh\"".into(), expires_in(lifetime), "token_refresh_margin = \"1500ms\"".into()]);
    let out = run(&f, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(2));
    let err = said(&out);
    assert!(err.contains("app-provider/default") && err.contains("needs re-authorization") && err.contains("ferry jushuitan token set"), "{err}");
    assert_eq!(h.source.state.stats().tokens.code150, 1);
    // The next run fails before calling anything.
    let requests = h.source.state.stats().requests;
    let out = run(&f, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(said(&out).contains("needs re-authorization"));
    assert_eq!((h.source.state.stats().requests, h.source.state.stats().tokens.code150), (requests, 1), "no call, no second refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_of_a_self_built_app_is_replaced_by_get_init_token() {
    let lifetime = Duration::from_secs(2);
    let h = harness(tokened(304, "app-selfbuilt", 100, lifetime, false), TargetSimConfig::default()).await;
    let f = write(&h, &["refresh_token = \"ferry-demo-refresh\"".into(), "init_token = true".into()]);
    tokio::time::sleep(lifetime + Duration::from_millis(500)).await;
    let out = run(&f, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(0));
    let stats = h.source.state.stats();
    // Refused once, the refresh refused (expired), a new pair; a 2 s pair
    // may expire again between two calls, and is replaced the same way.
    assert_eq!(stats.code100, 1, "{stats:?}");
    assert!(stats.tokens.initialized >= 1 && stats.tokens.expired_refresh == stats.tokens.initialized, "{stats:?}");
    assert!(h.missing().is_empty() && h.each_once());
}

/// The gateway rotates the pair and the process dies before it stores the
/// answer: the stored refresh token is used up. The next process finds the
/// claim stale; a self-built app with `init_token` gets a new pair, any
/// other app is marked as needing re-authorization (and says the fix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_the_new_pair_and_storing_it() {
    for init in [true, false] {
        let lifetime = Duration::from_secs(4);
        let mut cfg = tokened(305 + u64::from(init), &format!("app-killed-{init}"), 400, lifetime, false);
        // Held back for less than the client's timeout (2 s): the process is killed while it waits.
        cfg.tokens.as_mut().unwrap().answer_delay = Duration::from_millis(1500);
        let h = harness(cfg, TargetSimConfig::default()).await;
        let mut lines = vec!["refresh_token = \"ferry-demo-refresh\"".to_string(), expires_in(lifetime), "token_refresh_margin = \"3s\"".into()];
        if init {
            lines.push("init_token = true".into());
        }
        let f = write(&h, &lines);
        let child = ferry_command(&["run", &f]).env("FERRY_TOKEN_KEY", KEY).spawn().unwrap();
        let pid = child.id();
        // Wait until the gateway has rotated the pair (its answer is held back).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while h.source.state.stats().tokens.refreshed == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(h.source.state.stats().tokens.refreshed, 1);
        unsafe_kill(pid);
        assert!(wait_exit(child, Duration::from_secs(10)).await.is_some());
        let out = run(&f, Some(KEY)).await;
        let err = said(&out);
        assert!(err.contains("was claimed and not finished"), "the next process saw the dead claim: {err}");
        if init {
            assert_eq!(out.status.code(), Some(0), "recovered by getInitToken");
            assert_eq!(h.source.state.stats().tokens.initialized, 1);
            assert!(h.missing().is_empty() && h.each_once());
        } else {
            assert_eq!(out.status.code(), Some(2));
            assert!(err.contains("needs re-authorization") && err.contains("ferry jushuitan token set"), "{err}");
        }
    }
}

fn unsafe_kill(pid: u32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// Two processes (two pipelines of one app and merchant, one PostgreSQL
/// state) renew one token side by side: one refresh per rotation, never a
/// used-up refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_token_and_refresh_it_once() {
    let db = crate::pg::TestDb::new("tokens");
    let lifetime = Duration::from_secs(4);
    let mut cfg = tokened(307, "app-shared", 900, lifetime, false);
    (cfg.per_second, cfg.per_minute) = (4, 240);
    let h = harness(cfg, TargetSimConfig::default()).await;
    let lines = vec!["refresh_token = \"ferry-demo-refresh\"".to_string(), expires_in(lifetime), "token_refresh_margin = \"1500ms\"".into()];
    let base = std::fs::read_to_string(write(&h, &lines)).unwrap();
    let state = format!("[state]\nurl = \"{}\"\n", db.url);
    let mut files = Vec::new();
    for name in ["shared-a", "shared-b"] {
        let text = base.replacen("name = \"it-orders\"", &format!("name = \"{name}\""), 1);
        let text = format!("{}{state}", &text[..text.find("[state]").unwrap()]);
        let file = h.dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        files.push(file.to_str().unwrap().to_string());
    }
    let (a, b) = tokio::join!(run(&files[0], Some(KEY)), run(&files[1], Some(KEY)));
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    let stats = h.source.state.stats();
    assert!(stats.tokens.refreshed >= 2, "{stats:?}");
    assert_eq!((stats.tokens.stale_refresh, stats.tokens.expired_refresh, stats.tokens.initialized), (0, 0, 0), "no refresh token used twice: {stats:?}");
    assert!(stats.code100 <= 2 * stats.tokens.refreshed, "{stats:?}");
    assert!(h.missing().is_empty());
}

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
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
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
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(wait_exit(child, Duration::from_secs(30)).await.is_some());
}
