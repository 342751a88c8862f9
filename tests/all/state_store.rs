//! The state-store conformance suite: every test runs against SQLite and
//! against PostgreSQL (a fresh database each), through the `StateStore`
//! trait alone, and both must answer alike.

use crate::pg::TestDb;
use ferry::credentials::{Obtained, TokenRecord, TokenState};
use ferry::state::{
    CommandFilter, CommandRecord, DeadLetter, OutboxEntry, Page, PgStore, RecordKey, SourceRecord, SqliteStore, StateStore, SwapRecord, TaskCount,
    WindowProgress,
};
use serde_json::json;
use std::sync::Arc;

/// A store and what keeps it alive.
pub struct Subject {
    pub store: Arc<dyn StateStore>,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    Subject { store: Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap()), _dir: Some(dir), _db: None }
}

fn postgres() -> Subject {
    let db = TestDb::new("conformance");
    Subject { store: PgStore::connect(&db.url).unwrap(), _dir: None, _db: Some(db) }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $name() { super::$name(super::sqlite().store.as_ref()); } )* }
        mod postgres { $( #[test] fn $name() { super::$name(super::postgres().store.as_ref()); } )* }
    };
}

conformance!(
    checkpoints_move_per_pipeline,
    outbox_stage_confirm_and_id_check,
    id_check_counts_by_version_range_and_forgets,
    dead_letters_count_and_remove,
    runs_newest_first,
    commands_insert_once_and_move_by_compare_and_set,
    commands_filter_and_prune,
    plugin_versions_and_swaps,
    one_insert_wins_among_racing_workers,
    window_progress_until_the_checkpoint_passes,
    runs_of_a_live_process_stay_running,
    tokens_move_by_compare_and_set_only,
);

fn key(id: &str, v: &str) -> RecordKey {
    RecordKey { id: id.into(), version: v.into() }
}

fn entry(pipeline: &str, ids: &[&str]) -> OutboxEntry {
    let body = json!({ "records": ids.iter().map(|i| json!({ "id": i })).collect::<Vec<_>>() }).to_string();
    OutboxEntry {
        command: OutboxEntry::command_id(pipeline, "batch", &body),
        body,
        origins: (0..ids.len()).collect(),
        record_ids: ids.iter().map(|i| Some(i.to_string())).collect(),
        sources: ids.iter().map(|i| SourceRecord { key: key(i, "v1"), raw: format!("{{\"o_id\":{i}}}") }).collect(),
        plugin: "sha-plugin".into(),
        window_end: Some("2024-01-02T00:00:00Z".into()),
    }
}

fn dead(id: &str, reason: &str) -> DeadLetter {
    DeadLetter { id: 0, key: key(id, "v1"), reason: reason.into(), plugin: "sha-plugin".into(), raw: "{}".into(), command: None, created: String::new() }
}

fn checkpoints_move_per_pipeline(s: &dyn StateStore) {
    assert_eq!(s.checkpoint("a").unwrap(), None);
    let t1: jiff::Timestamp = "2024-03-01T04:00:00Z".parse().unwrap();
    let t2: jiff::Timestamp = "2024-03-02T04:00:00.5Z".parse().unwrap();
    s.set_checkpoint("a", t1).unwrap();
    s.set_checkpoint("a", t2).unwrap();
    s.set_checkpoint("b", t1).unwrap();
    assert_eq!(s.checkpoint("a").unwrap(), Some(t2));
    assert_eq!(s.checkpoint("b").unwrap(), Some(t1));
}

