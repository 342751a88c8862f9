//! No silent loss, whatever the source answers: every quirk mode of the
//! Jushuitan simulator against the whole pipeline. A spelling is read and
//! everything is delivered; a lie now and then is read again and everything
//! is delivered; a lie that persists fails the run loudly with the
//! checkpoint unmoved, and a run on the healed source delivers everything.

use crate::helpers::{Harness, harness, source_config};
use ferry::pipeline::RunStatus;
use ferry::pipeline::{Pipeline, RunOptions, Runner, Summary};
use ferry_sim::jushuitan::{Quirk, QuirkRule};
use ferry_sim::target::{TargetQuirk, TargetSimConfig};
use std::collections::BTreeSet;

fn rule(quirk: Quirk, rate: f64) -> QuirkRule {
    QuirkRule { quirk, rate }
}

/// A pipeline over `orders` orders (3 days) with the given quirks and
/// paging; `app` keeps each test's budget apart.
async fn setup(seed: u64, app: &str, orders: usize, quirks: Vec<QuirkRule>, paging: &str) -> (Harness, Pipeline) {
    setup_with(seed, app, orders, quirks, paging, TargetSimConfig::default(), ferry_fixtures::JUSHUITAN_ORDERS, "{}").await
}

#[allow(clippy::too_many_arguments)]
async fn setup_with(
    seed: u64,
    app: &str,
    orders: usize,
    quirks: Vec<QuirkRule>,
    paging: &str,
    target: TargetSimConfig,
    plugin: &str,
    options: &str,
) -> (Harness, Pipeline) {
    let mut cfg = source_config(seed, app, orders);
    cfg.quirks = quirks;
    let h = harness(cfg, target).await;
    let mut s = h.spec(plugin);
    s.mapping_options = options;
    (s.batch_size, s.concurrency) = (40, 4);
    let toml = s.toml().replace("window = \"1d\"", &format!("window = \"1d\"\npaging = \"{paging}\""));
    std::fs::write(&h.file, toml).unwrap();
    let pipeline = Pipeline::load(&h.file).unwrap();
    (h, pipeline)
}

async fn run(p: &Pipeline) -> (Summary, Option<jiff::Timestamp>) {
    let runner = Runner::new(p.clone(), crate::helpers::engine(), false).unwrap();
    let summary = runner.run(RunOptions::incremental()).await;
    let checkpoint = runner.state.checkpoint(&p.name).unwrap();
    (summary, checkpoint)
}

fn assert_all_once(h: &Harness, what: &str, summary: &Summary) {
    let missing = h.missing();
    assert!(missing.is_empty(), "{what}: {} orders missing, e.g. {:?}\n{}", missing.len(), &missing[..missing.len().min(5)], summary.render());
    assert!(h.each_once(), "{what}: doubled {:?}", h.target.state.truth().doubled());
}

/// Every spelling at once, in both paging modes: read, mapped, delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_is_read_and_delivered() {
    let spellings = [Quirk::HasNextSpellings, Quirk::NumbersAsStrings, Quirk::NullTexts, Quirk::BigTs];
    for (i, paging) in ["ts", "page"].into_iter().enumerate() {
        let (h, p) = setup(31 + i as u64, &format!("app-spell-{paging}"), 500, spellings.iter().map(|q| rule(*q, 1.0)).collect(), paging).await;
        let (summary, _) = run(&p).await;
        assert_eq!(summary.status, RunStatus::Ok, "{paging}: {}", summary.render());
        assert_all_once(&h, paging, &summary);
        let truth = h.target.state.truth();
        let itemless = h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed" && o.o_id % 7 == 0).count();
        assert!(itemless > 0 && truth.records.values().any(|r| r["items_detail"] == serde_json::json!([])), "orders with `items: null` were delivered");
    }
}

/// A 30 MB page: its batch is over `max_input_bytes`, so it is mapped in
/// halves; every order is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mb_page_is_delivered() {
    let (h, p) = setup(37, "app-huge-page", 300, vec![rule(Quirk::HugePage, 1.0)], "ts").await;
    let (summary, _) = run(&p).await;
    assert_eq!(summary.status, RunStatus::Ok, "{}", summary.render());
    assert_all_once(&h, "huge page", &summary);
}

