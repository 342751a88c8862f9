//! One contract, three languages: the Rust, Python and JavaScript
//! jushuitan-orders plugins give byte-identical outcomes over the same
//! orders (awkward amounts and every error case), and the sandbox limits hold
//! for the larger Python and JavaScript runtimes.
//!
//! The Python and JavaScript components come from `scripts/build-plugins.sh`.
//! When a toolchain could not be installed, the tests say so by name on
//! stderr and check the other languages.

use crate::helpers::load;
use ferry::plugin::{LimitKind, Limits, Outcome, Plugin, PluginError};
use ferry_fixtures::polyglot;
use std::sync::Arc;
use std::time::Duration;

const LANGUAGES: &[(&str, &str, &str)] =
    &[("python", "jushuitan_orders_py.wasm", "misbehave_py.wasm"), ("javascript", "jushuitan_orders_js.wasm", "misbehave_js.wasm")];

/// Orders built to hit every rule of the mapping: awkward amounts, rounding,
/// number and text forms, every error, values that need escaping or cutting.
const EDGE_ORDERS: &[&str] = &[
    // Amounts: 3 × 33.33 + 2 × 0.005 = 100.00 exactly; 0.1 + 0.2; half-up away from zero.
    r#"{"o_id":1,"io_id":5,"so_id":"S-1","shop_id":10086,"status":"Confirmed","modified":"2024-03-01 12:30:00","io_date":"2024-03-01 12:30:00.807","receiver_name":"张三","items":[{"sku_id":"A","qty":3,"sale_price":33.33},{"sku_id":"B","qty":"2","sale_price":"0.005"}]}"#,
    r#"{"o_id":2,"io_date":"2024-03-01 00:00:00","items":[{"sku_id":"A","qty":1,"sale_price":0.1},{"sku_id":"B","qty":1,"sale_price":0.2}]}"#,
    r#"{"o_id":3,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":-0.005},{"sku_id":"B","qty":1,"sale_price":0.001}]}"#,
    r#"{"o_id":4,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1000000,"sale_price":128.00},{"sku_id":"B","qty":"1e3","sale_price":1e-7}]}"#,
    r#"{"o_id":5,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":7,"sale_price":" 19.99 "},{"qty":"0.5","sale_price":"1.50e1"}]}"#,
    r#"{"o_id":6,"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":7,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":"-0","sale_price":5}]}"#,
    r#"{"o_id":8,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":100.0},{"sku_id":null,"qty":2.50,"sale_price":1e21}]}"#,
    r#"{"o_id":9,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":0.00001},{"sku_id":"B","qty":1,"sale_price":123456789.125}]}"#,
    // Ids in every form.
    r#"{"o_id":"SO-10","io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":2.0,"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":true,"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":18446744073709551616,"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":"   ","io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":"","io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":null,"io_date":"2024-03-01","items":[]}"#,
    r#"{"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":[1,2],"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":{"a":1},"io_date":"2024-03-01","items":[]}"#,
    // Dates in every accepted shape, and the rejected ones.
    r#"{"o_id":20,"io_date":"2024-03-01T23:59:59","items":[]}"#,
    r#"{"o_id":21,"io_date":"2024-03-01T23:59:59.123456789","items":[]}"#,
    r#"{"o_id":22,"io_date":"2024/03/01 08:00:00","items":[]}"#,
    r#"{"o_id":23,"io_date":"  2024-02-29 08:00:00 ","items":[]}"#,
    r#"{"o_id":24,"io_date":"2023-02-29 08:00:00","items":[]}"#,
    r#"{"o_id":25,"io_date":"2024-02-30","items":[]}"#,
    r#"{"o_id":26,"io_date":"2024-03-01 24:00:00","items":[]}"#,
    r#"{"o_id":27,"io_date":"yesterday","items":[]}"#,
    r#"{"o_id":28,"io_date":20240301,"items":[]}"#,
    r#"{"o_id":29,"io_date":null,"items":[]}"#,
    r#"{"o_id":30,"items":[]}"#,
    r#"{"o_id":31,"io_date":"2024-13-01 00:00:00","items":[]}"#,
    r#"{"o_id":32,"io_date":"2024/03/01","items":[]}"#,
    // Items and their fields.
    r#"{"o_id":40,"io_date":"2024-03-01"}"#,
    r#"{"o_id":41,"io_date":"2024-03-01","items":{"qty":1}}"#,
    r#"{"o_id":42,"io_date":"2024-03-01","items":null}"#,
    r#"{"o_id":43,"io_date":"2024-03-01","items":[{"sku_id":"A","sale_price":1}]}"#,
    r#"{"o_id":44,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":1},{"sku_id":"B","qty":1}]}"#,
    r#"{"o_id":45,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":"abc","sale_price":1}]}"#,
    r#"{"o_id":46,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":true,"sale_price":1}]}"#,
    r#"{"o_id":47,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":"-1.50","sale_price":1}]}"#,
    r#"{"o_id":48,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":-2,"sale_price":1}]}"#,
    r#"{"o_id":49,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":null}]}"#,
    r#"{"o_id":50,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":""}]}"#,
    r#"{"o_id":51,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":[1,2]}]}"#,
    r#"{"o_id":52,"io_date":"2024-03-01","items":[7]}"#,
    r#"{"o_id":53,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":{"每一个很长的键":"很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长的值","b":[1,2,3]}}]}"#,
    r#"{"o_id":54,"io_date":"2024-03-01","items":[{"sku_id":"A","qty":1,"sale_price":"12.5.5"}]}"#,
    // Skips, carried fields, escaping.
    r#"{"o_id":60,"status":"Cancelled","io_date":"bad","items":[]}"#,
    r#"{"o_id":61,"status":7,"io_date":"2024-03-01","items":[]}"#,
    r#"{"o_id":62,"io_date":"2024-03-01","modified":null,"shop_id":0,"receiver_name":"O'Brien \"Bob\"\n\t\u0001 \u00e9 😀 /","items":[]}"#,
    // Not an object at all.
    r#"[1,2]"#,
    r#"42"#,
    r#""text""#,
    r#"null"#,
];