fn outbox_stage_confirm_and_id_check(s: &dyn StateStore) {
    let (e1, e2) = (entry("p", &["1", "2"]), entry("p", &["3"]));
    s.stage("p", Some(&e1), &[dead("8", "mapping: bad amount")], &[key("9", "v1")]).unwrap();
    s.stage("p", Some(&e1), &[], &[]).unwrap(); // a replayed stage changes nothing
    s.stage("p", Some(&e2), &[], &[]).unwrap();
    s.stage("p", None, &[], &[key("10", "v1")]).unwrap();
    let pending = s.pending("p").unwrap();
    assert_eq!(pending.iter().map(|e| e.command).collect::<Vec<_>>(), vec![e1.command, e2.command], "oldest first, once each");
    assert_eq!(pending[0].body, e1.body);
    assert_eq!(pending[0].sources[1].raw, "{\"o_id\":2}");
    let probe = [key("1", "v1"), key("8", "v1"), key("9", "v1"), key("10", "v1"), key("9", "v2"), key("1", "v1")];
    assert_eq!(s.handled("p", &probe).unwrap(), vec![false, true, true, true, false, false], "staged but unconfirmed records are not handled yet");
    assert!(s.handled("p", &[]).unwrap().is_empty());

    let count = TaskCount { failed: 1, success: 1, total: 2 };
    s.confirm("p", &e1, count, &[dead("2", "target: negative amount")]).unwrap();
    s.confirm("p", &e1, count, &[dead("2", "target: negative amount")]).unwrap(); // a second confirm is a no-op
    assert_eq!(s.pending("p").unwrap().iter().map(|e| e.command).collect::<Vec<_>>(), vec![e2.command]);
    assert_eq!(s.handled("p", &probe).unwrap(), vec![true, true, true, true, false, true]);
    assert_eq!(s.handled("other", &[key("1", "v1")]).unwrap(), vec![false], "pipelines do not share an index");
    assert_eq!(s.handled_count("p").unwrap(), 5);
    assert_eq!(s.dead_letter_count("p").unwrap(), 2);
    let from = ferry::time::sortable(jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1));
    let to = ferry::time::sortable(jiff::Timestamp::now() + jiff::SignedDuration::from_mins(1));
    assert_eq!(s.confirmed_record_ids("p", &from, &to).unwrap(), vec!["1", "2"]);
    assert!(s.confirmed_record_ids("p", &to, &to).unwrap().is_empty());
}

/// Reconciliation's questions: distinct records with a version in a range
/// (inclusive, row keys after the time included), and forgetting versions.
fn id_check_counts_by_version_range_and_forgets(s: &dyn StateStore) {
    let (a, b, c) = ("2026-01-01 10:00:00", "2026-01-01 10:00:00 io_id=7", "2026-01-02 00:00:00");
    s.stage("p", None, &[], &[key("1", a), key("1", c), key("2", b), key("3", "2026-01-02 00:00:01"), key("4", "2026-01-01 09:59:59")]).unwrap();
    s.stage("q", None, &[], &[key("9", a)]).unwrap();
    assert_eq!(s.handled_between("p", "2026-01-01 10:00:00", "2026-01-02 00:00:00").unwrap(), 2, "records 1 (twice) and 2; not 3 or 4");
    assert_eq!(s.handled_between("p", "2026-01-01 10:00:00", "2026-01-01 10:00:00").unwrap(), 2, "a row key is part of its second");
    s.forget("p", &[key("2", b), key("1", a), key("5", a)]).unwrap();
    assert_eq!(s.handled("p", &[key("1", a), key("1", c), key("2", b)]).unwrap(), vec![false, true, false]);
    assert_eq!(s.handled_between("p", "2026-01-01 10:00:00", "2026-01-01 23:59:59").unwrap(), 0);
    assert_eq!(s.handled("q", &[key("9", a)]).unwrap(), vec![true], "another pipeline's index is untouched");
}

