//! The other objects integrators sync (`../shared/jushuitan-api.md`, "The
//! other objects integrators sync"), served from the same world as the
//! outbound orders: each is a view of the current orders, so the shop's
//! changes (mutation) reach every object at once and consistently:
//!
//! - sales orders (`orders.single.query`, list `orders`): one per order;
//! - after-sales refunds (`refund.single.query`): every fifth order;
//! - purchase receipts (`purchasein.query`): every third order restocks;
//! - stock (`inventory.query`, list `inventorys`): one row per sku and
//!   warehouse over every outbound order, cursor `ts` (not `start_ts`);
//! - items (`sku.query`): one per sku, no row version, windows of at most
//!   12 hours;
//! - shipping (`logistic.query`, list `orders`): one per sent order, no
//!   row version.
//!
//! A row's `modified` is its newest source's, and its `ts` the largest
//! version among them, so a change always moves both. Every query builds
//! the view afresh (O(orders)): these objects are for correctness tests,
//! the outbound query (`query`) is the one tuned for benchmarks.

use super::orders::{Order, first_io_id};
use super::query::{int, list, time};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// One object's API, as the simulator checks it.
#[derive(Debug)]
pub struct Object {
    /// The API name.
    pub api: &'static str,
    /// The key of the rows in `data`.
    pub list_key: &'static str,
    /// The fields that name one row.
    pub key: &'static [&'static str],
    max_page: u64,
    /// Its row-version cursor parameter, if any.
    cursor: Option<&'static str>,
    max_span: i64,
    /// Id-list filters (the row field is the name without its `s`) and their limits.
    id_filters: &'static [(&'static str, usize)],
}

const DAY: i64 = 24 * 3600;

/// Every object besides the outbound orders.
pub const OBJECTS: &[Object] = &[
    Object {
        api: "orders.single.query",
        list_key: "orders",
        key: &["o_id"],
        max_page: 100,
        cursor: Some("start_ts"),
        max_span: 7 * DAY,
        id_filters: &[("so_ids", 20), ("o_ids", 50)],
    },
    Object {
        api: "refund.single.query",
        list_key: "datas",
        key: &["as_id"],
        max_page: 50,
        cursor: Some("start_ts"),
        max_span: 7 * DAY,
        id_filters: &[("as_ids", 50), ("o_ids", 50), ("so_ids", 50)],
    },
    Object {
        api: "purchasein.query",
        list_key: "datas",
        key: &["io_id"],
        max_page: 50,
        cursor: Some("start_ts"),
        max_span: 7 * DAY,
        id_filters: &[("io_ids", 50), ("po_ids", 50)],
    },
    Object {
        api: "inventory.query",
        list_key: "inventorys",
        key: &["sku_id", "wms_co_id"],
        max_page: 100,
        cursor: Some("ts"),
        max_span: 7 * DAY,
        id_filters: &[("sku_ids", 100)],
    },
    Object { api: "sku.query", list_key: "datas", key: &["sku_id"], max_page: 50, cursor: None, max_span: 12 * 3600, id_filters: &[("sku_ids", 20)] },
    Object {
        api: "logistic.query",
        list_key: "orders",
        key: &["o_id"],
        max_page: 50,
        cursor: None,
        max_span: 7 * DAY,
        id_filters: &[("so_ids", 50), ("o_ids", 50)],
    },
];

/// The object served at `path` (`/open/refund/single/query`).
pub fn by_path(path: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| format!("/open/{}", o.api.replace('.', "/")) == path)
}

/// The object named `api`.
pub fn by_api(api: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.api == api)
}

/// One row of an object's view.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its key fields' values, joined by `|`.
    pub key: String,
    /// `modified`, in seconds.
    pub modified_at: i64,
    /// Its row version, where the object has one.
    pub ts: Option<u64>,
    /// The row as the API prints it.
    pub row: Value,
}

