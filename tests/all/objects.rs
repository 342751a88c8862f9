//! Every object of the shared table, synced end to end through its shipped
//! example (`examples/jushuitan-<object>.toml`, the declarative plugin with
//! `examples/options/<object>.toml`) against the simulator with faults and
//! mutation on: 0 missing and 0 doubled by the simulator's own truth for
//! that object.

use crate::helpers::ferry_command;
use ferry_sim::jushuitan::{self, Faults, Mutation};
use ferry_sim::target::{self, TargetSimConfig};
use std::path::Path;
use std::time::Duration;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

/// The example of `object`, copied into `dir` with its options and sample,
/// pointed at the simulators and the built plugin, starting at `start`,
/// with a lag of 1 s and a budget the test can afford.
fn localize(object: &str, dir: &Path, source: &str, target: &str, start: &str) -> std::path::PathBuf {
    let name = format!("jushuitan-{object}.toml");
    let text = std::fs::read_to_string(examples().join(&name)).unwrap();
    let text = text
        .replace("../target/wasm32-wasip2/release/declarative.wasm", ferry_fixtures::DECLARATIVE)
        .replace("http://127.0.0.1:8701", source)
        .replace("http://127.0.0.1:8702", target)
        .replace("2026-01-01 00:00:00", start)
        .replace("rate_limit = { per_second = 5, per_minute = 100 }", "rate_limit = { per_second = 100, per_minute = 6000 }\nlag = \"1s\"\ntimeout = \"2s\"")
        .replace("../.ferry/", "");
    for (sub, ext) in [("options", "toml"), ("samples", "jsonl")] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(examples().join(sub).join(format!("{object}.{ext}")), dir.join(sub).join(format!("{object}.{ext}"))).unwrap();
    }
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

async fn run(file: &Path, app: &str) -> std::process::Output {
    let (f, app) = (file.to_str().unwrap().to_string(), app.to_string());
    tokio::task::spawn_blocking(move || {
        let out = ferry_command(&["run", &f])
            .env("JST_APP_KEY", &app)
            .env("JST_APP_SECRET", "ferry-demo-secret")
            .env("JST_ACCESS_TOKEN", "ferry-demo-token")
            .output()
            .unwrap();
        eprintln!("ferry run {f}: {:?}\n{}\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    })
    .await
    .unwrap()
}

/// Syncs `api` through `examples/jushuitan-<object>.toml` while the shop
/// changes orders and the gateway fails some calls, then once more after
/// the shop stops; every row of the simulator's view of that object is at
/// the target in its latest version, and no version was applied twice.
async fn object_end_to_end(object: &str, api: &str, seed: u64) {
    let app = format!("app-object-{object}");
    let mut cfg = crate::helpers::source_config(seed, &app, 1200);
    cfg.faults = Faults { http500: 0.12, reset: 0.05, truncated: 0.1, slow: 0.0, slow_delay: Duration::from_millis(10) };
    cfg.mutation = Mutation { changes_per_request: 0.6, new_per_request: 0.3 };
    let start = ferry::time::format(cfg.from);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    let target = target::start(TargetSimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = localize(object, dir.path(), &source.url, &target.url, &start);
    assert_eq!(run(&file, &app).await.status.code(), Some(0), "{object}: the first run");
    let stats = source.state.stats();
    assert!(stats.orders_changed + stats.orders_created > 0 && stats.fault_500 + stats.fault_truncated + stats.fault_reset > 0, "{object}: {stats:?}");
    source.state.set_mutation(Mutation::default());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run(&file, &app).await.status.code(), Some(0), "{object}: the second run");

    let key = &jushuitan::OBJECTS.iter().find(|o| o.api == api).unwrap().key;
    let rows = source.state.object_truth(api).unwrap();
    assert!(rows.len() > 10, "{object}: {} rows", rows.len());
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let at = target.state.truth();
    let missing: Vec<String> = rows
        .iter()
        .map(|r| (key.iter().map(|k| text(&r[*k])).collect::<Vec<_>>().join("-"), text(&r["modified"])))
        .filter(|(id, modified)| at.records.get(id).map(|t| text(&t["modified"])) != Some(modified.clone()))
        .map(|(id, _)| id)
        .collect();
    assert!(missing.is_empty(), "{object}: {} of {} missing or stale at the target: {:?}", missing.len(), rows.len(), &missing[..missing.len().min(10)]);
    assert!(at.doubled().is_empty(), "{object}: versions applied twice: {:?}", at.doubled());
    assert_eq!(at.records.len(), rows.len(), "{object}: the target holds exactly the object's rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_orders_end_to_end() {
    object_end_to_end("sales-orders", "orders.single.query", 301).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_end_to_end() {
    object_end_to_end("refunds", "refund.single.query", 302).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_receipts_end_to_end() {
    object_end_to_end("purchase-receipts", "purchasein.query", 303).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_end_to_end() {
    object_end_to_end("stock", "inventory.query", 304).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_end_to_end() {
    object_end_to_end("items", "sku.query", 305).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_end_to_end() {
    object_end_to_end("shipping", "logistic.query", 306).await;
}