fn dead_letters_count_and_remove(s: &dyn StateStore) {
    s.stage("p", None, &[dead("1", "a"), dead("2", "b"), dead("3", "c")], &[]).unwrap();
    s.stage("q", None, &[dead("1", "other pipeline")], &[]).unwrap();
    s.stage("r", None, &[dead("1", "x"), dead("2", "y"), dead("3", "y"), dead("4", "z"), dead("5", "y")], &[]).unwrap();
    let reasons = |limit| s.dead_letter_reasons("r", limit).unwrap();
    assert_eq!(reasons(2), vec![("y".to_string(), 3), ("x".to_string(), 1)], "most frequent first, then by reason, at most `limit`");
    assert_eq!(reasons(10).len(), 3);
    let all = s.dead_letters("p").unwrap();
    assert_eq!(all.iter().map(|d| d.reason.as_str()).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids grow");
    assert!(!all[0].created.is_empty());
    let page = |offset, limit| s.dead_letters_page("p", Page { offset, limit }).unwrap().iter().map(|d| d.reason.clone()).collect::<Vec<_>>();
    assert_eq!((page(1, 1), page(1, 5), page(3, 5)), (vec!["b".to_string()], vec!["b".to_string(), "c".to_string()], vec![]), "pages");
    s.remove_dead_letters("p", &[all[0].id, all[2].id]).unwrap();
    assert_eq!(s.dead_letters("p").unwrap().iter().map(|d| d.key.id.as_str()).collect::<Vec<_>>(), vec!["2"]);
    assert_eq!((s.dead_letter_count("p").unwrap(), s.dead_letter_count("q").unwrap()), (1, 1));
}

fn runs_newest_first(s: &dyn StateStore) {
    let first = s.start_run("p", "run").unwrap();
    let second = s.start_run("p", "resume").unwrap();
    s.start_run("q", "run").unwrap();
    s.finish_run(first, "ok", &json!({ "delivered": 3 })).unwrap();
    let runs = s.runs("p", 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![second, first]);
    assert_eq!((runs[1].status.as_str(), runs[1].summary.as_ref()), ("ok", Some(&json!({ "delivered": 3 }))));
    assert!(runs[1].finished.is_some() && runs[0].finished.is_none());
    assert_eq!((runs[0].kind.as_str(), runs[0].status.as_str()), ("resume", "running"));
    assert_eq!(s.runs("p", 1).unwrap().len(), 1);
}

fn command(id: &str, pipeline: &str, tenant: &str, created: &str, status: &str) -> CommandRecord {
    CommandRecord {
        id: id.into(),
        kind: "sync".into(),
        pipeline: pipeline.into(),
        tenant: tenant.into(),
        created: created.into(),
        status: status.into(),
        record: json!({ "status": status, "input": { "pipeline": pipeline } }),
    }
}

fn commands_insert_once_and_move_by_compare_and_set(s: &dyn StateStore) {
    let c = command("c1", "p", "a", "2024-01-01T00:00:00.000000000Z", "queued");
    assert!(s.insert_command(&c).unwrap().is_none());
    let mut again = c.clone();
    again.record = json!({ "status": "queued", "input": { "pipeline": "other" } });
    let existing = s.insert_command(&again).unwrap().expect("the id is taken");
    assert_eq!((existing.tenant.as_str(), existing.record.clone()), ("a", c.record.clone()), "the first one stays");
    // Ids are scoped per tenant: tenant b may choose the same UUID.
    let mut other = command("c1", "q", "b", "2024-01-01T00:00:00.000000000Z", "queued");
    other.record = json!({ "status": "queued", "input": { "pipeline": "q" } });
    assert!(s.insert_command(&other).unwrap().is_none(), "another tenant's id does not collide");
    assert_eq!(s.command("a", "c1").unwrap().unwrap().status, "queued");
    assert_eq!(s.command("b", "c1").unwrap().unwrap().pipeline, "q");
    assert!(s.command("a", "nope").unwrap().is_none());
    assert!(s.command("c", "c1").unwrap().is_none(), "no tenant sees another's command");

    let mut running = c.clone();
    (running.status, running.record) = ("running".into(), json!({ "status": "running" }));
    assert!(s.update_command_if(&running, &["queued"]).unwrap());
    let mut cancelled = c.clone();
    cancelled.status = "cancelled".into();
    assert!(!s.update_command_if(&cancelled, &["queued"]).unwrap(), "it moved on already");
    assert!(s.update_command_if(&running, &["queued", "running"]).unwrap());
    let now = s.command("a", "c1").unwrap().unwrap();
    assert_eq!((now.status.as_str(), &now.record), ("running", &json!({ "status": "running" })));
    assert_eq!(s.command("b", "c1").unwrap().unwrap().status, "queued", "tenant b's command did not move");
    assert!(!s.update_command_if(&command("ghost", "p", "a", "x", "running"), &["queued"]).unwrap());
}

fn commands_filter_and_prune(s: &dyn StateStore) {
    s.put_command(&command("c1", "p", "a", "2024-01-01T00:00:00.000000000Z", "succeeded")).unwrap();
    s.put_command(&command("c2", "p", "a", "2024-01-02T00:00:00.000000000Z", "queued")).unwrap();
    s.put_command(&command("c3", "q", "b", "2024-01-03T00:00:00.000000000Z", "queued")).unwrap();
    let mut plugin = command("c4", "p", "a", "2024-01-04T00:00:00.000000000Z", "live");
    plugin.kind = "plugin".into();
    s.put_command(&plugin).unwrap();
    let ids = |f: CommandFilter| s.commands(&f).unwrap().into_iter().map(|c| c.id).collect::<Vec<_>>();
    let sync = || CommandFilter { kind: "sync".into(), ..Default::default() };
    assert_eq!(ids(sync()), vec!["c3", "c2", "c1"], "newest first");
    assert_eq!(ids(CommandFilter { pipeline: Some("p".into()), ..sync() }), vec!["c2", "c1"]);
    assert_eq!(ids(CommandFilter { tenant: Some("b".into()), ..sync() }), vec!["c3"]);
    assert_eq!(ids(CommandFilter { status: Some("queued".into()), ..sync() }), vec!["c3", "c2"]);
    assert_eq!(
        ids(CommandFilter { since: Some("2024-01-02T00:00:00.000000000Z".into()), until: Some("2024-01-03T00:00:00.000000000Z".into()), ..sync() }),
        vec!["c2"]
    );
    assert_eq!(ids(CommandFilter { kind: "plugin".into(), ..Default::default() }), vec!["c4"]);
    // put_command updates status and record, never the identity.
    let mut done = command("c2", "p", "a", "2024-01-02T00:00:00.000000000Z", "succeeded");
    done.record = json!({ "status": "succeeded", "count": 7 });
    s.put_command(&done).unwrap();
    assert_eq!(s.command("a", "c2").unwrap().unwrap().record["count"], json!(7));
    assert_eq!(s.prune_commands("2024-01-02T12:00:00.000000000Z").unwrap(), 2);
    assert_eq!(ids(sync()), vec!["c3"]);
}

fn plugin_versions_and_swaps(s: &dyn StateStore) {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    s.put_plugin_version("d1", "orders@1", &bytes).unwrap();
    s.put_plugin_version("d1", "orders@1", b"ignored").unwrap();
    assert_eq!(s.plugin_version("d1").unwrap().as_deref(), Some(bytes.as_slice()), "bytes come back exact; the first copy stays");
    assert_eq!(s.plugin_version("d2").unwrap(), None);
    let swap = |digest: &str, accepted: bool, reason: Option<&str>| SwapRecord {
        at: "2024-01-01T00:00:00Z".into(),
        digest: digest.into(),
        label: format!("orders ({digest})"),
        origin: "file".into(),
        previous: None,
        accepted,
        reason: reason.map(String::from),
    };
    s.record_swap("p", &swap("d1", true, None)).unwrap();
    s.record_swap("p", &swap("d2", false, Some("trap"))).unwrap();
    s.record_swap("q", &swap("d3", true, None)).unwrap();
    let swaps = s.swaps("p").unwrap();
    assert_eq!(swaps.iter().map(|s| (s.digest.as_str(), s.accepted)).collect::<Vec<_>>(), vec![("d1", true), ("d2", false)]);
    assert_eq!(swaps[1].reason.as_deref(), Some("trap"));
    assert_eq!((s.swap_count("p").unwrap(), s.swap_count("none").unwrap()), (2, 0));
    let page = s.swaps_page("p", Page { offset: 1, limit: 10 }).unwrap();
    assert_eq!(page.iter().map(|s| s.digest.as_str()).collect::<Vec<_>>(), vec!["d2"], "a page from its offset");
}

fn one_insert_wins_among_racing_workers(s: &dyn StateStore) {
    // Eight threads put the same tenant's id at once: exactly one creates it.
    let created = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| scope.spawn(move || s.insert_command(&command("race", &format!("p{i}"), "t", "2024-01-01T00:00:00Z", "queued")).unwrap().is_none()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|c| *c).count()
    });
    assert_eq!(created, 1);
    // And of eight compare-and-sets from `queued`, exactly one moves it.
    let moved = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..8).map(|_| scope.spawn(move || s.update_command_if(&command("race", "p", "t", "x", "running"), &["queued"]).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|m| *m).count()
    });
    assert_eq!(moved, 1);
}

