//! The QingYiYun scheme's keys beyond the seed's block, end to end through
//! the sales-orders example: `condition` (groups, item rows, strict mode,
//! the dropped counted) and `omissionRemedy` (a gap only it fills).

use crate::helpers::ferry_command;
use crate::objects::localize;
use crate::serve::{Server, TOKEN_A};
use ferry_sim::jushuitan::{self, SimState};
use ferry_sim::target::{self, TargetSimConfig};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sales-orders example in `dir`, against the simulators, with
/// `scheme` (JSON members) added to its metadata block.
fn sales_pipeline(dir: &Path, app: &str, source: &str, target: &str, start: &str, scheme: &str) -> PathBuf {
    localize("sales-orders", dir, app, [source, target, start], scheme, None)
}

fn run_json(file: &Path) -> Value {
    let out = ferry_command(&["--log-format", "json", "run", file.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Sales orders the condition keeps, by id, with the skus of the item
/// rows it keeps (`strict`: only orders whose every item row passes).
fn expected(source: &SimState, strict: bool) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for row in source.object_truth("orders.single.query").unwrap() {
        let items = row["items"].as_array().unwrap();
        let big: Vec<&Value> = items.iter().filter(|i| i["qty"].as_i64().unwrap() >= 3).collect();
        let keep = row["status"] == "Sent" && if strict { big.len() == items.len() } else { !big.is_empty() };
        if keep {
            let skus: Vec<&str> = (if strict { items.iter().collect() } else { big }).iter().map(|i| i["sku_id"].as_str().unwrap()).collect();
            out.insert(row["o_id"].to_string(), skus.join(","));
        }
    }
    out
}

/// `condition` with a record test and an item-row test: the target gets
/// exactly the orders that pass, with only the item rows that pass (or, in
/// strict mode, only orders whose every item row passes), and the run
/// counts every dropped record as skipped by the condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_filters_records_and_item_rows() {
    for strict in [false, true] {
        let app = format!("app-condition-{strict}");
        let cfg = crate::helpers::source_config(320 + u64::from(strict), &app, 400);
        let start = ferry::time::format(cfg.from);
        let source = jushuitan::start(cfg, 0).await.unwrap();
        let target = target::start(TargetSimConfig::default(), 0).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let groups = r#"[[{"field": "status", "logic": "eq", "value": "Sent"}, {"field": "items.qty", "logic": "egt", "value": 3}]]"#;
        let scheme = format!(r#""condition": {{"strict": {strict}, "groups": {groups}}}"#);
        let file = sales_pipeline(dir.path(), &app, &source.url, &target.url, &start, &scheme);
        let summary = tokio::task::spawn_blocking(move || run_json(&file)).await.unwrap();
        let want = expected(&source.state, strict);
        let all = source.state.object_truth("orders.single.query").unwrap().len() as u64;
        assert!(!want.is_empty() && (want.len() as u64) < all, "the condition keeps some and drops some ({} of {all})", want.len());
        let got: std::collections::BTreeMap<String, String> =
            target.state.truth().records.iter().map(|(id, r)| (id.clone(), r["商品编码"].as_str().unwrap_or_default().to_string())).collect();
        assert_eq!(got, want, "strict = {strict}");
        assert_eq!(summary["skipped_condition"].as_u64(), Some(all - want.len() as u64), "strict = {strict}: {summary}");
    }
}

/// `omissionRemedy`: orders that appear only after their windows were read
/// (modified 90 minutes ago) are a gap an incremental sync cannot see; the
/// remedy's scheduled re-read of the last 3 hours finds and delivers them,
/// once, and its command counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omission_remedy_fills_a_gap_nothing_else_sees() {
    let app = "app-remedy";
    let cfg = crate::helpers::source_config(330, app, 300);
    let start = ferry::time::format(cfg.from);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    let target = target::start(TargetSimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sales_pipeline(dir.path(), app, &source.url, &target.url, &start, r#""omissionRemedy": {"every": "4s", "range": "3h"}"#);
    let serve =
        format!("listen = \"127.0.0.1:0\"\n[[tokens]]\ntoken = \"{TOKEN_A}\"\ntenant = \"demo\"\n[[pipelines]]\nfile = \"jushuitan-sales-orders.toml\"\n");
    std::fs::write(dir.path().join("serve.toml"), serve).unwrap();
    let s = Server::from_file(&dir.path().join("serve.toml")).await;
    async fn sync(s: &Server) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        let (code, r) = s.call(Method::PUT, &format!("/sync-commands/{id}"), Some(TOKEN_A), Some(json!({"pipeline": "jushuitan-sales-orders"}))).await;
        assert_eq!(code, 201, "{r}");
        s.wait_done(&id).await
    }
    let missing = || {
        let at = target.state.truth();
        let rows = source.state.object_truth("orders.single.query").unwrap();
        rows.iter().filter(|r| at.records.get(&r["o_id"].to_string()).map(|t| t["modified"].clone()) != Some(r["modified"].clone())).count()
    };
    assert_eq!(sync(&s).await["status"], "succeeded");
    assert_eq!(missing(), 0);
    source.state.add_late(5, Duration::from_secs(90 * 60));
    let after = sync(&s).await;
    assert_eq!(
        (after["status"].as_str(), after["taskCount"]["success"].as_u64()),
        (Some("succeeded"), Some(0)),
        "an incremental sync cannot see them: {after}"
    );
    crate::alerts::until("the remedy fills the gap", || missing() == 0).await;
    assert!(target.state.truth().doubled().is_empty());
    // The remedy's command says what it filled.
    let (_, page) = s.call(Method::GET, "/sync-commands?pipeline=jushuitan-sales-orders&limit=100", Some(TOKEN_A), None).await;
    let filled: u64 =
        page["items"].as_array().unwrap().iter().filter(|c| c["origin"] == "omissionRemedy").filter_map(|c| c["taskCount"]["success"].as_u64()).sum();
    assert_eq!(filled, 5, "{page}");
    s.stop().await;
}

/// Scheme-level `beatFlat`: every purchase receipt becomes one record per
/// item row, ids suffixed `-0`, `-1`, ..., each delivered once (a second
/// run delivers nothing: idCheck knows each flat record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_flat_makes_a_record_per_item_row() {
    let app = "app-beat-flat";
    let cfg = crate::helpers::source_config(340, app, 300);
    let start = ferry::time::format(cfg.from);
    let source = jushuitan::start(cfg, 0).await.unwrap();
    let target = target::start(TargetSimConfig::default(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = r#"fields = [
  { to = "id", from = "io_id", format = "string", required = true },
  { to = "modified", from = "modified", required = true },
  { to = "商品编码", from = "items.sku_id", required = true },
  { to = "数量", from = "items.qty", format = "intval" },
]"#;
    let file = localize("purchase-receipts", dir.path(), app, [&source.url, &target.url, &start], r#""beatFlat": "items""#, Some(options));
    let f = file.clone();
    let first = tokio::task::spawn_blocking(move || run_json(&f)).await.unwrap();
    let mut want = std::collections::BTreeMap::new();
    for row in source.state.object_truth("purchasein.query").unwrap() {
        for (i, item) in row["items"].as_array().unwrap().iter().enumerate() {
            want.insert(format!("{}-{i}", row["io_id"]), item["sku_id"].as_str().unwrap().to_string());
        }
    }
    let got: std::collections::BTreeMap<String, String> =
        target.state.truth().records.iter().map(|(id, r)| (id.clone(), r["商品编码"].as_str().unwrap_or_default().to_string())).collect();
    assert_eq!(got, want);
    assert_eq!(first["delivered"].as_u64(), Some(want.len() as u64), "{first}");
    let again = tokio::task::spawn_blocking(move || run_json(&file)).await.unwrap();
    assert_eq!(again["delivered"].as_u64(), Some(0), "{again}");
    assert!(target.state.truth().doubled().is_empty());
}
