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
/// pointed at the simulators (`at`: source URL, target URL, start) and the
/// built plugin as app `app`, with a lag of 1 s and a budget the test can
/// afford; `scheme` (JSON members) is added to its metadata block and
/// `options`, when given, replaces its mapping options.
pub fn localize(object: &str, dir: &Path, app: &str, at: [&str; 3], scheme: &str, options: Option<&str>) -> std::path::PathBuf {
    let [source, target, start] = at;
    let name = format!("jushuitan-{object}.toml");
    let text = std::fs::read_to_string(examples().join(&name)).unwrap();
    let mut text = text
        .replace("../target/wasm32-wasip2/release/declarative.wasm", ferry_fixtures::DECLARATIVE)
        .replace("http://127.0.0.1:8701", source)
        .replace("http://127.0.0.1:8702", target)
        .replace("2026-01-01 00:00:00", start)
        .replace("rate_limit = { per_second = 5, per_minute = 100 }", "rate_limit = { per_second = 100, per_minute = 6000 }\nlag = \"1s\"\ntimeout = \"2s\"")
        .replace("../.ferry/", "")
        .replace("${JST_APP_KEY}", app)
        .replace("${JST_APP_SECRET}", "ferry-demo-secret")
        .replace("${JST_ACCESS_TOKEN}", "ferry-demo-token");
    if !scheme.is_empty() {
        text = text.replace("\"idCheck\": true,", &format!("\"idCheck\": true,\n  {scheme},"));
    }
    for (sub, ext) in [("options", "toml"), ("samples", "jsonl")] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(examples().join(sub).join(format!("{object}.{ext}")), dir.join(sub).join(format!("{object}.{ext}"))).unwrap();
    }
    if let Some(options) = options {
        std::fs::write(dir.join("options").join(format!("{object}.toml")), options).unwrap();
        // The shipped sample is of the example's records; a run maps the others.
        std::fs::write(dir.join("samples").join(format!("{object}.jsonl")), "").unwrap();
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
    object_end_to_end_with(object, api, seed, &[]).await;
}

