//! Section 7, what a power-loss-safe outbox costs: staging an outbox entry
//! syncs SQLite's WAL to disk before the entry is sent (`synchronous =
//! FULL` for that commit), where other commits only reach the OS. Baseline:
//! the same bytes staged as dead letters, which commit without a sync.

use crate::util::{Scale, best_of, ms};
use ferry::state::DataStore;
use ferry::state::{DeadLetter, OutboxEntry, RecordKey, SourceRecord, SqliteStore};

/// An entry of `records` records of about 1 KB each.
fn entry(n: usize, records: usize) -> OutboxEntry {
    let raw = format!(r#"{{"o_id":{n},"remark":"{}"}}"#, "x".repeat(1000));
    let body = format!("{{\"records\":[{}]}}", vec![raw.as_str(); records].join(","));
    OutboxEntry {
        command: OutboxEntry::command_id("bench", "durability", &format!("{n}")),
        body,
        origins: (0..records).collect(),
        record_ids: (0..records).map(|i| Some(format!("{n}-{i}"))).collect(),
        sources: (0..records).map(|i| SourceRecord { key: RecordKey { id: format!("{n}-{i}"), version: "v".into() }, raw: raw.clone() }).collect(),
        plugin: "p".into(),
        window_end: None,
    }
}

/// Prints the cost of a durable stage against an undurable one.
pub fn durability(scale: &Scale) {
    let batches = if scale.benching { 300 } else { 5 };
    let records = 100;
    let rounds = scale.rounds.min(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut round = 0;
    let (durable, _) = best_of(rounds, || {
        round += 1;
        let store = SqliteStore::open(&dir.path().join(format!("durable-{round}.db"))).expect("store");
        for n in 0..batches {
            store.stage("bench", Some(&entry(n, records)), &[], &[]).expect("stage");
        }
        batches
    });
    let (plain, _) = best_of(rounds, || {
        round += 1;
        let store = SqliteStore::open(&dir.path().join(format!("plain-{round}.db"))).expect("store");
        for n in 0..batches {
            let e = entry(n, records);
            let dead: Vec<DeadLetter> = e
                .sources
                .into_iter()
                .map(|s| DeadLetter { id: 0, key: s.key, reason: String::new(), plugin: "p".into(), raw: s.raw, command: None, created: String::new() })
                .collect();
            store.stage("bench", None, &dead, &[]).expect("stage");
        }
        batches
    });
    println!("## 7. A power-loss-safe outbox ({batches} batches of {records} records of ~1 KB, best of {rounds})\n");
    println!("| staging | per batch | per record | ratio |");
    println!("|---|---|---|---|");
    let per = |d: std::time::Duration| ms(d) / batches as f64;
    println!("| without a sync (baseline: the same bytes as dead letters) | {:.2} ms | {:.1} µs | 1.00 |", per(plain), per(plain) * 1e3 / records as f64);
    println!(
        "| outbox entry, WAL synced before the send | {:.2} ms | {:.1} µs | {:.2} |\n",
        per(durable),
        per(durable) * 1e3 / records as f64,
        durable.as_secs_f64() / plain.as_secs_f64()
    );
}