const OPTIONS: &[&str] = &["{}", r#"{"skip_statuses":["Cancelled","WaitConfirm"]}"#];

/// What the golden test compares: one line per outcome, texts exactly as sent.
fn render(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Mapped(records) => format!("mapped {}", records.iter().map(|r| r.get()).collect::<Vec<_>>().join(" | ")),
            Outcome::Skip(reason) => format!("skip {reason}"),
            Outcome::Error { field, message } => format!("error {field:?} {message}"),
        })
        .collect()
}

fn orders() -> Vec<String> {
    let mut all: Vec<String> = EDGE_ORDERS.iter().map(|s| s.to_string()).collect();
    all.extend(ferry_sim::jushuitan::sample_orders(9, 300));
    all
}

/// The language's plugin, or `None` (with the reason on stderr) when its
/// toolchain could not be installed.
fn built(language: &str, file: &str) -> Option<Arc<Plugin>> {
    match polyglot(file, language) {
        Ok(path) => Some(load(&path)),
        Err(reason) => {
            eprintln!("SKIPPED: the {language} plugins: {reason}");
            None
        }
    }
}

#[test]
fn python_and_javascript_match_rust_byte_for_byte() {
    let rust = load(ferry_fixtures::JUSHUITAN_ORDERS);
    let records = orders();
    for (language, file, _) in LANGUAGES {
        let Some(plugin) = built(language, file) else { continue };
        assert_eq!(plugin.info.name, rust.info.name);
        assert_eq!(plugin.info.contract, rust.info.contract);
        for options in OPTIONS {
            let want = render(&rust.map_batch(&Limits::default(), options, &records).expect("rust maps").outcomes);
            let got = render(&plugin.map_batch(&Limits::default(), options, &records).expect("plugin maps").outcomes);
            assert_eq!(got.len(), want.len());
            let differ: Vec<String> = (0..want.len())
                .filter(|&i| got[i] != want[i])
                .map(|i| format!("record {i}: {}\n  rust:      {}\n  {language}: {}", records[i], want[i], got[i]))
                .collect();
            assert!(differ.is_empty(), "{language} differs from Rust with options {options} on {} records:\n{}", differ.len(), differ.join("\n"));
        }
    }
}