/// As `object_end_to_end`, with the gateway answering in `quirks` modes too.
async fn object_end_to_end_with(object: &str, api: &str, seed: u64, quirks: &[&str]) {
    let app = format!("app-object-{object}");
    let mut cfg = crate::helpers::source_config(seed, &app, 1200);
    cfg.quirks = quirks.iter().map(|q| q.parse().unwrap()).collect();
    cfg.faults = Faults { http500: 0.12, reset: 0.05, truncated: 0.1, slow: 0.0, slow_delay: Duration::from_millis(10) };
    cfg.mutation = Mutation { changes_per_request: 0.6, new_per_request: 0.3, ..Mutation::default() };
    let start = ferry::time::format(cfg.from);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    let target = target::start(TargetSimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = localize(object, dir.path(), &app, [&source.url, &target.url, &start], "", None);
    assert_eq!(run(&file, &app).await.status.code(), Some(0), "{object}: the first run");
    let stats = source.state.stats();
    assert!(stats.orders_changed + stats.orders_created > 0 && stats.fault_500 + stats.fault_truncated + stats.fault_reset > 0, "{object}: {stats:?}");
    source.state.set_mutation(Mutation::default());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(run(&file, &app).await.status.code(), Some(0), "{object}: the second run");
    assert!(quirks.is_empty() || source.state.stats().lies > 0, "{object}: the lies were told: {:?}", source.state.stats());

    assert_complete(object, api, &source.state, &target.state);
}

/// Every row of the simulator's view of `api` is at the target in its
/// latest version, once, and nothing else is.
fn assert_complete(object: &str, api: &str, source: &jushuitan::SimState, target: &ferry_sim::target::TargetState) {
    let key = &jushuitan::OBJECTS.iter().find(|o| o.api == api).unwrap().key;
    let rows = source.object_truth(api).unwrap();
    assert!(rows.len() > 10, "{object}: {} rows", rows.len());
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let at = target.truth();
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

const OBJECTS: [(&str, &str); 6] = [
    ("sales-orders", "orders.single.query"),
    ("refunds", "refund.single.query"),
    ("purchase-receipts", "purchasein.query"),
    ("stock", "inventory.query"),
    ("items", "sku.query"),
    ("shipping", "logistic.query"),
];

/// One merchant, every object: a `ferry serve` with a pipeline per object
/// of one app shares the app's budget. While all of them sync at once, the
/// gateway never answers 199/200, and the budget is split fairly: when
/// half of all calls are made, every object still syncing has had at least
/// half of an equal share of them (none waits for the others to finish;
/// the limiter's own test shows the turns exactly, on a paused clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_merchant_every_object_shares_one_budget_fairly() {
    use crate::serve::{Server, TOKEN_A};
    let app = "app-object-shared";
    let mut cfg = crate::helpers::source_config(310, app, 1200);
    (cfg.per_second, cfg.per_minute) = (10, 600);
    let start = ferry::time::format(cfg.from);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    // A target each: the objects' ids overlap (a sales order and its shipping share `o_id`).
    let mut targets = Vec::new();
    for _ in OBJECTS {
        targets.push(target::start(TargetSimConfig::default(), 0).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut serve = format!("listen = \"127.0.0.1:0\"\n[[tokens]]\ntoken = \"{TOKEN_A}\"\ntenant = \"demo\"\n");
    for ((object, _), target) in OBJECTS.iter().zip(&targets) {
        let file = localize(object, dir.path(), app, [&source.url, &target.url, &start], "", None);
        // At the app's real budget.
        let text = std::fs::read_to_string(&file).unwrap().replace("per_second = 100, per_minute = 6000", "per_second = 10, per_minute = 600");
        std::fs::write(&file, text).unwrap();
        serve.push_str(&format!("[[pipelines]]\nfile = \"jushuitan-{object}.toml\"\n"));
    }
    let serve_file = dir.path().join("serve.toml");
    std::fs::write(&serve_file, serve).unwrap();
    let s = Server::from_file(&serve_file).await;
    let mut ids = Vec::new();
    for (object, _) in OBJECTS {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = s
            .call(reqwest::Method::PUT, &format!("/sync-commands/{id}"), Some(TOKEN_A), Some(serde_json::json!({"pipeline": format!("jushuitan-{object}")})))
            .await;
        assert_eq!(code, 201, "{r}");
        ids.push(id);
    }
    // Calls by object, every 100 ms while they run (at most 3 minutes).
    let mut samples = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        samples.push(source.state.stats().calls);
        let mut done = 0;
        for id in &ids {
            let (_, r) = s.call(reqwest::Method::GET, &format!("/sync-commands/{id}"), Some(TOKEN_A), None).await;
            done += usize::from(matches!(r["status"].as_str(), Some("succeeded" | "failed")));
        }
        if done == ids.len() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the syncs did not end within 3 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let (_, r) = s.call(reqwest::Method::GET, &format!("/sync-commands/{id}"), Some(TOKEN_A), None).await;
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let stats = source.state.stats();
    assert_eq!((stats.code199, stats.code200), (0, 0), "the shared budget held: {stats:?}");
    let last = stats.calls.clone();
    let total: u64 = last.values().sum();
    let half = samples.iter().find(|c| c.values().sum::<u64>() * 2 >= total).expect("a sample past half");
    let so_far: u64 = half.values().sum();
    for (_, api) in OBJECTS {
        let (then, all) = (half.get(api).copied().unwrap_or(0), last[api]);
        let share = so_far / (2 * OBJECTS.len() as u64);
        assert!(
            then >= all.min(share),
            "{api} made {then} of its {all} calls by the time {so_far} of all {total} were made (half an equal share: {share}): starved ({half:?})"
        );
    }
    eprintln!("calls by object when half were made: {half:?}; in all: {last:?}");
    for ((object, api), target) in OBJECTS.iter().zip(&targets) {
        assert_complete(object, api, &source.state, &target.state);
    }
    s.stop().await;
}

/// The hostile-answer modes reach every object: spellings, lies (a null or
/// missing list, short, empty and repeated pages, HTML) and row versions
/// past 2^53 on the stock's `ts` cursor, and the items' page mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_for_other_objects() {
    let lies = [
        "has-next-spellings",
        "numbers-as-strings",
        "null-list:0.08",
        "missing-list:0.05",
        "short-page:0.08",
        "empty-page:0.05",
        "repeat-page:0.05",
        "html:0.03",
    ];
    object_end_to_end_with("stock", "inventory.query", 311, &[&lies[..], &["big-ts"]].concat()).await;
    object_end_to_end_with("items", "sku.query", 312, &lies).await;
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
