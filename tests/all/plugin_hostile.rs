//! A plugin that attacks the host through the raw contract: every text it
//! returns is cut to its cap with a visible marker and counted against the
//! output limit; every record it returns is checked (object, depth, keys,
//! Unicode, id) before it can reach an outbox; `describe` cannot wait or
//! bloat. Each attack fails only itself, and the host runs the next batch.

use crate::helpers::{engine, load, texts};
use ferry::plugin::{LimitKind, Limits, Outcome, PluginError};
use serde_json::json;
use std::time::{Duration, Instant};

/// The cap on a plugin's texts, and the most its marker adds.
const CAP: usize = 4096 + 32;

fn hostile(act: &str, limits: &Limits, n: u64) -> Result<ferry::plugin::BatchOutput, PluginError> {
    let records: Vec<_> = (1..=n).map(|i| json!({"o_id": i})).collect();
    load(ferry_fixtures::HOSTILE).map_batch(limits, &json!({ "do": act }).to_string(), &texts(&records))
}

/// The record error each outcome became.
fn errors(out: &ferry::plugin::BatchOutput) -> Vec<(Option<String>, String)> {
    out.outcomes
        .iter()
        .map(|o| match o {
            Outcome::Error { field, message } => (field.clone(), message.clone()),
            other => panic!("expected a record error, got {other:?}"),
        })
        .collect()
}

#[test]
fn huge_record_errors_are_cut_and_marked() {
    let out = hostile("huge-error", &Limits::default(), 3).expect("the batch maps");
    for (field, message) in errors(&out) {
        let field = field.expect("the field is kept, cut");
        assert!(field.len() <= 160 && field.ends_with("…cut, 2097152 bytes"), "field: {} bytes", field.len());
        assert!(message.len() <= CAP && message.ends_with("…cut, 2097152 bytes"), "message: {} bytes", message.len());
    }
}

/// What the plugin wrote counts against the output limit, field included:
/// 3 records × 4 MB is over 8 MB.
#[test]
fn record_errors_count_against_the_output_limit() {
    let limits = Limits { max_output_bytes: 8 << 20, ..Limits::default() };
    let err = hostile("huge-error", &limits, 3).expect_err("over the output limit");
    assert_eq!(err.limit(), Some(LimitKind::OutputBytes), "{err}");
}

#[test]
fn huge_skip_reasons_and_batch_errors_are_cut() {
    let out = hostile("huge-skip", &Limits::default(), 2).expect("the batch maps");
    for o in &out.outcomes {
        let Outcome::Skip(reason) = o else { panic!("{o:?}") };
        assert!(reason.len() <= CAP && reason.contains("…cut, 2097152 bytes"));
    }
    let err = hostile("batch-error", &Limits::default(), 2).expect_err("the batch is refused");
    let text = err.to_string();
    assert!(text.len() <= CAP + 200 && text.contains("…cut, 2097152 bytes"), "{} bytes", text.len());
}

#[test]
fn refused_options_are_cut() {
    let plugin = load(ferry_fixtures::HOSTILE);
    let err = plugin.check_options(&Limits::default(), &json!({"do": "bad-options"}).to_string()).expect_err("refused");
    let text = err.to_string();
    assert!(text.len() <= CAP + 200 && text.contains("…cut, 2097152 bytes"), "{} bytes", text.len());
}

/// Deep, duplicate-key, lone-surrogate and id-less records become record
/// errors naming the check, never mapped output.
#[test]
fn malformed_records_become_record_errors() {
    for (act, says) in [("deep", "nests deeper than 64 levels"), ("dup-id", "the key `id` is given twice"), ("surrogate", "lone surrogate")] {
        let out = hostile(act, &Limits::default(), 2).expect("the batch maps");
        for (_, message) in errors(&out) {
            assert!(message.contains(says), "{act}: {message}");
        }
    }
    // An id-less record is fine for the plugin layer; the run refuses it for
    // a target that confirms by id (see `writes`).
    let out = hostile("no-id", &Limits::default(), 1).expect("the batch maps");
    assert!(matches!(&out.outcomes[0], Outcome::Mapped(r) if r.len() == 1));
}

/// A newline in a guest log message cannot start a forged log line.
#[test]
fn guest_logs_cannot_forge_lines() {
    let out = hostile("forge-log", &Limits::default(), 1).expect("the batch maps");
    let line = out.logs.iter().find(|l| l.message.contains("forged")).expect("the log line is kept");
    assert!(!line.message.contains('\n'), "{:?}", line.message);
}

/// A 50 MB name from `describe` is cut to 128 bytes before it is kept.
#[test]
fn a_huge_describe_is_cut() {
    let plugin = engine().load_file(ferry_fixtures::HOSTILE_HUGE_DESCRIBE.as_ref()).expect("loads");
    assert!(plugin.info.name.len() <= 128 + 32 && plugin.info.name.contains("…cut, 52428800 bytes"), "{} bytes", plugin.info.name.len());
}

/// A `describe` that sleeps is stopped at once, not after 60 s.
#[test]
fn a_sleeping_describe_is_refused_at_once() {
    let started = Instant::now();
    let Err(err) = engine().load_file(ferry_fixtures::HOSTILE_SLEEP_DESCRIBE.as_ref()) else { panic!("refused") };
    assert!(err.to_string().contains("plugins may not wait"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    load(ferry_fixtures::HOSTILE);
}
