//! The Jushuitan client against the simulator: signing, fail-fast codes,
//! faults, mutation while paging, and the rate-limit budget.

use ferry::source::jushuitan::metadata::{Metadata, Request, SEED_METADATA};
use ferry::source::jushuitan::{ClientConfig, JushuitanClient, PagingMode, Secret, SourceError, Window, planner};
use ferry_sim::jushuitan::{self, Faults, JushuitanSimConfig, Mutation, SimState};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

fn sim_config(seed: u64, app: &str, orders: usize) -> JushuitanSimConfig {
    let mut c = crate::helpers::source_config(seed, app, orders);
    c.per_second = 1000;
    c
}

fn client(url: &str, sim: &JushuitanSimConfig) -> JushuitanClient {
    JushuitanClient::new(
        ClientConfig {
            base_url: url.into(),
            app_key: sim.app_key.clone(),
            app_secret: Secret::new(sim.app_secret.clone()),
            access_token: Secret::new(sim.access_token.clone()),
            timeout: Duration::from_millis(700),
            per_second: sim.per_second,
            per_minute: sim.per_minute,
            max_attempts: 12,
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
            tokens: None,
        },
        None,
    )
    .unwrap()
}

fn request() -> Request {
    serde_json::from_str::<Metadata>(SEED_METADATA).unwrap().compile().unwrap().0
}

fn all_statuses() -> Request {
    let mut meta: Value = serde_json::from_str(SEED_METADATA).unwrap();
    meta["request"].as_array_mut().unwrap().retain(|f| f["field"] != "status");
    serde_json::from_value::<Metadata>(meta).unwrap().compile().unwrap().0
}

/// Reads every window from `from` to now - lag; returns o_id -> (modified, ts).
async fn sync(client: &JushuitanClient, req: &Request, from: Timestamp, span: Duration, mode: PagingMode) -> BTreeMap<u64, (String, u64)> {
    let windows = planner::incremental(None, from, Timestamp::now(), Duration::from_secs(1), Duration::ZERO, span);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut got = BTreeMap::new();
        while let Some(fetched) = rx.recv().await {
            let fetched: ferry::source::jushuitan::Fetched = fetched;
            for r in fetched.rows {
                let r: ferry::source::jushuitan::Row = r;
                let v: Value = serde_json::from_str(&r.raw).unwrap();
                assert_eq!(
                    (r.id.as_str(), r.version.as_str()),
                    (v["o_id"].to_string().as_str(), v["modified"].as_str().unwrap()),
                    "the keys read match the row"
                );
                got.insert(v["o_id"].as_u64().unwrap(), (r.version, r.ts.unwrap()));
            }
        }
        got
    });
    for w in &windows {
        client.fetch_window(req, w, mode, 0, &tx).await.unwrap_or_else(|e| panic!("window {w}: {e}"));
    }
    drop(tx);
    collector.await.unwrap()
}

