//! The shipped mappings against hand-written cases.

use crate::helpers::{load, texts};
use ferry::plugin::{Limits, Outcome, PluginError};
use serde_json::{Value, json};

fn order(o_id: Value, items: Value) -> Value {
    json!({
        "co_id": 10001, "shop_id": 2001, "shop_name": "旗舰店", "io_id": 5001, "o_id": o_id, "so_id": "SO-1",
        "created": "2024-03-01 09:00:00", "modified": "2024-03-02 10:11:12", "io_date": "2024-03-02 10:00:00.807",
        "status": "Confirmed", "receiver_name": "张三", "pay_amount": 1.0, "freight": 0, "ts": 123, "items": items
    })
}

fn map(plugin: &str, options: &str, records: &[Value]) -> Vec<Outcome> {
    load(plugin).map_batch(&Limits::default(), options, &texts(records)).expect("batch runs").outcomes
}

fn mapped(outcome: &Outcome) -> Vec<Value> {
    match outcome {
        Outcome::Mapped(records) => records.iter().map(|r| serde_json::from_str(r.get()).unwrap()).collect(),
        other => panic!("expected mapped, got {other:?}"),
    }
}

fn error_field(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error { field, message } => {
            let field = field.clone().expect("error names a field");
            assert!(message.contains(&field), "message `{message}` names `{field}`");
            field
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

fn amount(items: Value) -> Value {
    let out = map(ferry_fixtures::JUSHUITAN_ORDERS, "{}", &[order(json!(1), items)]);
    mapped(&out[0])[0]["amount"].clone()
}

#[test]
fn jushuitan_orders_shape() {
    let items = json!([
        {"ioi_id": 1, "sku_id": "SKU-A", "i_id": "A", "name": "茶杯", "qty": 2, "sale_price": 19.99, "sale_amount": 39.98},
        {"ioi_id": 2, "sku_id": "SKU-B", "i_id": "B", "name": "茶壶", "qty": 1, "sale_price": 0.1, "sale_amount": 0.1}
    ]);
    let out = map(ferry_fixtures::JUSHUITAN_ORDERS, "{}", &[order(json!(7788), items)]);
    assert_eq!(
        mapped(&out[0]),
        vec![json!({
            "id": "7788", "io_id": 5001, "so_id": "SO-1", "shop_id": 2001, "status": "Confirmed",
            "modified": "2024-03-02 10:11:12", "name": "张三", "date": "20240302", "amount": 40.08,
            "items_detail": [
                {"product_id": "SKU-A", "qty": 2, "unit_price": 19.99},
                {"product_id": "SKU-B", "qty": 1, "unit_price": 0.1}
            ]
        })]
    );
}

#[test]
fn jushuitan_orders_exact_amounts() {
    let item = |qty: Value, price: Value| json!({"sku_id": "S", "qty": qty, "sale_price": price});
    assert_eq!(amount(json!([item(json!(1), json!(0.1)), item(json!(1), json!(0.2))])), json!(0.3));
    assert_eq!(amount(json!([item(json!(3), json!(33.33))])), json!(99.99));
    assert_eq!(amount(json!([item(json!(1), json!(19.99))])), json!(19.99));
    assert_eq!(amount(json!([item(json!(3), json!(0.335))])), json!(1.01), "1.005 rounds half-up");
    assert_eq!(amount(json!([item(json!("2"), json!("0.005"))])), json!(0.01), "numeric strings are accepted");
    assert_eq!(amount(Value::Array(vec![item(json!(10), json!(0.1)); 10])), json!(10), "100 × 0.1 is exactly 10");
    assert_eq!(amount(json!([])), json!(0));
}

#[test]
fn jushuitan_orders_errors_name_the_field() {
    let good = json!({"sku_id": "S", "qty": 1, "sale_price": 1});
    let mut no_id = order(json!(1), json!([good]));
    no_id.as_object_mut().unwrap().remove("o_id");
    let mut bad_date = order(json!(3), json!([good]));
    bad_date["io_date"] = json!("yesterday");
    let mut no_date = order(json!(4), json!([good]));
    no_date.as_object_mut().unwrap().remove("io_date");
    let cases = [
        (no_id, "o_id"),
        (order(json!(2), json!([good, {"sku_id": "S", "qty": "abc", "sale_price": 1}])), "items[1].qty"),
        (order(json!(2), json!([{"sku_id": "S", "qty": -1, "sale_price": 1}])), "items[0].qty"),
        (order(json!(2), json!([{"sku_id": "S", "qty": 1, "sale_price": "x1"}])), "items[0].sale_price"),
        (order(json!(2), json!([{"sku_id": "S", "qty": 1}])), "items[0].sale_price"),
        (bad_date, "io_date"),
        (no_date, "io_date"),
        (order(json!(""), json!([good])), "o_id"),
    ];
    let inputs: Vec<Value> = cases.iter().map(|c| c.0.clone()).collect();
    let mut batch = vec![order(json!(100), json!([good]))];
    batch.extend(inputs);
    batch.push(order(json!(101), json!([good])));
    let out = map(ferry_fixtures::JUSHUITAN_ORDERS, "{}", &batch);
    assert_eq!(out.len(), batch.len(), "one outcome per record");
    assert_eq!(mapped(&out[0])[0]["id"], json!("100"), "a bad record does not fail its batch");
    assert_eq!(mapped(out.last().unwrap())[0]["id"], json!("101"));
    for (i, (_, field)) in cases.iter().enumerate() {
        assert_eq!(error_field(&out[i + 1]), *field, "case {i}");
    }
}

#[test]
fn jushuitan_orders_options() {
    let mut cancelled = order(json!(9), json!([]));
    cancelled["status"] = json!("Cancelled");
    let out = map(ferry_fixtures::JUSHUITAN_ORDERS, r#"{"skip_statuses":["Cancelled"]}"#, &[cancelled]);
    assert!(matches!(&out[0], Outcome::Skip(r) if r.contains("Cancelled")), "{out:?}");
    let err = load(ferry_fixtures::JUSHUITAN_ORDERS).check_options(&Limits::default(), r#"{"skip_status":[]}"#).unwrap_err();
    assert!(matches!(&err, PluginError::Options { reason, .. } if reason.contains("skip_status")), "{err}");
}

const LABELS: &str = r#"{
  "fields": [
    {"to": "订单编号", "from": "o_id", "format": "string", "required": true},
    {"to": "店铺编码", "from": "shop_id"},
    {"to": "收货人", "from": "receiver_name"},
    {"to": "日期", "from": "io_date", "format": "date", "pattern": "%Y%m%d"},
    {"to": "修改时间", "from": "modified", "format": "dateTime"},
    {"to": "金额", "sum": {"over": "items", "multiply": ["qty", "sale_price"]}, "format": "amount"},
    {"to": "商品", "from": "items", "format": "implode", "pick": "sku_id", "separator": "|"},
    {"to": "来源", "value": "聚水潭"},
    {"to": "标签", "from": "labels", "format": "StringToArray"},
    {"to": "运费", "from": "freight", "format": "round(1)"},
    {"to": "件数", "from": "pay_amount", "format": "intval"}
  ]
}"#;

#[test]
fn declarative_chinese_labels() {
    let mut o = order(json!(42), json!([{"sku_id": "A", "qty": 3, "sale_price": 33.33}, {"sku_id": "B", "qty": 1, "sale_price": 0.1}]));
    o["labels"] = json!("加急, 赠品,");
    o["freight"] = json!(5.55);
    o["pay_amount"] = json!(12.9);
    let out = map(ferry_fixtures::DECLARATIVE, LABELS, &[o]);
    assert_eq!(
        mapped(&out[0]),
        vec![json!({
            "订单编号": "42", "店铺编码": 2001, "收货人": "张三", "日期": "20240302", "修改时间": "2024-03-02 10:11:12",
            "金额": 100.09, "商品": "A|B", "来源": "聚水潭", "标签": ["加急", "赠品"], "运费": 5.6, "件数": 12
        })]
    );
}

#[test]
fn declarative_explode_and_errors() {
    let options = r#"{"explode": "items", "fields": [
        {"to": "id", "from": "o_id", "format": "string"},
        {"to": "line.sku", "from": "item.sku_id"},
        {"to": "line.qty", "from": "item.qty", "format": "intval", "required": true},
        {"to": "line.total", "sum": {"over": "items", "multiply": ["qty"]}}
    ]}"#;
    let o = order(json!(5), json!([{"sku_id": "A", "qty": 1}, {"sku_id": "B", "qty": 2}]));
    let bad = order(json!(6), json!([{"sku_id": "A"}]));
    let out = map(ferry_fixtures::DECLARATIVE, options, &[o, bad]);
    assert_eq!(
        mapped(&out[0]),
        vec![json!({"id": "5", "line": {"sku": "A", "qty": 1, "total": 3}}), json!({"id": "5", "line": {"sku": "B", "qty": 2, "total": 3}})]
    );
    assert_eq!(error_field(&out[1]), "item.qty");
}

#[test]
fn declarative_bad_options_rejected_at_check() {
    let plugin = load(ferry_fixtures::DECLARATIVE);
    let cases = [
        (r#"{"fields": [{"to": "a", "from": "x", "format": "money"}]}"#, "unknown format `money`"),
        (r#"{"fields": [{"to": "a", "from": "x", "value": 1}]}"#, "exactly one of"),
        (r#"{"fields": [{"to": "a", "from": "x", "format": "round(x)"}]}"#, "round(n)"),
        (r#"{"fields": []}"#, "at least one"),
        (r#"{"field": []}"#, "unknown field `field`"),
        (r#"{"fields": [{"to": "a", "from": "x", "format": "amount", "pattern": "%Y"}]}"#, "`pattern` only goes with"),
    ];
    for (options, expected) in cases {
        let err = plugin.check_options(&Limits::default(), options).expect_err(options);
        assert!(err.to_string().contains(expected), "{options}: {err}");
    }
}
