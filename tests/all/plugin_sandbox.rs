//! Misbehaving guests are stopped by the right limit, with an error naming
//! it and the plugin digest, and the host then runs a good plugin normally.

use crate::helpers::{load, texts};
use ferry::plugin::{LimitKind, Limits, Outcome, PluginError};
use serde_json::json;
use std::time::{Duration, Instant};

fn misbehave(act: &str, limits: &Limits) -> Result<ferry::plugin::BatchOutput, PluginError> {
    let plugin = load(ferry_fixtures::MISBEHAVE);
    plugin.map_batch(limits, &json!({ "do": act }).to_string(), &texts(&[json!({"o_id": 1})]))
}

/// After any misbehaviour, a good plugin maps its next batch normally.
fn good_plugin_still_works() {
    let plugin = load(ferry_fixtures::JUSHUITAN_ORDERS);
    let order = json!({"o_id": 1, "io_date": "2024-01-01 00:00:00", "items": [{"sku_id": "a", "qty": 1, "sale_price": 2.5}]});
    let out = plugin.map_batch(&Limits::default(), "{}", &texts(&[order])).expect("good plugin runs");
    assert!(matches!(out.outcomes[0], Outcome::Mapped(_)));
}

fn assert_limit(result: Result<ferry::plugin::BatchOutput, PluginError>, kind: LimitKind, names: &str) {
    let err = result.expect_err("the batch must be stopped");
    assert_eq!(err.limit(), Some(kind), "{err}");
    let text = err.to_string();
    assert!(text.contains(names), "`{text}` names `{names}`");
    assert!(text.contains("misbehave@0.0.1 (sha256:"), "`{text}` names the plugin digest");
    good_plugin_still_works();
}

#[test]
fn infinite_loop_stopped_by_fuel() {
    let limits = Limits { fuel: 50_000_000, ..Limits::default() };
    assert_limit(misbehave("loop", &limits), LimitKind::Fuel, "fuel = 50000000");
}

#[test]
fn infinite_loop_stopped_by_deadline() {
    let limits = Limits { fuel: 0, timeout: Duration::from_millis(200), ..Limits::default() };
    let started = Instant::now();
    assert_limit(misbehave("loop", &limits), LimitKind::Deadline, "timeout = 200ms");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn memory_bomb_stopped_by_memory_limit() {
    let limits = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    assert_limit(misbehave("membomb", &limits), LimitKind::Memory, "memory_bytes = 67108864");
}

#[test]
fn big_output_stopped_by_output_limit() {
    let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
    assert_limit(misbehave("bigoutput", &limits), LimitKind::OutputBytes, "max_output_bytes = 33554432");
}

#[test]
fn big_input_refused_before_the_call() {
    let limits = Limits { max_input_bytes: 5, ..Limits::default() };
    assert_limit(misbehave("echo", &limits), LimitKind::InputBytes, "max_input_bytes = 5, the batch has 10 bytes");
}

#[test]
fn panic_traps_only_its_batch() {
    let err = misbehave("panic", &Limits::default()).expect_err("panic traps");
    assert!(matches!(&err, PluginError::Trap { stderr, .. } if stderr.contains("fixture panics on purpose")), "{err}");
    assert!(err.to_string().contains("sha256:"));
    good_plugin_still_works();
}

#[test]
fn files_and_sockets_are_out_of_reach() {
    for (act, what) in [("fileopen", "open /etc/passwd failed"), ("socket", "connect 127.0.0.1:5432 failed")] {
        let out = misbehave(act, &Limits::default()).expect("the batch itself runs");
        match &out.outcomes[0] {
            Outcome::Error { message, .. } => assert!(message.contains(what), "{act}: {message}"),
            other => panic!("{act}: the guest escaped the sandbox: {other:?}"),
        }
        good_plugin_still_works();
    }
}

#[test]
fn log_spam_is_capped() {
    let limits = Limits { max_log_bytes: 4096, ..Limits::default() };
    let out = misbehave("logspam", &limits).expect("spam does not fail the batch");
    let kept: usize = out.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 4096, "kept {kept} bytes");
    assert!(out.dropped_log_bytes > 1_000_000, "dropped {}", out.dropped_log_bytes);
    assert!(out.logs.iter().any(|l| l.level == "info") && out.logs.iter().any(|l| l.level == "stdout"));
    assert!(matches!(out.outcomes[0], Outcome::Mapped(_)));
    good_plugin_still_works();
}

/// A plugin that sleeps (a wait inside a WASI call, where neither fuel nor
/// the deadline reach) is stopped at once with a message that says why,
/// and holds no host thread.
#[test]
fn a_sleeping_plugin_is_stopped_at_once() {
    let started = Instant::now();
    let err = misbehave("sleep", &Limits::default()).expect_err("a sleep is refused");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let text = err.to_string();
    assert!(matches!(err, PluginError::Trap { .. }) && text.contains("may not wait") && text.contains("misbehave@0.0.1"), "{text}");
    good_plugin_still_works();
}
