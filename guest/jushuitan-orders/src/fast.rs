//! The fast path of the mapping: an ordinary order read into a typed
//! record (only the fields the mapping uses; serde skips the rest without
//! building it) and printed from a typed output. It answers `None` on
//! anything [`super::JushuitanOrders::map`] would treat specially or
//! reject, so its outcome is always the one `map` would give; the tests
//! check that on every kind of order the simulator sends and on broken ones.

use super::JushuitanOrders;
use ferry_sdk::{Decimal, Outcome, Value, fields, money, time};
use serde::{Deserialize, Serialize};

/// The fields read; `Some(Value::Null)` for a field sent as `null`.
#[derive(Deserialize)]
struct Order {
    #[serde(default, deserialize_with = "fields::present")]
    o_id: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    status: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    io_date: Option<Value>,
    /// `null` or missing: not ordinary (the amount then comes from `pay_amount`).
    #[serde(default)]
    items: Option<Vec<Item>>,
    #[serde(default, deserialize_with = "fields::present")]
    io_id: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    so_id: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    shop_id: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    modified: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    receiver_name: Option<Value>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default, deserialize_with = "fields::present")]
    qty: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    sale_price: Option<Value>,
    #[serde(default, deserialize_with = "fields::present")]
    sku_id: Option<Value>,
}

/// The mapped record, its keys in the order `map`'s object prints them.
#[derive(Serialize)]
struct Mapped<'a> {
    amount: Value,
    date: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_id: Option<&'a Value>,
    items_detail: Vec<Detail<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<&'a Value>,
    name: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    shop_id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    so_id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Value>,
}

#[derive(Serialize)]
struct Detail<'a> {
    product_id: &'a Value,
    qty: &'a Value,
    unit_price: &'a Value,
}

const NULL: Value = Value::Null;

/// A field that must be there and not `null`.
fn given(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_null())
}

/// The outcome of an ordinary order; `None` for anything else.
pub fn map(mapping: &JushuitanOrders, record: &str) -> Option<Outcome> {
    let order: Order = serde_json::from_str(record).ok()?;
    let id = fields::as_text(given(&order.o_id)?)?;
    let status = order.status.as_ref().and_then(Value::as_str).unwrap_or_default();
    if let Some(reason) = mapping.skipped(status) {
        return Some(Outcome::Skip(reason));
    }
    let date = time::reformat(given(&order.io_date)?, "io_date", "%Y%m%d").ok()?;
    let items = order.items.as_ref()?;
    let mut amount = Decimal::ZERO;
    let mut detail = Vec::with_capacity(items.len());
    for item in items {
        let (qty_value, price_value) = (given(&item.qty)?, given(&item.sale_price)?);
        let qty = money::decimal(qty_value, "qty").ok()?;
        if qty.is_sign_negative() && !qty.is_zero() {
            return None;
        }
        amount += qty * money::decimal(price_value, "sale_price").ok()?;
        detail.push(Detail { product_id: item.sku_id.as_ref().unwrap_or(&NULL), qty: qty_value, unit_price: price_value });
    }
    let out = Mapped {
        amount: money::to_json(amount, 2),
        date,
        id,
        io_id: order.io_id.as_ref(),
        items_detail: detail,
        modified: order.modified.as_ref(),
        name: order.receiver_name.as_ref().unwrap_or(&NULL),
        shop_id: order.shop_id.as_ref(),
        so_id: order.so_id.as_ref(),
        status: order.status.as_ref(),
    };
    Some(Outcome::Mapped(vec![serde_json::to_string(&out).ok()?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_sdk::{Mapping, json, map_value, prepare};

    /// The outcome as comparable data (mapped texts parsed, so key order does not count).
    fn seen(o: &Outcome) -> Value {
        match o {
            Outcome::Mapped(texts) => json!({"mapped": texts.iter().map(|t| serde_json::from_str::<Value>(t).unwrap()).collect::<Vec<_>>()}),
            Outcome::Skip(r) => json!({"skip": r}),
            Outcome::Error(e) => json!({"error": [e.field, e.message]}),
        }
    }

    fn same(m: &JushuitanOrders, record: &str) -> bool {
        let slow = map_value(m, record);
        match m.map_fast(record) {
            Some(fast) => {
                assert_eq!(seen(&fast), seen(&slow), "the fast path differs on {record}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn agrees_with_map_on_ordinary_and_unusual_orders() {
        let m: JushuitanOrders = prepare(r#"{"skip_statuses": ["Cancelled"]}"#).unwrap();
        let base = json!({"o_id": 11, "io_id": 9000011, "so_id": "SO-1", "shop_id": 10086, "status": "Confirmed",
            "modified": "2024-03-01 12:00:00", "io_date": "2024-03-01 12:00:00", "receiver_name": "张三", "pay_amount": 10.5, "freight": 0.5,
            "items": [{"sku_id": "SKU-1", "qty": 2, "sale_price": 0.1, "name": "茶杯"}, {"sku_id": "SKU-2", "qty": "3", "sale_price": "33.33"}],
            "extra": {"nested": [1, 2, {"deep": true}]}});
        assert!(same(&m, &base.to_string()), "an ordinary order takes the fast path");
        let mut taken = 0;
        let variants: Vec<(&str, Value)> = vec![
            ("o_id", json!("12")),
            ("o_id", json!("")),
            ("o_id", Value::Null),
            ("o_id", json!([1])),
            ("status", json!("Cancelled")),
            ("status", Value::Null),
            ("status", json!(3)),
            ("io_date", json!("not a date")),
            ("io_date", json!(20240301)),
            ("items", Value::Null),
            ("items", json!([])),
            ("items", json!({"qty": 1})),
            ("items", json!([{"qty": -1, "sale_price": 1}])),
            ("items", json!([{"qty": 0, "sale_price": 1}])),
            ("items", json!([{"qty": null, "sale_price": 1}])),
            ("items", json!([{"qty": 1}])),
            ("items", json!([{"qty": "x", "sale_price": 1}])),
            ("items", json!([{"qty": 1e2, "sale_price": "1.005", "sku_id": null}])),
            ("receiver_name", Value::Null),
            ("so_id", Value::Null),
            ("modified", json!({"a": 1})),
        ];
        for (key, value) in &variants {
            let mut v = base.clone();
            v[*key] = value.clone();
            taken += usize::from(same(&m, &v.to_string()));
        }
        for key in ["o_id", "status", "io_date", "items", "io_id", "so_id", "shop_id", "modified", "receiver_name"] {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(key);
            taken += usize::from(same(&m, &v.to_string()));
        }
        for text in ["", "[]", "{", "null", r#"{"o_id": 1, "o_id": 2}"#] {
            same(&m, text);
        }
        assert!(taken >= 15, "most variants are still ordinary: {taken}");
    }
}
