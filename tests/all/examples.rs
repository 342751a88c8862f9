//! The shipped example pipelines validate, and the Chinese-label one runs
//! into its JSONL file against the simulator.

use crate::helpers::ferry_command;
use ferry_sim::jushuitan::{self, JushuitanSimConfig};
use std::path::Path;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

/// Copies an example next to its sample file, pointing it at `source` and at the built plugins.
fn localize(name: &str, dir: &Path, source: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(examples().join(name)).unwrap();
    let text = text
        .replace("../target/wasm32-wasip2/release/jushuitan_orders.wasm", ferry_fixtures::JUSHUITAN_ORDERS)
        .replace("../target/wasm32-wasip2/release/declarative.wasm", ferry_fixtures::DECLARATIVE)
        .replace("http://127.0.0.1:8701", source)
        .replace("../.ferry/", "");
    std::fs::copy(examples().join("orders.sample.jsonl"), dir.join("orders.sample.jsonl")).unwrap();
    for sub in ["options", "samples"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for f in std::fs::read_dir(examples().join(sub)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

fn ferry_env(args: &[&str], app: &str) -> std::process::Output {
    let out =
        ferry_command(args).env("JST_APP_KEY", app).env("JST_APP_SECRET", "ferry-demo-secret").env("JST_ACCESS_TOKEN", "ferry-demo-token").output().unwrap();
    eprintln!("ferry {args:?}: {:?}\n{}\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn examples_validate() {
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(examples()).unwrap().map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".toml")).collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        let file = localize(name, dir.path(), "http://127.0.0.1:8701");
        let out = ferry_env(&["validate", file.to_str().unwrap()], "ferry-demo-app");
        assert_eq!(out.status.code(), Some(0), "{name}");
        let text = String::from_utf8_lossy(&out.stdout);
        // The seed's verbatim block asks pageSize 100 (warned); the object examples ask what their API takes.
        assert!(name.starts_with("jushuitan-to-") || !text.contains("warning:"), "{name}: validates without warnings:\n{text}");
        assert!(!text.contains("ferry-demo-secret") && !String::from_utf8_lossy(&out.stderr).contains("ferry-demo-secret"), "secrets never printed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_labels_into_jsonl() {
    let mut cfg = JushuitanSimConfig::new(71);
    (cfg.orders, cfg.app_key, cfg.per_second, cfg.per_minute) = (300, "app-example-cn".into(), 5, 100);
    cfg.from = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(30);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = localize("jushuitan-to-jsonl-chinese.toml", dir.path(), &source.url);
    let text = std::fs::read_to_string(&file).unwrap().replace("2026-01-01 00:00:00", &ferry::time::format(source.state.config().from));
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || ferry_env(&["run", &f], "app-example-cn")).await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("jushuitan-orders-cn.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let truth = source.state.truth();
    let confirmed: Vec<_> = truth.orders.iter().filter(|o| o.status == "Confirmed").collect();
    assert_eq!(lines.len(), confirmed.len());
    let first = confirmed.iter().find(|o| lines[0]["订单编号"] == serde_json::json!(o.o_id.to_string())).expect("known order");
    assert_eq!(lines[0]["来源"], serde_json::json!("聚水潭"));
    assert_eq!(lines[0]["收货人"], serde_json::json!(first.receiver_name));
    assert_eq!(lines[0]["出库日期"].as_str().unwrap().len(), 8);
    assert!(lines[0]["_ferry_command"].is_string());
}