const LIES: [Quirk; 10] = [
    Quirk::NullList,
    Quirk::MissingList,
    Quirk::WrongTypeList,
    Quirk::ShortPage,
    Quirk::EmptyPage,
    Quirk::HasNextForever,
    Quirk::RepeatPage,
    Quirk::OtherWindow,
    Quirk::OutsideRows,
    Quirk::Html,
];

/// Each lie, now and then: the page is read again, nothing is lost.
async fn lies_now_and_then(paging: &str, seed: u64) {
    for (i, quirk) in LIES.into_iter().enumerate() {
        let name = quirk.name();
        let (h, p) = setup(seed + i as u64, &format!("app-lie-{name}-{paging}"), 1000, vec![rule(quirk, 0.25)], paging).await;
        let (summary, _) = run(&p).await;
        let lies = h.source.state.stats().lies;
        assert_eq!(summary.status, RunStatus::Ok, "{name} ({paging}), {lies} lies: {}", summary.render());
        assert!(lies > 0, "{name} ({paging}): the simulator lied");
        assert_all_once(&h, &name, &summary);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_now_and_then_are_read_again_ts() {
    lies_now_and_then("ts", 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_now_and_then_are_read_again_page() {
    lies_now_and_then("page", 200).await;
}

/// Each lie on every answer: either the truth is still proven (a repeated
/// page re-read is the right one) or the run fails naming the window, with
/// the checkpoint unmoved; the next run on a healed source delivers all.
async fn lies_that_persist(paging: &str, seed: u64) {
    for (i, quirk) in LIES.into_iter().enumerate() {
        let name = quirk.name();
        let (h, p) = setup(seed + i as u64, &format!("app-persist-{name}-{paging}"), 400, vec![rule(quirk, 1.0)], paging).await;
        let (summary, checkpoint) = run(&p).await;
        if summary.status == RunStatus::Ok {
            assert_all_once(&h, &name, &summary);
            continue;
        }
        assert_eq!((summary.status.as_str(), summary.exit_code()), ("failed", 2), "{name} ({paging}): {}", summary.render());
        let error = summary.error.clone().unwrap_or_default();
        assert!(error.contains('[') && error.contains(".."), "{name}: the error names the window: {error}");
        assert_eq!(checkpoint, None, "{name} ({paging}): the checkpoint did not move: {}", summary.render());
        h.source.state.set_quirks(Vec::new());
        let (healed, _) = run(&p).await;
        assert_eq!(healed.status, RunStatus::Ok, "{name} ({paging}) healed: {}", healed.render());
        assert_all_once(&h, &name, &healed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_that_persist_fail_loudly_ts() {
    lies_that_persist("ts", 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_that_persist_fail_loudly_page() {
    lies_that_persist("page", 400).await;
}

/// Confirmed orders whose `o_id` is a multiple of `every`.
fn multiples(h: &Harness, every: u64) -> BTreeSet<u64> {
    h.source.state.truth().orders.iter().filter(|o| o.status == "Confirmed" && o.o_id % every == 0).map(|o| o.o_id).collect()
}

/// Exactly the refused orders are in dead letters and missing at the
/// target; every other order is there once; a second run has nothing left.
async fn refused_exactly(h: &Harness, p: &Pipeline, refused: &BTreeSet<u64>, what: &str) {
    let runner = Runner::new(p.clone(), crate::helpers::engine(), false).unwrap();
    let summary = runner.run(RunOptions::incremental()).await;
    assert_eq!((summary.status.as_str(), summary.exit_code()), ("partial", 1), "{what}: {}", summary.render());
    let dead: BTreeSet<u64> = runner.state.dead_letters(&p.name).unwrap().iter().map(|d| d.key.id.parse().unwrap()).collect();
    let missing: BTreeSet<u64> = h.missing().into_iter().collect();
    assert!(!refused.is_empty());
    assert_eq!(&dead, refused, "{what}: dead letters are exactly the refused orders");
    assert_eq!(&missing, refused, "{what}: nothing else is missing");
    assert!(h.each_once(), "{what}: doubled {:?}", h.target.state.truth().doubled());
    let t = summary.task_count;
    assert_eq!(
        (t.success + t.failed, t.success, summary.delivered as usize),
        (t.total, h.target.state.truth().records.len() as u64, h.target.state.truth().records.len()),
        "{what}: Ferry's count adds up and matches the target: {}",
        summary.render()
    );
    assert!(runner.state.pending(&p.name).unwrap().is_empty(), "{what}: nothing is stuck in the outbox");
    let again = Runner::new(p.clone(), crate::helpers::engine(), false).unwrap().run(RunOptions::incremental()).await;
    assert_eq!((again.status.as_str(), again.commands), ("ok", 0), "{what}: {}", again.render());
}

/// Failed tasks that name their record oddly, or not at all, and counts
/// that do not add up: the refused orders go to dead letters, never into
/// "success", and the rest is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_answers_are_reconciled_record_by_record() {
    let quirks =
        [TargetQuirk::RecordIdNumber, TargetQuirk::RecordIdMissing, TargetQuirk::RecordIdUnknown, TargetQuirk::CountMismatch, TargetQuirk::TasksDisagree];
    for (i, quirk) in quirks.into_iter().enumerate() {
        let target = TargetSimConfig { refuse_every: 7, quirks: vec![quirk], ..TargetSimConfig::default() };
        let (h, p) = setup_with(60 + i as u64, &format!("app-target-{quirk:?}"), 300, Vec::new(), "ts", target, ferry_fixtures::JUSHUITAN_ORDERS, "{}").await;
        refused_exactly(&h, &p, &multiples(&h, 7), &format!("{quirk:?}")).await;
    }
}

/// HTTP 400 for a whole command: halves are sent until the refused
/// records are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_refused_whole_is_split_to_the_bad_records() {
    let target = TargetSimConfig { refuse_every: 13, quirks: vec![TargetQuirk::RejectWhole], ..TargetSimConfig::default() };
    let (h, p) = setup_with(70, "app-target-reject-whole", 400, Vec::new(), "ts", target, ferry_fixtures::JUSHUITAN_ORDERS, "{}").await;
    refused_exactly(&h, &p, &multiples(&h, 13), "reject-whole").await;
    let reasons: Vec<String> =
        Runner::new(p.clone(), crate::helpers::engine(), false).unwrap().state.dead_letters(&p.name).unwrap().into_iter().map(|d| d.reason).collect();
    assert!(reasons.iter().all(|r| r.contains("HTTP 400") && r.contains("multiple of 13")), "{reasons:?}");
}

/// A record that makes its batch trap goes to dead letters alone; its
/// batch-mates are mapped and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_traps_its_batch_costs_only_itself() {
    let (h, p) =
        setup_with(80, "app-trap-one", 300, Vec::new(), "ts", TargetSimConfig::default(), ferry_fixtures::MISBEHAVE, r#"{ do = "panic-every", every = 11 }"#)
            .await;
    let runner = Runner::new(p.clone(), crate::helpers::engine(), false).unwrap();
    let summary = runner.run(RunOptions::incremental()).await;
    assert_eq!(summary.status, RunStatus::Partial, "{}", summary.render());
    let dead = runner.state.dead_letters(&p.name).unwrap();
    let ids: BTreeSet<u64> = dead.iter().map(|d| d.key.id.parse().unwrap()).collect();
    assert_eq!(ids, multiples(&h, 11));
    assert!(dead.iter().all(|d| d.reason.contains("on this record alone") && d.reason.contains("on purpose")), "{:?}", dead[0].reason);
    let missing: BTreeSet<u64> = h.missing().into_iter().collect();
    // The fixture maps `{id, modified}`: everything but the trapping orders lands.
    assert_eq!(missing, multiples(&h, 11));

    // A fixed mapping; replay one record by id, then the rest by reason.
    let mut s = h.spec(ferry_fixtures::JUSHUITAN_ORDERS);
    (s.batch_size, s.concurrency) = (40, 4);
    let file = h.write(&s);
    let first = ids.iter().next().unwrap().to_string();
    let out = crate::helpers::ferry_async(crate::helpers::args(&["dlq", "replay", &file, "--id", &first])).await;
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["selected"].as_u64(), report["resolved"].as_u64(), report["left"].as_u64()), (Some(1), Some(1), Some(ids.len() as u64 - 1)), "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("replayed 1 of {} dead letters", ids.len())));
    let out = crate::helpers::ferry_async(crate::helpers::args(&["dlq", "replay", &file, "--reason", "ON PURPOSE"])).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["selected"].as_u64(), report["left"].as_u64()), (Some(ids.len() as u64 - 1), Some(0)), "{report}");
    assert!(h.missing().is_empty());
}

/// One order shipped as two outbound orders in the same second: neither is
/// dropped by idCheck. Keyed on `o_id` (the seed's block) both reach the
/// target under one id, and `ferry validate` says so; keyed on `io_id`,
/// each lands as its own record, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_shipments_are_never_dropped() {
    let split = vec![rule(Quirk::SplitShipments, 1.0)];
    let (h, p) = setup(95, "app-split-oid", 400, split.clone(), "ts").await;
    assert!(p.warnings.iter().any(|w| w.contains("not unique") && w.contains("io_id")), "{:?}", p.warnings);
    let (summary, _) = run(&p).await;
    assert_eq!(summary.status, RunStatus::Ok, "{}", summary.render());
    let shipments: Vec<_> = h.source.state.truth().orders.into_iter().filter(|o| o.status == "Confirmed").collect();
    let twice: Vec<u64> = shipments.iter().filter(|o| o.io_id > 5_000_000_000).map(|o| o.o_id).collect();
    assert!(!twice.is_empty());
    assert_eq!(summary.mapped as usize, shipments.len(), "every shipment was mapped: {}", summary.render());
    let deliveries = h.target.state.truth().deliveries;
    assert!(twice.iter().all(|o| deliveries.get(&o.to_string()) == Some(&2)), "both shipments of a split order reached the target");

    let (h, _) = setup(96, "app-split-ioid", 400, split, "ts").await;
    // The declarative plugin, keyed on io_id (docs/plugins.md, "Split shipments").
    let mut s = h.spec(ferry_fixtures::DECLARATIVE);
    s.mapping_options =
        r#"{ fields = [ { to = "id", from = "io_id", format = "string" }, { to = "o_id", from = "o_id" }, { to = "modified", from = "modified" } ] }"#;
    let toml = s.toml().replace(r#""id": "o_id""#, r#""id": "io_id""#);
    assert!(toml.contains(r#""id": "io_id""#));
    std::fs::write(&h.file, toml).unwrap();
    let p = Pipeline::load(&h.file).unwrap();
    assert!(!p.warnings.iter().any(|w| w.contains("not unique")), "{:?}", p.warnings);
    let (summary, _) = run(&p).await;
    assert_eq!(summary.status, RunStatus::Ok, "{}", summary.render());
    let truth = h.source.state.truth();
    let records = h.target.state.truth().records;
    let missing: Vec<u64> = truth
        .orders
        .iter()
        .filter(|o| o.status == "Confirmed" && records.get(&o.io_id.to_string()).and_then(|r| r["modified"].as_str()) != Some(o.modified.as_str()))
        .map(|o| o.io_id)
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    assert!(h.each_once(), "doubled {:?}", h.target.state.truth().doubled());
}

/// The binary: a lie that persists ends `ferry run` with exit 2 and a
/// message naming the window, the cursor and what disagreed, within the
/// documented bound; the checkpoint does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_lie_exits_2_naming_the_window() {
    let (h, _) = setup(97, "app-lie-binary", 300, vec![rule(Quirk::ShortPage, 1.0)], "ts").await;
    let file = h.file.to_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = crate::helpers::ferry_async(crate::helpers::args(&["run", &file])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it ends within the bound: {:?}", started.elapsed());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("window [") && text.contains("start_ts 0") && text.contains("says has_next") && text.contains("read 6 times"), "{text}");
    let state = crate::helpers::ferry_async(crate::helpers::args(&["state", &file])).await;
    assert!(String::from_utf8_lossy(&state.stdout).contains("checkpoint:  none"), "{}", String::from_utf8_lossy(&state.stdout));
}