fn money(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The order's first shipment stands for the order.
fn primary(o: &Order) -> bool {
    o.io_id == first_io_id(o.o_id)
}

fn row(obj: &Object, mut row: Value, modified_at: i64, ts: Option<u64>, modified: &str) -> Row {
    let key =
        obj.key.iter().map(|k| row.get(*k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default()).collect::<Vec<_>>().join("|");
    row["modified"] = json!(modified);
    if let Some(ts) = ts {
        row["ts"] = json!(ts);
    }
    Row { key, modified_at, ts, row }
}

const WAREHOUSES: &[(u64, &str)] = &[(10001, "主仓"), (10002, "华东仓")];
const CARRIERS: &[(&str, &str)] = &[("SF", "顺丰速运"), ("ZTO", "中通快递"), ("YTO", "圆通速递")];
const SUPPLIERS: &[&str] = &["景德镇瓷业有限公司", "宜兴紫砂厂", "杭州茶叶合作社"];

/// Every current row of `obj`, by key.
pub fn rows(obj: &Object, orders: &HashMap<u64, Order>) -> Vec<Row> {
    let mut out: Vec<Row> = match obj.api {
        "orders.single.query" => orders.values().filter(|o| primary(o)).map(|o| row(obj, sales(o), o.modified_at, Some(o.ts), &o.modified)).collect(),
        "refund.single.query" => orders
            .values()
            .filter(|o| primary(o) && o.o_id.is_multiple_of(5))
            .map(|o| {
                let items: Vec<Value> =
                    o.items.iter().take(1).map(|i| json!({"asi_id": i.ioi_id + 70_000_000, "sku_id": i.sku_id, "name": i.name, "qty": i.qty, "amount": i.sale_amount})).collect();
                let status = if o.status == "Confirmed" { "Confirmed" } else { "WaitConfirm" };
                let refund = json!({"as_id": 80_000_000 + o.o_id, "as_date": o.modified, "o_id": o.o_id, "so_id": o.so_id, "shop_id": o.shop_id, "shop_name": o.shop_name,
                    "type": "普通退货", "status": status, "good_status": "BUYER_RECEIVED", "refund": money(items.iter().filter_map(|i| i["amount"].as_f64()).sum()), "items": items});
                row(obj, refund, o.modified_at, Some(o.ts), &o.modified)
            })
            .collect(),
        "purchasein.query" => orders
            .values()
            .filter(|o| primary(o) && o.o_id.is_multiple_of(3))
            .map(|o| {
                let (wms, warehouse) = WAREHOUSES[(o.o_id % 2) as usize];
                let items: Vec<Value> = o
                    .items
                    .iter()
                    .map(|i| {
                        let cost = money(i.sale_price * 0.6);
                        json!({"ioi_id": i.ioi_id + 30_000_000, "sku_id": i.sku_id, "i_id": i.i_id, "name": i.name, "qty": i.qty * 10, "cost_price": cost, "cost_amount": money(cost * (i.qty * 10) as f64)})
                    })
                    .collect();
                let receipt = json!({"io_id": 30_000_000 + o.o_id, "po_id": 600_000 + o.o_id, "io_date": o.modified, "status": "Confirmed", "supplier_id": 300 + o.o_id % 3,
                    "seller": SUPPLIERS[(o.o_id % 3) as usize], "wms_co_id": wms, "warehouse": warehouse, "items": items});
                row(obj, receipt, o.modified_at, Some(o.ts), &o.modified)
            })
            .collect(),
        "inventory.query" => stock(obj, orders),
        "sku.query" => skus(obj, orders),
        "logistic.query" => orders
            .values()
            .filter(|o| primary(o) && o.status == "Confirmed")
            .map(|o| {
                let (lc_id, company) = CARRIERS[(o.o_id % 3) as usize];
                let items: Vec<Value> = o.items.iter().map(|i| json!({"sku_id": i.sku_id, "qty": i.qty})).collect();
                let shipped = json!({"o_id": o.o_id, "so_id": o.so_id, "shop_id": o.shop_id, "lc_id": lc_id, "logistics_company": company,
                    "l_id": format!("{lc_id}{:012}", o.o_id * 13), "send_date": o.io_date, "items": items});
                row(obj, shipped, o.modified_at, None, &o.modified)
            })
            .collect(),
        other => unreachable!("no view of {other}"),
    };
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn sales(o: &Order) -> Value {
    let status = match o.status.as_str() {
        "Confirmed" => "Sent",
        "OuterConfirming" => "WaitOuterSent",
        "WaitConfirm" => "WaitConfirm",
        _ => "Cancelled",
    };
    let items: Vec<Value> = o
        .items
        .iter()
        .map(|i| json!({"oi_id": i.ioi_id + 1_000_000_000, "sku_id": i.sku_id, "i_id": i.i_id, "name": i.name, "qty": i.qty, "price": i.sale_price, "amount": i.sale_amount}))
        .collect();
    // `freight` is text ("two decimals") in this API.
    json!({"co_id": o.co_id, "o_id": o.o_id, "so_id": o.so_id, "shop_id": o.shop_id, "shop_name": o.shop_name, "order_date": o.created, "created": o.created,
        "status": status, "receiver_name": o.receiver_name, "pay_amount": o.pay_amount, "paid_amount": o.pay_amount, "freight": format!("{:.2}", o.freight), "items": items})
}

/// What every sku (and warehouse) row is made of: the newest source.
struct Acc {
    modified_at: i64,
    modified: String,
    ts: u64,
    qty: i64,
    fields: Map<String, Value>,
}

fn accumulate(acc: &mut BTreeMap<String, Acc>, key: String, o: &Order, qty: i64, fields: Map<String, Value>) {
    let a = acc.entry(key).or_insert_with(|| Acc { modified_at: i64::MIN, modified: String::new(), ts: 0, qty: 0, fields: Map::new() });
    a.qty += qty;
    if (o.modified_at, o.ts) > (a.modified_at, a.ts) {
        (a.modified_at, a.modified) = (o.modified_at, o.modified.clone());
    }
    if o.ts >= a.ts {
        a.ts = o.ts;
        a.fields = fields;
    }
}

fn stock(obj: &Object, orders: &HashMap<u64, Order>) -> Vec<Row> {
    let mut acc = BTreeMap::new();
    for o in orders.values() {
        let (wms, _) = WAREHOUSES[(o.o_id % 2) as usize];
        for i in &o.items {
            let fields = json!({"sku_id": i.sku_id, "i_id": i.i_id, "name": i.name, "wms_co_id": wms});
            accumulate(&mut acc, format!("{}|{wms}", i.sku_id), o, i.qty, fields.as_object().cloned().unwrap_or_default());
        }
    }
    acc.into_values()
        .map(|a| {
            let mut r = Value::Object(a.fields);
            r["qty"] = json!(1000 - a.qty);
            r["order_lock"] = json!(0);
            row(obj, r, a.modified_at, Some(a.ts), &a.modified)
        })
        .collect()
}

fn skus(obj: &Object, orders: &HashMap<u64, Order>) -> Vec<Row> {
    let mut acc = BTreeMap::new();
    for o in orders.values() {
        for i in &o.items {
            let fields = json!({"sku_id": i.sku_id, "i_id": i.i_id, "name": i.name, "sale_price": i.sale_price, "enabled": 1});
            accumulate(&mut acc, i.sku_id.clone(), o, 0, fields.as_object().cloned().unwrap_or_default());
        }
    }
    acc.into_values().map(|a| row(obj, Value::Object(a.fields), a.modified_at, None, &a.modified)).collect()
}

/// A validated query of an object.
#[derive(Debug)]
pub struct ObjectQuery {
    obj: &'static Object,
    window: Option<(i64, i64)>,
    page_index: u64,
    page_size: u64,
    cursor: Option<u64>,
    get_total: bool,
    status: Option<String>,
    ids: Vec<(String, Vec<String>)>,
}

/// Validates `biz` for `obj`; the error is the message of a code-140 answer.
pub fn parse(obj: &'static Object, biz: &Value) -> Result<ObjectQuery, String> {
    if !biz.is_object() {
        return Err("biz must be a JSON object".into());
    }
    let window = match (time(biz, "modified_begin")?, time(biz, "modified_end")?) {
        (Some(b), Some(e)) if e < b => return Err("modified_end is before modified_begin".into()),
        (Some(b), Some(e)) if e - b > obj.max_span => {
            return Err(format!("{}: modified_begin and modified_end may be at most {} hours apart", obj.api, obj.max_span / 3600));
        }
        (Some(b), Some(e)) => Some((b, e)),
        (None, None) => None,
        _ => return Err("modified_begin and modified_end must be sent together".into()),
    };
    let mut ids = Vec::new();
    for (name, limit) in obj.id_filters {
        let given = list(biz, name, *limit)?;
        if !given.is_empty() {
            ids.push((name.trim_end_matches('s').to_string(), given));
        }
    }
    if window.is_none() && ids.is_empty() {
        let names: Vec<&str> = obj.id_filters.iter().map(|(n, _)| *n).collect();
        return Err(format!("either modified_begin/modified_end or an id list ({}) is required", names.join(", ")));
    }
    for name in ["start_ts", "ts"] {
        if biz.get(name).is_some_and(|v| !v.is_null()) && obj.cursor != Some(name) {
            return Err(format!("{} does not take `{name}` (its cursor: {})", obj.api, obj.cursor.unwrap_or("none")));
        }
    }
    let cursor = match obj.cursor {
        Some(name) => int(biz, name)?.map(|c| c.max(0) as u64),
        None => None,
    };
    let page_index = int(biz, "page_index")?.unwrap_or(1);
    let page_size = int(biz, "page_size")?.unwrap_or(30);
    if page_index < 1 {
        return Err(format!("page_index must be >= 1, got {page_index}"));
    }
    if !(1..=obj.max_page as i64).contains(&page_size) {
        return Err(format!("page_size must be from 1 to {}, got {page_size}", obj.max_page));
    }
    let status = biz.get("status").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    let get_total = !(matches!(biz.get("is_get_total"), Some(Value::Bool(false))) || biz.get("is_get_total").and_then(Value::as_str) == Some("false"));
    Ok(ObjectQuery { obj, window, page_index: page_index as u64, page_size: page_size as u64, cursor, get_total, status, ids })
}

impl ObjectQuery {
    fn matches(&self, r: &Row) -> bool {
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        self.window.is_none_or(|(b, e)| (b..=e).contains(&r.modified_at))
            && self.cursor.is_none_or(|c| r.ts.is_some_and(|ts| ts >= c))
            && self.status.as_ref().is_none_or(|s| r.row.get("status").and_then(Value::as_str) == Some(s))
            && self.ids.iter().all(|(field, ids)| r.row.get(field).is_some_and(|v| ids.contains(&text(v))))
    }

    /// Runs the query over the current view; returns the `data` object.
    pub fn run(&self, orders: &HashMap<u64, Order>) -> Box<RawValue> {
        let mut rows: Vec<Row> = rows(self.obj, orders).into_iter().filter(|r| self.matches(r)).collect();
        if self.cursor.is_some() {
            rows.sort_by(|a, b| (a.ts, &a.key).cmp(&(b.ts, &b.key)));
        } else {
            rows.sort_by(|a, b| (a.modified_at, &a.key).cmp(&(b.modified_at, &b.key)));
        }
        let total = rows.len() as u64;
        let skip = (self.page_index - 1) * self.page_size;
        let page: Vec<Value> = rows.into_iter().skip(skip as usize).take(self.page_size as usize).map(|r| r.row).collect();
        let has_next = skip + (page.len() as u64) < total;
        let counted = self.get_total || self.cursor.is_none();
        let (data_count, page_count) = if counted { (total, total.div_ceil(self.page_size)) } else { (0, 0) };
        let mut data =
            json!({"page_size": self.page_size, "page_index": self.page_index, "data_count": data_count, "page_count": page_count, "has_next": has_next});
        data[self.obj.list_key] = Value::Array(page);
        serde_json::value::to_raw_value(&data).expect("rows serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn world() -> HashMap<u64, Order> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let base = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        (0..60u64)
            .map(|i| {
                let o = super::super::orders::generate(&mut rng, 10_000_000 + i, base + jiff::SignedDuration::from_secs(i as i64 * 60), i + 1);
                (o.io_id, o)
            })
            .collect()
    }

    /// Every object has rows with its key fields, `modified`, and `ts`
    /// exactly where it has a cursor; keys are unique.
    #[test]
    fn every_object_is_a_consistent_view() {
        let orders = world();
        for obj in OBJECTS {
            let all = rows(obj, &orders);
            assert!(!all.is_empty(), "{}", obj.api);
            let keys: std::collections::HashSet<&str> = all.iter().map(|r| r.key.as_str()).collect();
            assert_eq!(keys.len(), all.len(), "{}: keys repeat", obj.api);
            for r in &all {
                assert!(obj.key.iter().all(|k| r.row.get(*k).is_some()) && r.row["modified"].is_string(), "{}: {}", obj.api, r.row);
                assert_eq!(r.row.get("ts").is_some(), obj.cursor.is_some(), "{}", obj.api);
            }
        }
    }

    /// Each object checks its own limits and cursor name (code 140).
    #[test]
    fn limits_and_cursors_are_per_object() {
        let w = json!({"modified_begin": "2023-11-15 06:00:00", "modified_end": "2023-11-15 08:00:00"});
        let with = |api: &str, extra: Value| {
            let mut biz = w.clone();
            biz.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(by_api(api).unwrap(), &biz)
        };
        assert!(with("orders.single.query", json!({"page_size": 100})).is_ok());
        assert!(with("refund.single.query", json!({"page_size": 100})).unwrap_err().contains("1 to 50"));
        assert!(with("inventory.query", json!({"start_ts": 3})).unwrap_err().contains("does not take `start_ts`"));
        assert!(with("inventory.query", json!({"ts": 3})).is_ok());
        assert!(with("sku.query", json!({"ts": 3})).unwrap_err().contains("cursor: none"));
        let ids: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        assert!(with("orders.single.query", json!({"so_ids": ids})).unwrap_err().contains("at most 20"));
        let day = json!({"modified_begin": "2023-11-15 00:00:00", "modified_end": "2023-11-16 00:00:00"});
        assert!(parse(by_api("sku.query").unwrap(), &day).unwrap_err().contains("12 hours"));
        assert!(by_path("/open/inventory/query").is_some_and(|o| o.list_key == "inventorys"));
    }

    /// Paging by cursor returns each row once, in version order, and the
    /// list under the object's own key.
    #[test]
    fn the_cursor_walks_every_row_once() {
        let orders = world();
        let obj = by_api("inventory.query").unwrap();
        let (mut seen, mut cursor) = (std::collections::HashSet::new(), 0u64);
        for _ in 0..100 {
            let biz =
                json!({"modified_begin": "2023-11-14 00:00:00", "modified_end": "2023-11-15 12:00:00", "ts": cursor, "is_get_total": false, "page_size": 7});
            let page: Value = serde_json::from_str(parse(obj, &biz).unwrap().run(&orders).get()).unwrap();
            let rows = page["inventorys"].as_array().unwrap();
            for r in rows {
                seen.insert(format!("{}|{}", r["sku_id"], r["wms_co_id"]));
            }
            if !page["has_next"].as_bool().unwrap() {
                break;
            }
            cursor = rows.iter().map(|r| r["ts"].as_u64().unwrap()).max().unwrap();
        }
        assert_eq!(seen.len(), rows(obj, &orders).len());
    }
}
