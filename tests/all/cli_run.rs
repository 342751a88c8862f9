//! The real binary end to end: `ferry run` (and --dry-run), `validate`,
//! `state`, `demo`, and one clear message per kind of bad pipeline file.

use crate::helpers::{PipelineSpec, args, ferry, ferry_async, harness, source_config};
use ferry_sim::target::TargetSimConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_validate_state_and_dry_run() {
    let mut cfg = source_config(61, "app-cli", 400);
    cfg.per_second = 100;
    let h = harness(cfg, TargetSimConfig::default()).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    s.batch_size = 50;
    let f = h.write(&s);

    let out = ferry_async(args(&["validate", &f])).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pipeline it-orders is valid") && text.contains("page size 50, paging ts"), "{text}");
    assert!(text.contains("target:   command (PUT http://127.0.0.1:") && !text.contains("Command {"), "no Rust names: {text}");
    assert!(text.contains("warning:  metadata.pagination.pageSize = 100"), "the clamp warning is shown");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pageSize = 100"), "and said once");
    assert_eq!(h.source.state.stats().requests, 0, "validate touches no network");

    let out = ferry_async(args(&["run", &f, "--dry-run"])).await;
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')).count();
    let confirmed = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").count();
    assert_eq!(printed, confirmed, "dry run prints every mapped record");
    assert_eq!(h.target.state.truth().commands, 0, "dry run writes nothing");

    let out = ferry_async(args(&["run", &f])).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in
        ["records fetched", "skipped by idCheck", "taskCount total", "plugin                 jushuitan-orders 0.1.0 sha256:", "rate-limit waits", "retries"]
    {
        assert!(text.contains(want), "summary lacks `{want}`");
    }
    assert!(h.missing().is_empty());
    assert!(h.each_once());

    let out = ferry_async(args(&["run", &f, "--log-format", "json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(summary["delivered"], serde_json::json!(0), "the second run has nothing new: {summary}");

    // A dry run over the synced range shows nothing (idCheck), unless asked for what was synced too.
    let out = ferry_async(args(&["run", &f, "--dry-run", "--since", &h.start])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')).count(), 0);
    let out = ferry_async(args(&["run", &f, "--dry-run", "--include-synced", "--since", &h.start])).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')).count(), confirmed, "every record mapped again");
    assert_eq!(h.target.state.truth().deliveries.values().sum::<u64>() as usize, confirmed, "and nothing written");

    let out = ferry_async(args(&["state", &f])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("outbox:      0 pending") && text.contains(&format!("idCheck:     {confirmed} record versions")), "{text}");
}

#[test]
fn demo_runs_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(&["demo", "--orders", "150", "--plugin", ferry_fixtures::JUSHUITAN_ORDERS, "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("missing 0, doubled 0"), "{text}");
    assert!(dir.path().join("demo-orders.toml").is_file(), "the demo leaves its pipeline file to read");
}

/// Each kind of mistake gets its own message naming the key.
#[test]
fn bad_pipeline_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let spec = PipelineSpec::offline(&state);
    let good = spec.toml();
    let cases: Vec<(String, &str)> = vec![
        (good.replace("name = \"it-orders\"", "name = \"it orders!\""), "name: expected letters"),
        (good.replace("kind = \"jushuitan\"", "kind = \"shopify\""), "source.kind: expected `jushuitan`"),
        (good.replace("window = \"1d\"", "window = \"8d\""), "source.window: expected 1s to 7 days"),
        (good.replace("window = \"1d\"", "window = \"soon\""), "window"),
        (good.replace("start = \"2024-01-01 00:00:00\"", "start = \"yesterday\""), "source.start: `yesterday` is not a time"),
        (
            good.replace("app_secret = \"ferry-demo-secret\"", "app_secret = \"${FERRY_TEST_UNSET_SECRET}\""),
            "source.app_secret: environment variable `FERRY_TEST_UNSET_SECRET` is not set",
        ),
        (good.replace("lag = \"1s\"", "lag = \"1s\"\ncolour = \"blue\""), "unknown field `colour`"),
        (
            good.replace("resource = \"order-commands\"", "resource = \"order-commands\"\nurl = \"http://127.0.0.1:9/x\""),
            "target.url: not a setting of kind `command`",
        ),
        (good.replace("resource = \"order-commands\"", "resource = \"order-commands\"\ncolour = \"blue\""), "unknown field `colour`"),
        (good.replace("kind = \"command\"", "kind = \"kafka\""), "target.kind: expected `command`, `http` or `jsonl`"),
        (good.replace("resource = \"order-commands\"\n", ""), "target.resource: required for kind `command`"),
        (good.replace("batch_size = 10", "batch_size = 0"), "target.batch_size: expected 1 to 10000"),
        (good.replace("batch_size = 10", "batch_size = \"many\""), "invalid type: string \"many\", expected a whole number"),
        (good.replace("concurrency = 2", "concurrency = 1000"), "target.concurrency: expected 1 to 256"),
        (good.replace("base_url = \"http://127.0.0.1:9\"\napp_key", "base_url = \"ftp://x\"\napp_key"), "source.base_url: expected an http:// or https:// URL"),
        (good.replace("{PAGINATION_PAGE_SIZE}", "{PAGE_SIZE}"), "unknown template `PAGE_SIZE`"),
        (good.replace("StringToArray", "SplitText"), "unknown parser `SplitText`"),
        (good.replace("per_second = 5", "per_second = 0"), "source.rate_limit: per_second and per_minute must be at least 1"),
        (good.replace("options = {}", "options = 5"), "mapping.options: expected a table"),
        (good.replace("[state]", "[stat]"), "unknown field `stat`"),
        (good.replace("app_key", "time_zone = \"Mars/Olympus\"\napp_key"), "source.time_zone: `Mars/Olympus` is not a time zone of the IANA database"),
        (good.replace("[target]", "[target]\nlookup = \"http://127.0.0.1:9/orders\""), "target.lookup: expected `{id}` in the URL"),
        (
            good.replace(ferry_fixtures::JUSHUITAN_ORDERS, "/nonexistent/orders.wasm"),
            "pipeline `it-orders`'s plugin: cannot read plugin /nonexistent/orders.wasm: No such file or directory (os error 2) (check mapping.plugin)",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        assert_ne!(text, &good, "case {i} changed nothing");
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = ferry(&["validate", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "case {i}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "case {i}: expected `{expected}` in {stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "case {i}: said once: {stderr}");
        assert!(stderr.contains(file.to_str().unwrap()), "case {i}: the message names the file");
    }
    let missing_plugin = good.replace(ferry_fixtures::JUSHUITAN_ORDERS, "/nonexistent/plugin.wasm");
    let file = dir.path().join("noplugin.toml");
    std::fs::write(&file, missing_plugin).unwrap();
    let out = ferry(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read plugin /nonexistent/plugin.wasm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_and_the_next_run_resumes() {
    let mut cfg = source_config(81, "app-ctrl-c", 500);
    cfg.per_second = 20;
    let h = harness(cfg, TargetSimConfig { completion_delay: std::time::Duration::from_millis(300), ..TargetSimConfig::default() }).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (20, 2);
    let f = h.write(&s);
    let child = crate::helpers::ferry_command(&["run", &f]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    h.wait_for_commands(2).await;
    let pid = child.id();
    crate::helpers::signal(pid, "-INT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "interrupted");
    assert!(text.contains("(interrupted)"));
    let st = ferry_async(args(&["state", &f])).await;
    assert!(String::from_utf8_lossy(&st.stdout).contains("outbox:      0 pending"), "in-flight batches finished before exit");
    let out = ferry_async(args(&["run", &f])).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(h.missing().is_empty());
    assert!(h.each_once());
}

/// SIGTERM, or Ctrl-C once or twice, while a batch spins in the plugin:
/// `ferry run` ends within the batch's deadline (or at once, the second
/// time), exit 130, with no panic or backtrace on its stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_during_a_long_batch_end_promptly_without_a_panic() {
    let h = harness(source_config(82, "app-signal-batch", 40), TargetSimConfig::default()).await;
    // A fresh state each time: a stopped run finishes the batch in flight
    // (at its deadline, as dead letters), so the next run would have none.
    let states: Vec<std::path::PathBuf> = (0..3).map(|i| h.dir.path().join(format!("state-{i}.db"))).collect();
    for (i, signals) in [&["-TERM"][..], &["-INT"], &["-INT", "-INT"]].into_iter().enumerate() {
        let mut s = h.spec(ferry_fixtures::MISBEHAVE);
        (s.mapping_options, s.state) = (r#"{ do = "loop" }"#, &states[i]);
        let f = h.write(&s);
        let toml = std::fs::read_to_string(&f).unwrap() + "\n[mapping.limits]\nfuel = 0\ntimeout = \"3s\"\n";
        std::fs::write(&f, toml).unwrap();
        let child = crate::helpers::ferry_command(&["run", &f]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while h.source.state.stats().requests == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the batch is spinning now
        let started = std::time::Instant::now();
        for signal in signals {
            crate::helpers::signal(child.id(), signal);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "{signals:?}: ended after {:?}", started.elapsed());
        assert_eq!(out.status.code(), Some(130), "{signals:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{signals:?}: {stderr}");
    }
}

#[test]
fn sign_prints_canonical_string_with_the_secret_masked() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["jushuitan", "sign", "--secret-env", "FERRY_TEST_SIGN_SECRET", "timestamp=100", "app_key=app", "charset=utf-8"])
        .env("FERRY_TEST_SIGN_SECRET", "secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("canonical: ***app_keyappcharsetutf-8timestamp100"), "{text}");
    assert!(text.contains("sign:      706427ca94e342781ac36d501151cb10"));
    assert!(!text.contains("secret"));
    // Every secret field is masked, not only the app secret.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["jushuitan", "sign", "--secret-env", "FERRY_TEST_SIGN_SECRET", "app_key=app", "access_token=tok-123", "refresh_token=ref-456"])
        .env("FERRY_TEST_SIGN_SECRET", "secret")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("canonical: ***access_token***app_keyapprefresh_token***") && !text.contains("tok-123") && !text.contains("ref-456"), "{text}");
    let out = ferry(&["jushuitan", "sign", "--secret-env", "FERRY_TEST_UNSET_VAR", "a=b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FERRY_TEST_UNSET_VAR"));
}

/// One writer per pipeline: a second `ferry run` of a SQLite pipeline, or
/// one beside a `ferry serve` serving it, is refused naming the holder; the
/// first delivers every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_of_a_pipeline_is_refused() {
    let mut cfg = source_config(83, "app-one-writer", 200);
    cfg.per_second = 20;
    let h = harness(cfg, TargetSimConfig { completion_delay: std::time::Duration::from_millis(200), ..TargetSimConfig::default() }).await;
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (20, 1);
    let f = h.write(&s);
    let first = crate::helpers::ferry_command(&["run", &f]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    h.wait_for_commands(1).await;
    let second = ferry_async(args(&["run", &f])).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already being written by another process (ferry run, pid"), "{stderr}");
    let status = crate::helpers::wait_exit(first, std::time::Duration::from_secs(60)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(h.missing().is_empty() && h.each_once());

    // A served pipeline is written by its server only.
    let server = crate::serve::Server::start(&h, ferry_fixtures::JUSHUITAN_ORDERS, None).await;
    let beside = ferry_async(args(&["run", &f])).await;
    let stderr = String::from_utf8_lossy(&beside.stderr);
    assert_eq!(beside.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("(ferry serve, pid"), "{stderr}");
    server.stop().await;
    let after = ferry_async(args(&["run", &f])).await;
    assert_eq!(after.status.code(), Some(0), "free once the server stopped");
}