fn token(key: &str, sealed: &[u8], state: TokenState) -> TokenRecord {
    TokenRecord {
        key: key.into(),
        generation: 0,
        sealed: sealed.to_vec(),
        expires_at: Some("2026-01-01T00:00:00.000000000Z".into()),
        obtained_at: "2025-12-01T00:00:00.000000000Z".into(),
        obtained: Obtained::Configured,
        seed: "fingerprint".into(),
        state,
        attempted_at: None,
        answer: None,
    }
}

fn tokens_move_by_compare_and_set_only(s: &dyn StateStore) {
    assert_eq!(s.token("app/m").unwrap(), None);
    assert!(s.put_token_if(&token("app/m", b"one", TokenState::Ok), 0).unwrap(), "the first record is stored");
    assert!(!s.put_token_if(&token("app/m", b"other", TokenState::Ok), 0).unwrap(), "a second first record is refused");
    let stored = s.token("app/m").unwrap().unwrap();
    assert_eq!((stored.generation, stored.sealed.as_slice(), stored.state), (1, &b"one"[..], TokenState::Ok));
    // Of eight racing refreshes from generation 1, exactly one lands.
    let won = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| scope.spawn(move || s.put_token_if(&TokenRecord { obtained: Obtained::Refreshed, ..token("app/m", &[i], TokenState::Ok) }, 1).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|w| *w).count()
    });
    assert_eq!(won, 1);
    let after = s.token("app/m").unwrap().unwrap();
    assert_eq!((after.generation, after.obtained, after.sealed.len()), (2, Obtained::Refreshed, 1));
    let reauth = TokenRecord { answer: Some("code 150".into()), ..token("app/m", b"x", TokenState::NeedsReauthorization) };
    assert!(s.put_token_if(&reauth, 2).unwrap());
    let last = s.token("app/m").unwrap().unwrap();
    assert_eq!((last.state, last.answer.as_deref(), last.generation), (TokenState::NeedsReauthorization, Some("code 150"), 3));
    assert_eq!(s.token("app/other").unwrap(), None, "per app and merchant");
}