#[test]
fn options_are_checked_alike() {
    let rust = load(ferry_fixtures::JUSHUITAN_ORDERS);
    // (options, whether the error text must match exactly: serde's type
    // errors and JSON parse errors are worded by each language's parser)
    let cases: &[(&str, bool)] = &[
        ("{}", true),
        ("", true),
        (r#"{"skip_statuses":["Cancelled"]}"#, true),
        (r#"{"skip_status":["Cancelled"]}"#, true),
        (r#"{"skip_statuses":"Cancelled"}"#, false),
        (r#"{"skip_statuses":[1]}"#, false),
        ("[1]", false),
        ("{not json", false),
    ];
    for (language, file, _) in LANGUAGES {
        let Some(plugin) = built(language, file) else { continue };
        for (options, exact) in cases {
            let want = rust.check_options(&Limits::default(), options).map_err(|e| reason(&e));
            let got = plugin.check_options(&Limits::default(), options).map_err(|e| reason(&e));
            match (&want, &got) {
                (Ok(()), Ok(())) => {}
                (Err(w), Err(g)) if *exact => assert_eq!(g, w, "{language}, options {options}"),
                (Err(w), Err(g)) => {
                    let prefix = |s: &str| s.split(':').next().unwrap_or_default().to_string();
                    assert_eq!(prefix(g), prefix(w), "{language}, options {options}: `{g}` vs `{w}`");
                }
                _ => panic!("{language}, options {options}: rust {want:?}, {language} {got:?}"),
            }
        }
    }
}

fn reason(e: &PluginError) -> String {
    match e {
        PluginError::Options { reason, .. } => reason.clone(),
        other => panic!("expected an options error, got {other}"),
    }
}

#[test]
fn invalid_json_input_is_a_record_error_in_every_language() {
    let rust = load(ferry_fixtures::JUSHUITAN_ORDERS);
    let records = vec!["{not json".to_string()];
    let mut plugins = vec![("rust", rust)];
    plugins.extend(LANGUAGES.iter().filter_map(|(l, f, _)| built(l, f).map(|p| (*l, p))));
    for (language, plugin) in plugins {
        let out = plugin.map_batch(&Limits::default(), "{}", &records).expect("maps");
        match &out.outcomes[0] {
            Outcome::Error { field: None, message } => assert!(message.starts_with("input is not valid JSON: "), "{language}: {message}"),
            other => panic!("{language}: {other:?}"),
        }
    }
}

fn misbehave(language: &str, file: &str, mode: &str, limits: &Limits) -> Option<Result<ferry::plugin::BatchOutput, PluginError>> {
    let plugin = built(language, file)?;
    Some(plugin.map_batch(limits, &format!(r#"{{"mode":"{mode}"}}"#), &[r#"{"o_id":1}"#.to_string()]))
}

#[test]
fn infinite_loops_are_stopped_by_fuel_and_by_the_deadline() {
    for (language, _, file) in LANGUAGES {
        let fuel = Limits { fuel: 200_000_000, ..Limits::default() };
        let Some(result) = misbehave(language, file, "loop", &fuel) else { continue };
        assert_eq!(result.expect_err("stopped").limit(), Some(LimitKind::Fuel), "{language}");
        let deadline = Limits { fuel: 0, timeout: Duration::from_millis(300), ..Limits::default() };
        let result = misbehave(language, file, "loop", &deadline).expect("built above");
        assert_eq!(result.expect_err("stopped").limit(), Some(LimitKind::Deadline), "{language}");
        // And the same instance pool serves a normal batch afterwards.
        let ok = misbehave(language, file, "echo", &Limits::default()).expect("built above").expect("echo runs");
        assert!(matches!(&ok.outcomes[0], Outcome::Mapped(r) if r[0].get() == r#"{"id": "1"}"# || r[0].get() == r#"{"id":"1"}"#));
    }
}

#[test]
fn memory_caps_hold_for_the_larger_runtimes() {
    let cap = 96 << 20;
    for (language, _, file) in LANGUAGES {
        let limits = Limits { memory_bytes: cap, ..Limits::default() };
        // The runtime itself fits under the cap...
        let Some(ok) = misbehave(language, file, "echo", &limits) else { continue };
        let ok = ok.unwrap_or_else(|e| panic!("{language} echo under {cap} bytes: {e}"));
        eprintln!("{language}: peak linear memory {} bytes for one record", ok.peak_memory_bytes);
        assert!(ok.peak_memory_bytes > 0 && ok.peak_memory_bytes <= cap);
        // ...and a plugin that hoards memory is stopped at it.
        let err = misbehave(language, file, "memory", &limits).expect("built above").expect_err("stopped");
        assert_eq!(err.limit(), Some(LimitKind::Memory), "{language}: {err}");
    }
}

/// The Rust plugin reads an ordinary order on a fast path (typed fields,
/// the rest skipped, no `Value` tree). In the sandbox it gives, byte for
/// byte, what the same mapping gives natively through `map` and a `Value`
/// tree, on the edge orders and the simulator's; and the simulator's
/// orders do take the fast path.
#[test]
fn rust_fast_path_matches_the_value_path_byte_for_byte() {
    use ferry_sdk::Mapping;
    use jushuitan_orders::JushuitanOrders;
    let rust = load(ferry_fixtures::JUSHUITAN_ORDERS);
    let records = orders();
    for options in OPTIONS {
        let got = render(&rust.map_batch(&Limits::default(), options, &records).expect("rust maps").outcomes);
        let mapping: JushuitanOrders = ferry_sdk::prepare(options).expect("options");
        let want: Vec<String> = records
            .iter()
            .map(|r| match ferry_sdk::map_value(&mapping, r) {
                ferry_sdk::Outcome::Mapped(texts) => format!("mapped {}", texts.join(" | ")),
                ferry_sdk::Outcome::Skip(reason) => format!("skip {reason}"),
                ferry_sdk::Outcome::Error(e) => format!("error {:?} {}", e.field, e.message),
            })
            .collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "record {i} with options {options}: {}", records[i]);
        }
        let fast = records[EDGE_ORDERS.len()..].iter().filter(|r| mapping.map_fast(r).is_some()).count();
        assert_eq!(fast, records.len() - EDGE_ORDERS.len(), "every simulated order is ordinary");
    }
}