fn truth_versions(sim: &SimState, status: Option<&str>) -> BTreeMap<u64, (String, u64)> {
    sim.truth().orders.into_iter().filter(|o| status.is_none_or(|s| o.status == s)).map(|o| (o.o_id, (o.modified, o.ts))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_pass_the_simulators_check_and_bad_ones_fail_fast() {
    let cfg = sim_config(1, "app-sign", 50);
    let sim = jushuitan::start(cfg.clone(), 0).await.unwrap();
    let req = request();
    let now = Timestamp::now();
    let w = Window { begin: now - SignedDuration::from_hours(80), end: now };
    let (b, e) = (ferry::time::format(w.begin), ferry::time::format(w.end));
    let biz = req.render(&ferry::source::jushuitan::metadata::Vars { last_sync_time: &b, current_time: &e, page: 1 });
    let data: Value = client(&sim.url, &cfg).call(&req.path(), &biz).await.expect("signed call accepted");
    assert!(data["datas"].as_array().is_some_and(|d| !d.is_empty()));

    let code = |r: Result<Value, SourceError>| match r {
        Err(SourceError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mut bad = cfg.clone();
    bad.app_secret = "wrong".into();
    assert_eq!(code(client(&sim.url, &bad).call(&req.path(), &biz).await), 10);
    let mut bad = cfg.clone();
    bad.access_token = "expired".into();
    assert_eq!(code(client(&sim.url, &bad).call(&req.path(), &biz).await), 100);
    let mut too_big = biz.clone();
    too_big["page_size"] = json!(100);
    let err = client(&sim.url, &cfg).call::<Value>(&req.path(), &too_big).await.unwrap_err();
    assert!(matches!(&err, SourceError::Refused { code: 140, msg, .. } if msg.contains("page_size")), "{err}");
    let mut long = biz.clone();
    long["modified_begin"] = json!("2020-01-01 00:00:00");
    assert_eq!(code(client(&sim.url, &cfg).call(&req.path(), &long).await), 140);
    let err = client(&sim.url, &bad).call::<Value>(&req.path(), &biz).await.unwrap_err().to_string();
    assert!(err.contains("refresh the access_token") && !err.contains("expired\""), "{err}");

    // A stale timestamp, signed correctly: code 180.
    let mut fields: BTreeMap<String, String> = client(&sim.url, &cfg).signed_fields(&biz, &Secret::new(cfg.access_token.clone()));
    fields.insert("timestamp".into(), (now.as_second() - 3600).to_string());
    fields.remove("sign");
    let sign = ferry::source::jushuitan::sign::sign(&cfg.app_secret, &fields);
    fields.insert("sign".into(), sign);
    let answer: Value = reqwest::Client::new().post(format!("{}{}", sim.url, req.path())).form(&fields).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["code"], json!(180));
    let stats = sim.state.stats();
    assert_eq!((stats.code10, stats.code100, stats.code140, stats.code180), (1, 2, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_fetched_despite_faults() {
    let mut cfg = sim_config(7, "app-faults", 3000);
    cfg.faults = Faults { http500: 0.07, slow: 0.08, reset: 0.07, truncated: 0.07, slow_delay: Duration::from_millis(1500) };
    let sim = jushuitan::start(cfg.clone(), 0).await.unwrap();
    let c = client(&sim.url, &cfg);
    let got = sync(&c, &request(), cfg.from, Duration::from_secs(6 * 3600), PagingMode::Ts).await;
    assert_eq!(got, truth_versions(&sim.state, Some("Confirmed")), "every confirmed order, latest version");
    let s = sim.state.stats();
    assert!(s.fault_500 > 0 && s.fault_slow > 0 && s.fault_reset > 0 && s.fault_truncated > 0, "{s:?}");
    let retries: u64 = c.stats.total_retries();
    assert!(retries >= s.fault_500 + s.fault_reset + s.fault_truncated, "{:?}", c.stats.retries());
}

async fn mutation_case(mode: PagingMode, seed: u64, app: &str) {
    let mut cfg = sim_config(seed, app, 1200);
    cfg.mutation = Mutation { changes_per_request: 2.0, new_per_request: 1.0, ..Mutation::default() };
    let sim = jushuitan::start(cfg.clone(), 0).await.unwrap();
    let c = client(&sim.url, &cfg);
    let req = all_statuses();
    let first = sync(&c, &req, cfg.from, Duration::from_secs(6 * 3600), mode).await;
    let changed = sim.state.stats().orders_changed;
    assert!(changed > 20, "the simulator changed orders during the sync ({changed})");
    sim.state.set_mutation(Mutation::default());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run_start = Timestamp::now();
    let second = sync(&c, &req, run_start - SignedDuration::from_mins(5), Duration::from_secs(3600), mode).await;
    let mut delivered = first;
    delivered.extend(second);
    let truth = truth_versions(&sim.state, None);
    let missing: Vec<_> = truth.iter().filter(|(id, v)| delivered.get(id) != Some(v)).map(|(id, _)| *id).collect();
    assert!(missing.is_empty(), "{mode:?}: {} orders missing or stale: {:?}", missing.len(), &missing[..missing.len().min(10)]);
    if mode == PagingMode::Page {
        assert!(c.stats.drift_rereads.load(std::sync::atomic::Ordering::Relaxed) > 0, "drift was detected and recovered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_ts_cursor_misses_nothing() {
    mutation_case(PagingMode::Ts, 11, "app-mut-ts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_page_mode_misses_nothing() {
    mutation_case(PagingMode::Page, 12, "app-mut-page").await;
}

/// Long: about 75 s of wall clock against the default 5/s, 100/min budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_are_used_but_never_tripped() {
    let mut cfg = JushuitanSimConfig::new(3);
    cfg.app_key = "app-budget".into();
    cfg.orders = 6000;
    let sim = jushuitan::start(cfg.clone(), 0).await.unwrap();
    let c = client(&sim.url, &cfg);
    let got = sync(&c, &all_statuses(), cfg.from, Duration::from_secs(7 * 24 * 3600), PagingMode::Ts).await;
    assert_eq!(got.len(), 6000);
    let s = sim.state.stats();
    assert_eq!((s.code199, s.code200), (0, 0), "no rate-limit refusals");
    assert!(s.max_per_minute >= 90, "used {} of 100 calls in the busiest minute", s.max_per_minute);
    assert!(s.accepted > 100);
}