fn window_progress_until_the_checkpoint_passes(s: &dyn StateStore) {
    let t = |x: &str| -> jiff::Timestamp { x.parse().unwrap() };
    let day1 = WindowProgress { begin: t("2024-03-01T00:00:00Z"), end: t("2024-03-02T00:00:00Z"), cursor: 7 };
    // A 64-bit row version past i64 round-trips exactly.
    let day2 = WindowProgress { begin: t("2024-03-02T00:00:00Z"), end: t("2024-03-02T12:30:00.25Z"), cursor: u64::MAX - 1 };
    assert!(s.window_progress("p").unwrap().is_empty());
    s.set_window_progress("p", Some(&day2)).unwrap();
    s.set_window_progress("p", Some(&day1)).unwrap();
    s.set_window_progress("p", Some(&WindowProgress { cursor: 9, ..day1 })).unwrap();
    s.set_window_progress("q", Some(&day1)).unwrap();
    assert_eq!(s.window_progress("p").unwrap(), vec![WindowProgress { cursor: 9, ..day1 }, day2], "oldest first, the last cursor kept");
    s.set_checkpoint("p", day1.end).unwrap();
    assert_eq!(s.window_progress("p").unwrap(), vec![day2], "a window the checkpoint passed is forgotten");
    s.set_window_progress("p", None).unwrap();
    assert!(s.window_progress("p").unwrap().is_empty());
    assert_eq!(s.window_progress("q").unwrap(), vec![day1], "pipelines apart");
}

/// The sweep leaves a live process's run alone (a killed one's is marked
/// interrupted: `restart::a_killed_run_shows_as_interrupted`).
fn runs_of_a_live_process_stay_running(s: &dyn StateStore) {
    s.start_run("p", "run").unwrap();
    assert_eq!(s.sweep_dead_runs().unwrap(), 0, "this process is alive");
    assert_eq!(s.runs("p", 1).unwrap()[0].status, "running");
}
