//! Access tokens that expire: a sync that outlives several of them, a
//! service-provider app that cannot renew, a self-built app whose token
//! expired, no key to seal tokens with, and a process killed between the
//! gateway's new pair and storing it.

use crate::helpers::{args, ferry_async, ferry_command, harness, source_config, wait_exit};
use ferry_sim::jushuitan::{JushuitanSimConfig, TokenPolicy};
use ferry_sim::target::TargetSimConfig;
use std::time::Duration;

pub(crate) const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub(crate) fn tokened(seed: u64, app: &str, orders: usize, lifetime: Duration, provider: bool) -> JushuitanSimConfig {
    let mut c = source_config(seed, app, orders);
    (c.per_second, c.per_minute) = (2, 120);
    c.tokens = Some(TokenPolicy { lifetime, refresh_window: lifetime / 2, provider, answer_delay: Duration::ZERO });
    c
}

/// The pipeline file with the token keys under `[source]`.
pub(crate) fn write(h: &crate::helpers::Harness, token_lines: &[String]) -> String {
    let text = h.spec(ferry_fixtures::JUSHUITAN_ORDERS).toml();
    let text = text.replacen("\nstart = ", &format!("\n{}\nstart = ", token_lines.join("\n")), 1);
    std::fs::write(&h.file, text).unwrap();
    h.file.to_str().unwrap().to_string()
}

pub(crate) fn expires_in(d: Duration) -> String {
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
    let h = harness(tokened(301, "app-tokens", 1200, lifetime, false), TargetSimConfig::default()).await;
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
    // Refused (once per call in flight: two windows are read at once), the
    // refresh refused (expired), one new pair; a 2 s pair may expire again
    // between two calls, and is replaced the same way.
    assert!((1..=2).contains(&stats.code100), "{stats:?}");
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
        crate::helpers::signal(pid, "-9");
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
