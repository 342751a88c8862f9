//! Vector's VRL running a remap program equivalent to `jushuitan-orders`
//! (feature `vrl-baseline`). VRL has no decimal type, so its amount is float
//! arithmetic rounded to 2 places: less exact than Ferry's mappings, never
//! slower for it.

use std::collections::BTreeMap;
use vrl::compiler::{Context, Program, TargetValue, TimeZone, state::RuntimeState};
use vrl::value::{Secrets, Value};

const PROGRAM: &str = r#"
o = .
amount = 0.0
detail = []
for_each(array!(o.items)) -> |_index, item| {
    amount = amount + to_float!(item.qty) * to_float!(item.sale_price)
    detail = push(detail, {"product_id": item.sku_id, "qty": item.qty, "unit_price": item.sale_price})
}
. = {
    "id": to_string!(o.o_id),
    "io_id": o.io_id,
    "so_id": o.so_id,
    "shop_id": o.shop_id,
    "status": o.status,
    "modified": o.modified,
    "name": o.receiver_name,
    "date": format_timestamp!(parse_timestamp!(slice!(string!(o.io_date), 0, 19), "%Y-%m-%d %H:%M:%S"), "%Y%m%d"),
    "amount": round(amount, 2),
    "items_detail": detail
}
"#;

/// The compiled remap program.
pub struct Remap {
    program: Program,
    timezone: TimeZone,
}

impl Remap {
    pub fn new() -> Remap {
        let compiled = vrl::compiler::compile(PROGRAM, &vrl::stdlib::all()).unwrap_or_else(|e| panic!("VRL program: {e:?}"));
        Remap { program: compiled.program, timezone: TimeZone::default() }
    }

    /// JSON text in, JSON text out, as Ferry's mappings are measured.
    pub fn map(&self, record: &str) -> String {
        let value: Value = serde_json::from_str::<serde_json::Value>(record).expect("order JSON").into();
        let mut target = TargetValue { value, metadata: Value::Object(BTreeMap::new()), secrets: Secrets::default() };
        let mut state = RuntimeState::default();
        let mut ctx = Context::new(&mut target, &mut state, &self.timezone);
        self.program.resolve(&mut ctx).unwrap_or_else(|e| panic!("VRL run: {e}"));
        serde_json::to_string(&target.value).expect("VRL output JSON")
    }
}
