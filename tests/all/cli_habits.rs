//! The CLI's habits, as people who live in `cargo` expect them: closed
//! pipes, stderr, colour, `--version`, completions, read-only commands
//! without secrets, ranges and relative starts, one outcome line per run,
//! and the release archive run from an empty directory.

use crate::helpers::{PipelineSpec, args, ferry, ferry_async, harness, source_config};
use ferry_sim::target::TargetSimConfig;

/// The CLI as people who live in `cargo` expect it: a closed pipe ends it
/// quietly, a failed run says why on stderr, log lines carry no colour
/// codes off a terminal, `--version` names the commit and the plugin
/// contract, and shells get completions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_pipes_stderr_colour_version_and_completions() {
    use std::process::Stdio;
    // A reader that closes at once: no panic, exit 0.
    for shell in ["bash", "zsh", "fish"] {
        let mut child = crate::helpers::ferry_command(&["completions", shell]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !err.contains("panicked"), "{shell}: {:?} {err}", out.status);
        let out = ferry(&["completions", shell]);
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ferry"), "{shell}");
    }
    let out = ferry(&["--version"]);
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("commit ") && v.contains("WIT contract ferry:mapping@0.1.0"), "{v}");

    // A run refused for a wrong secret: the error on stderr, no colour codes in a file.
    let h = harness(source_config(62, "app-cli-stderr", 20), TargetSimConfig::default()).await;
    let text = h.spec(ferry_fixtures::JUSHUITAN_ORDERS).toml().replace("app_secret = \"ferry-demo-secret\"", "app_secret = \"wrong\"");
    std::fs::write(&h.file, text).unwrap();
    let out = ferry_async(args(&["run", h.file.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: the run failed") && err.contains("code 10"), "{err}");
    assert!(!err.contains('\x1b'), "no ANSI codes when stderr is not a terminal: {err:?}");
}

/// Commands that only read a pipeline's state need none of its secrets,
/// say no source warnings, and speak JSON when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_need_no_source_secrets() {
    let h = harness(source_config(63, "app-cli-readonly", 30), TargetSimConfig::default()).await;
    let good = h.write(&h.spec(ferry_fixtures::JUSHUITAN_ORDERS));
    assert_eq!(ferry_async(args(&["run", &good])).await.status.code(), Some(0));
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("app_secret = \"ferry-demo-secret\"", "app_secret = \"${FERRY_TEST_UNSET_SECRET}\"")
        .replace("access_token = \"ferry-demo-token\"", "access_token = \"${FERRY_TEST_UNSET_TOKEN}\"");
    std::fs::write(&h.file, text).unwrap();
    let f = h.file.to_str().unwrap().to_string();
    let out = ferry_async(args(&["state", &f, "--json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((state["pipeline"].as_str(), state["outboxPending"].as_u64()), (Some("it-orders"), Some(0)), "{state}");
    assert!(state["checkpoint"].as_str().is_some_and(|c| c.ends_with("+08:00")), "{state}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pageSize"), "no source warnings for a state read");
    assert_eq!(ferry_async(args(&["dlq", "list", &f, "--json"])).await.status.code(), Some(0));
    let out = ferry_async(args(&["plugin", "history", &f, "--json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let first: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["accepted"], serde_json::json!(true), "{first}");
    let out = ferry_async(args(&["run", &f])).await;
    assert_eq!(out.status.code(), Some(2), "a run still needs them");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FERRY_TEST_UNSET_SECRET"));
}

/// The release archive: built from the binary and plugins of this build,
/// unpacked into an empty directory, and the demo runs from there with no
/// flag (it finds the plugin beside the binary); its examples validate.
#[test]
fn the_release_archive_runs_the_demo_from_an_empty_directory() {
    let out = tempfile::tempdir().unwrap();
    let plugins = std::path::Path::new(ferry_fixtures::JUSHUITAN_ORDERS).parent().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/release.sh");
    let built = std::process::Command::new("bash")
        .arg(&script)
        .args(["--bin", env!("CARGO_BIN_EXE_ferry"), "--plugins", plugins.to_str().unwrap(), "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let archive = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let empty = tempfile::tempdir().unwrap();
    assert!(std::process::Command::new("tar").args(["-xzf", &archive, "-C", empty.path().to_str().unwrap()]).status().unwrap().success());
    let root = std::fs::read_dir(empty.path()).unwrap().next().unwrap().unwrap().path();
    for want in ["bin/ferry", "plugins/jushuitan_orders.wasm", "plugins/declarative.wasm", "examples/jushuitan-to-command.toml", "docs/tokens.md", "README.md"]
    {
        assert!(root.join(want).is_file(), "the archive lacks {want}");
    }
    let demo_dir = root.join("demo-files");
    let out = std::process::Command::new(root.join("bin/ferry"))
        .args(["demo", "--orders", "120", "--dir", demo_dir.to_str().unwrap()])
        .current_dir(&root)
        .env("FERRY_CACHE_DIR", crate::helpers::cache_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("missing 0, doubled 0"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for example in ["examples/jushuitan-to-jsonl-chinese.toml", "examples/jushuitan-stock.toml"] {
        let out = std::process::Command::new(root.join("bin/ferry"))
            .args(["validate", example])
            .current_dir(&root)
            .env("FERRY_CACHE_DIR", crate::helpers::cache_dir())
            .envs([("JST_APP_KEY", "k"), ("JST_APP_SECRET", "s"), ("JST_ACCESS_TOKEN", "t")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{example} points at the plugins beside it, with its options and samples: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// On a terminal, log lines are coloured, unless `NO_COLOR` is set
/// (https://no-color.org). A pseudo-terminal from `script(1)`.
#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no `script` to give ferry a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let file = dir.path().join("p.toml");
    // A warning to log (the metadata's page size is clamped); the run then fails offline.
    std::fs::write(&file, PipelineSpec::offline(&state).toml()).unwrap();
    let on_terminal = |no_color: bool| {
        // No window to read (it ends where it starts): the run ends at once.
        let line = format!("{} run {} --until '2024-01-01 00:00:00'", env!("CARGO_BIN_EXE_ferry"), file.display());
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).env("FERRY_CACHE_DIR", crate::helpers::cache_dir());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).to_string()
    };
    // Colour is an SGR code (`ESC [ ... m`); a progress bar's cursor moves are not colour.
    let sgr = |text: &str| ["\x1b[33m", "\x1b[2m", "\x1b[3m", "\x1b[0m"].iter().any(|c| text.contains(c));
    let coloured = on_terminal(false);
    assert!(coloured.contains("WARN") && sgr(&coloured), "colour on a terminal: {coloured:?}");
    let plain = on_terminal(true);
    assert!(plain.contains("WARN") && !sgr(&plain), "no colour with NO_COLOR: {plain:?}");
}

/// A reversed range is refused naming both ends; `start` may be relative
/// (`4d`: four days before the first run); each run ends with one outcome
/// log line (JSON with --log-format json) with its counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_relative_starts_and_one_outcome_line() {
    let h = harness(source_config(64, "app-cli-outcome", 40), TargetSimConfig::default()).await;
    let text = h.spec(ferry_fixtures::JUSHUITAN_ORDERS).toml().replacen(&format!("start = \"{}\"", h.start), "start = \"4d\"", 1);
    assert!(text.contains("start = \"4d\""));
    std::fs::write(&h.file, text).unwrap();
    let f = h.file.to_str().unwrap().to_string();
    let out = ferry_async(args(&["run", &f, "--since", "2024-03-02 00:00:00", "--until", "2024-03-01 00:00:00"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--since/--until: the range is reversed or empty: since 2024-03-02T00:00:00+08:00 is not before until 2024-03-01T00:00:00+08:00"),
        "{err}"
    );
    assert_eq!(h.source.state.stats().requests, 0);
    let out = ferry_async(args(&["run", &f, "--log-format", "json"])).await;
    assert_eq!(out.status.code(), Some(0));
    let confirmed = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").count() as u64;
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let outcome: Vec<&serde_json::Value> = lines.iter().filter(|l| l["fields"]["message"] == "run finished").collect();
    assert_eq!(outcome.len(), 1, "one outcome line: {lines:?}");
    let f = &outcome[0]["fields"];
    assert_eq!(
        (f["pipeline"].as_str(), f["status"].as_str(), f["delivered"].as_u64(), f["dead_letters"].as_u64()),
        (Some("it-orders"), Some("ok"), Some(confirmed), Some(0)),
        "{f}"
    );
    assert!(h.missing().is_empty(), "the relative start covered every order");
}
