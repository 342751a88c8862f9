//! Section 1, Mapping throughput: native Rust, the wasm plugin at batch 1/100/1000,
//! the declarative plugin, and VRL (with the `vrl-baseline` feature).

use crate::util::{self, Scale, best_of, engine, rate, wasm_throughput};

const DECLARATIVE_OPTIONS: &str = r#"{"fields": [
  {"to": "id", "from": "o_id", "format": "string", "required": true},
  {"to": "io_id", "from": "io_id"}, {"to": "so_id", "from": "so_id"}, {"to": "shop_id", "from": "shop_id"},
  {"to": "status", "from": "status"}, {"to": "modified", "from": "modified"}, {"to": "name", "from": "receiver_name"},
  {"to": "date", "from": "io_date", "format": "date", "pattern": "%Y%m%d"},
  {"to": "amount", "sum": {"over": "items", "multiply": ["qty", "sale_price"]}, "format": "amount"}
]}"#;

/// Prints the mapping-throughput table.
pub fn mapping(scale: &Scale) {
    let orders = ferry_sim::jushuitan::sample_orders(7, scale.orders);
    println!("## 1. Mapping throughput ({} orders, best of {})\n", orders.len(), scale.rounds);
    println!("| mapping | records/s | time vs native |\n|---|---:|---:|");
    let (native, n) = best_of(scale.rounds, || util::native(&orders));
    println!("| native Rust (same mapping code, batch 100) | {:.0} | 1.00 |", rate(native, n));
    // The same mapping natively with its fast path off: every order a `Value` tree.
    let (tree, n) = best_of(scale.rounds, || util::native_tree(&orders));
    println!("| native Rust, through a `Value` tree (the fast path off) | {:.0} | {:.2} |", rate(tree, n), tree.as_secs_f64() / native.as_secs_f64());
    let e = engine(true, true, true);
    let plugin = e.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
    let mut wasm100 = native;
    for batch in [1, 100, 1000] {
        let (d, n) = best_of(scale.rounds, || wasm_throughput(&plugin, "{}", &orders, batch));
        println!("| wasm jushuitan-orders, batch {batch} | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
        if batch == 100 {
            wasm100 = d;
        }
    }
    // The same batch without fuel metering and epoch checks: what the
    // sandbox's instrumentation costs.
    let bare = engine(true, false, false).load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
    let (d, n) = best_of(scale.rounds, || wasm_throughput(&bare, "{}", &orders, 100));
    println!("| wasm jushuitan-orders, batch 100, no fuel, no epoch | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    // The epoch deadline alone (no fuel): what fuel metering costs by itself.
    let epoch_only = engine(true, false, true).load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
    let (d, n) = best_of(scale.rounds, || wasm_throughput(&epoch_only, "{}", &orders, 100));
    println!("| wasm jushuitan-orders, batch 100, epoch deadline only (no fuel) | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    // The same batch with memories reset by madvise, as before they were kept resident.
    let madvise = crate::util::engine_with(ferry::plugin::EngineOptions { keep_resident_bytes: 0, ..ferry::plugin::EngineOptions::default() });
    let plugin_m = madvise.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("plugin");
    let (d, n) = best_of(scale.rounds, || wasm_throughput(&plugin_m, "{}", &orders, 100));
    println!(
        "| wasm jushuitan-orders, batch 100, madvise reset (no memory kept resident) | {:.0} | {:.2} |",
        rate(d, n),
        d.as_secs_f64() / native.as_secs_f64()
    );
    let decl = e.load_file(ferry_fixtures::DECLARATIVE.as_ref()).expect("declarative");
    let (d, n) = best_of(scale.rounds, || wasm_throughput(&decl, DECLARATIVE_OPTIONS, &orders, 100));
    println!("| wasm declarative (equivalent options), batch 100 | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    vrl_row(&orders, native, wasm100, scale);
    println!();
}

#[cfg(feature = "vrl-baseline")]
fn vrl_row(orders: &[String], native: std::time::Duration, wasm100: std::time::Duration, scale: &Scale) {
    let remap = crate::vrl_baseline::Remap::new();
    let (d, n) = best_of(scale.rounds, || orders.iter().map(|o| remap.map(o).len().min(1)).sum());
    println!("| VRL (`vrl` crate, equivalent remap program) | {:.0} | {:.2} |", rate(d, n), d.as_secs_f64() / native.as_secs_f64());
    println!("\nwasm batch 100 is {:.2}× as fast as VRL.", d.as_secs_f64() / wasm100.as_secs_f64());
}

#[cfg(not(feature = "vrl-baseline"))]
fn vrl_row(_: &[String], _: std::time::Duration, _: std::time::Duration, _: &Scale) {
    println!("| VRL | run with `--features vrl-baseline` | |");
}
