//! `ferry reconcile`: records removed at the target behind Ferry's back
//! are found by the target's lookup, exactly those, and delivered once; a
//! version Ferry's ledger lost is found by the source's count alone; a
//! range past the checkpoint is refused.

use crate::helpers::{ferry_async, harness, source_config};
use ferry::state::{RecordKey, StateLocation};
use ferry_sim::target::TargetSimConfig;
use serde_json::Value;
use std::collections::BTreeSet;

fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn ids(missing: &Value) -> BTreeSet<String> {
    missing.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_what_the_target_lost_and_delivers_it_once() {
    let h = harness(source_config(81, "app-reconcile", 300), TargetSimConfig::default()).await;
    let spec = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    let lookup = format!("[target]\nlookup = \"{}/records/order-commands/{{id}}\"\n", h.target.url);
    let with_lookup = h.dir.path().join("lookup.toml");
    std::fs::write(&with_lookup, spec.toml().replace("[target]\n", &lookup)).unwrap();
    let (with_lookup, plain) = (with_lookup.to_str().unwrap().to_string(), h.write(&spec));
    let out = ferry_async(vec!["run".into(), plain.clone()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(h.missing().is_empty());

    // Counts agree: nothing is listed, nothing missing.
    let since = h.start.clone();
    let args =
        |file: &str, more: &[&str]| [&["reconcile", file, "--since", since.as_str(), "--json"][..], more].concat().iter().map(|s| s.to_string()).collect();
    let clean = ferry_async(args(&plain, &[])).await;
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stderr));
    let r = report(&clean);
    assert!(r["sourceCount"].as_u64().unwrap() > 0 && r["sourceCount"] == r["ferryCount"], "{r}");
    assert!(r["windows"].as_array().unwrap().iter().all(|w| w["listed"] == false), "{r}");

    // Five orders deleted at the target behind Ferry's back.
    let confirmed: Vec<_> = h.source.state.truth().orders.into_iter().filter(|o| o.status == "Confirmed").collect();
    let removed: Vec<String> = confirmed.iter().step_by(confirmed.len() / 5).take(5).map(|o| o.o_id.to_string()).collect();
    assert_eq!(h.target.state.remove_records(&removed), 5);
    let expected: BTreeSet<String> = removed.iter().cloned().collect();
    // The counts cannot see it; the lookup does, exactly those.
    let r = report(&ferry_async(args(&plain, &[])).await);
    assert_eq!(r["missing"].as_array().unwrap().len(), 0, "{r}");
    let found = ferry_async(args(&with_lookup, &[])).await;
    assert_eq!(found.status.code(), Some(1), "missing records exit 1: {}", String::from_utf8_lossy(&found.stderr));
    let r = report(&found);
    assert_eq!(ids(&r["missing"]), expected, "{r}");
    assert!(r["missing"].as_array().unwrap().iter().all(|m| m["why"] == "lost_at_target"), "{r}");
    let commands = h.target.state.truth().commands;
    let fixed = ferry_async(args(&with_lookup, &["--deliver"])).await;
    assert_eq!(fixed.status.code(), Some(0), "{}", String::from_utf8_lossy(&fixed.stderr));
    let r = report(&fixed);
    assert_eq!((r["delivered"].as_u64(), r["stillMissing"].as_array().map(Vec::len)), (Some(5), Some(0)), "{r}");
    assert!(h.missing().is_empty(), "{:?}", h.missing());
    assert!(
        h.each_once(),
        "each removed order delivered once again, nothing else: {:?}",
        h.target.state.truth().versions.iter().filter(|v| *v.1 != 1).collect::<Vec<_>>()
    );
    assert!(h.target.state.truth().commands > commands, "through the outbox and new commands");

    // Ferry's ledger loses a version (and the target the record): the source's count tells.
    let lost = &confirmed[7];
    let id = lost.o_id.to_string();
    h.target.state.remove_records(std::slice::from_ref(&id));
    let state = StateLocation::Sqlite(h.state.clone()).open().unwrap();
    state.forget("it-orders", &[RecordKey { id: id.clone(), version: format!("{} io_id={}", lost.modified, lost.io_id) }]).unwrap();
    drop(state);
    let r = report(&ferry_async(args(&plain, &["--deliver"])).await);
    let listed: Vec<&Value> = r["windows"].as_array().unwrap().iter().filter(|w| w["listed"] == true).collect();
    assert_eq!(listed.len(), 1, "only the window whose counts differ is listed: {r}");
    assert_eq!(ids(&r["missing"]), BTreeSet::from([id.clone()]), "{r}");
    assert_eq!(r["missing"][0]["why"], "never_delivered");
    assert_eq!(r["stillMissing"].as_array().map(Vec::len), Some(0), "{r}");
    assert!(h.missing().is_empty() && h.each_once());

    // Past the checkpoint: refused, naming it.
    let late = ferry_async(vec!["reconcile".into(), plain.clone(), "--until".into(), "2099-01-01 00:00:00".into()]).await;
    assert_eq!(late.status.code(), Some(2));
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(err.contains("is past what is synced") && err.contains("the checkpoint is"), "{err}");
    // The table names the windows and the totals.
    let table = ferry_async(vec!["reconcile".into(), plain, "--since".into(), since]).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("window") && text.contains("source") && text.contains("total") && text.contains("missing: 0"), "{text}");
}

/// In `ferry serve`: a scheduled reconciliation finds what the target lost
/// and alerts; `POST /pipelines/{name}/reconcile` delivers it, the alert
/// resolves, the pipeline's view shows the last report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reconciles_on_schedule_and_on_request() {
    use crate::alerts::{receiver, sync, until};
    use crate::serve::{Server, TOKEN_A};
    use reqwest::Method;
    let (url, got) = receiver().await;
    let h = harness(source_config(83, "app-reconcile-serve", 200), TargetSimConfig::default()).await;
    let entry = "reconcile = { every = \"2s\", range = \"30d\", deliver = false }\n";
    let alert = format!("[alerting]\nevery = \"1s\"\n[[alerts]]\nwhen = \"reconcile_missing\"\nwebhook = \"{url}/missing\"\n");
    let s = Server::start_entry(&h, ferry_fixtures::JUSHUITAN_ORDERS, entry, &alert).await;
    assert_eq!(sync(&s).await["status"], "succeeded");
    let confirmed: Vec<String> = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed").map(|o| o.o_id.to_string()).collect();
    let removed: Vec<String> = confirmed.iter().take(3).cloned().collect();
    h.target.state.remove_records(&removed);
    until("the scheduled reconciliation alerts", || got.states("missing") == ["firing"]).await;
    let (_, view) = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await;
    let last = &view["lastReconcile"];
    assert_eq!(ids(&last["missing"]), removed.iter().cloned().collect(), "{last}");
    assert!(last["delivered"].is_null(), "the schedule only reports (deliver = false): {last}");
    // Bad input names the field.
    let (code, e) = s.call(Method::POST, "/pipelines/it-orders/reconcile", Some(TOKEN_A), Some(serde_json::json!({"since": "soon"}))).await;
    assert_eq!(code, 400, "{e}");
    assert!(e["error"].as_str().unwrap().starts_with("since: "), "{e}");
    assert_eq!(s.call(Method::POST, "/pipelines/it-orders/reconcile", Some(TOKEN_A), Some(serde_json::json!({"waitSeconds": 301}))).await.0, 400);
    // On request, delivering (a scheduled check may hold the pipeline for a moment: 409, again).
    let (code, r) = post_when_free(&s, serde_json::json!({"since": h.start, "deliver": true, "waitSeconds": 60})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!((r["delivered"].as_u64(), r["stillMissing"].as_array().map(Vec::len)), (Some(3), Some(0)), "{r}");
    assert!(h.missing().is_empty() && h.each_once());
    until("the alert resolves", || got.states("missing") == ["firing", "resolved"]).await;
    // One that outlasts its wait is 202 and goes on; its report becomes the last one.
    let before = last["at"].clone();
    let (code, r) = post_when_free(&s, serde_json::json!({"since": h.start, "waitSeconds": 0})).await;
    assert_eq!(code, 202, "{r}");
    assert!(r["startedAt"].as_str().is_some_and(|t| t.ends_with("+08:00")), "{r}");
    let mut view = serde_json::Value::Null;
    for _ in 0..200 {
        view = s.call(Method::GET, "/pipelines/it-orders", Some(TOKEN_A), None).await.1;
        if view["reconcilingSince"].is_null() && view["lastReconcile"]["at"] != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(view["reconcilingSince"].is_null() && view["lastReconcile"]["missing"].as_array().is_some_and(Vec::is_empty), "{view}");
    s.stop().await;
}

/// POSTs a reconciliation, again while a scheduled one holds the pipeline (409).
async fn post_when_free(s: &crate::serve::Server, body: serde_json::Value) -> (u16, serde_json::Value) {
    for _ in 0..100 {
        let (code, r) = s.call(reqwest::Method::POST, "/pipelines/it-orders/reconcile", Some(crate::serve::TOKEN_A), Some(body.clone())).await;
        if code != 409 {
            return (code, r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the pipeline was not free within 10 s");
}
