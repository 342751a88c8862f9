//! Business parameters of the outbound-order query: validation (code 140
//! with a message) and the query itself.

use super::orders::Order;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};

const STATUSES: &[&str] = &["WaitConfirm", "Confirmed", "Delete", "Cancelled", "OuterConfirming"];
const MAX_SPAN_SECS: i64 = 7 * 24 * 3600;

/// A validated query.
#[derive(Debug, Clone)]
pub struct Query {
    window: Option<(i64, i64)>,
    page_index: u64,
    page_size: u64,
    status: Option<String>,
    shop_id: Option<u64>,
    offline: bool,
    so_ids: Vec<String>,
    o_ids: Vec<u64>,
    io_ids: Vec<u64>,
    start_ts: Option<u64>,
    get_total: bool,
}

pub(super) fn int(biz: &Value, key: &str) -> Result<Option<i64>, String> {
    match biz.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("{key} must be an integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| format!("{key} must be an integer, got `{s}`")),
        Some(other) => Err(format!("{key} must be an integer, got {other}")),
    }
}

pub(super) fn list(biz: &Value, key: &str, limit: usize) -> Result<Vec<String>, String> {
    let items: Vec<String> = match biz.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
        Some(other) => return Err(format!("{key} must be a list, got {other}")),
    };
    if items.len() > limit {
        return Err(format!("{key} takes at most {limit} ids, got {}", items.len()));
    }
    Ok(items)
}

pub(super) fn time(biz: &Value, key: &str) -> Result<Option<i64>, String> {
    match biz.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s.trim())
            .ok()
            .and_then(|dt| dt.to_zoned(crate::time::shanghai().clone()).ok())
            .map(|z| Some(z.timestamp().as_second()))
            .ok_or_else(|| format!("{key} must be yyyy-MM-dd HH:mm:ss, got `{s}`")),
        Some(other) => Err(format!("{key} must be yyyy-MM-dd HH:mm:ss, got {other}")),
    }
}

/// Validates `biz`; the error is the message of a code-140 answer.
pub fn parse(biz: &Value) -> Result<Query, String> {
    if !biz.is_object() {
        return Err("biz must be a JSON object".into());
    }
    let window = match (time(biz, "modified_begin")?, time(biz, "modified_end")?) {
        (Some(b), Some(e)) if e < b => return Err("modified_end is before modified_begin".into()),
        (Some(b), Some(e)) if e - b > MAX_SPAN_SECS => return Err("modified_begin and modified_end may be at most 7 days apart".into()),
        (Some(b), Some(e)) => Some((b, e)),
        (None, None) => None,
        _ => return Err("modified_begin and modified_end must be sent together".into()),
    };
    let so_ids = list(biz, "so_ids", 50)?;
    let parse_ids = |key: &str| -> Result<Vec<u64>, String> {
        list(biz, key, 50)?.iter().map(|s| s.parse().map_err(|_| format!("{key} must hold integers, got `{s}`"))).collect()
    };
    let (o_ids, io_ids) = (parse_ids("o_ids")?, parse_ids("io_ids")?);
    if window.is_none() && so_ids.is_empty() && o_ids.is_empty() && io_ids.is_empty() {
        return Err("either modified_begin/modified_end or an id list (so_ids, o_ids, io_ids) is required".into());
    }
    let page_index = int(biz, "page_index")?.unwrap_or(1);
    let page_size = int(biz, "page_size")?.unwrap_or(30);
    if page_index < 1 {
        return Err(format!("page_index must be >= 1, got {page_index}"));
    }
    if !(1..=50).contains(&page_size) {
        return Err(format!("page_size must be from 1 to 50, got {page_size}"));
    }
    let status = match biz.get("status").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(s) if !STATUSES.contains(&s) => return Err(format!("status must be one of {}, got `{s}`", STATUSES.join(", "))),
        s => s.map(String::from),
    };
    let date_type = int(biz, "date_type")?.unwrap_or(0);
    if date_type != 0 && date_type != 2 {
        return Err(format!("date_type must be 0 (modified) or 2 (io_date), got {date_type}"));
    }
    let offline = matches!(biz.get("is_offline_shop"), Some(Value::Bool(true))) || biz.get("is_offline_shop").and_then(Value::as_str) == Some("true");
    let shop_id = int(biz, "shop_id")?.map(|s| s as u64);
    let start_ts = int(biz, "start_ts")?.map(|s| s as u64);
    let get_total = !(matches!(biz.get("is_get_total"), Some(Value::Bool(false))) || biz.get("is_get_total").and_then(Value::as_str) == Some("false"));
    Ok(Query { window, page_index: page_index as u64, page_size: page_size as u64, status, shop_id, offline, so_ids, o_ids, io_ids, start_ts, get_total })
}

impl Query {
    /// `(modified_begin, modified_end)` in seconds, when asked by time.
    pub fn window(&self) -> Option<(i64, i64)> {
        self.window
    }

    /// The page size asked for.
    pub fn page_size(&self) -> usize {
        self.page_size as usize
    }

    fn matches(&self, o: &Order) -> bool {
        self.status.as_ref().is_none_or(|s| &o.status == s)
            && match self.shop_id {
                Some(0) if self.offline => o.shop_id == 0,
                Some(id) => o.shop_id == id,
                None => true,
            }
            && (self.so_ids.is_empty() || self.so_ids.contains(&o.so_id))
            && (self.o_ids.is_empty() || self.o_ids.contains(&o.o_id))
            && (self.io_ids.is_empty() || self.io_ids.contains(&o.io_id))
            && self.start_ts.is_none_or(|ts| o.ts >= ts)
    }

    /// Runs the query; returns the `data` object of the envelope as JSON
    /// text, printed straight from the orders.
    pub fn run(&self, orders: &HashMap<u64, Order>, index: &BTreeMap<(i64, u64), u64>, by_ts: &BTreeMap<u64, u64>) -> Box<RawValue> {
        if let (Some(start), false, Some(window)) = (self.start_ts, self.get_total, self.window) {
            return self.run_by_ts(orders, index, by_ts, window, start);
        }
        let mut rows: Vec<&Order> = match self.window {
            Some((b, e)) => index.range((b, 0)..=(e, u64::MAX)).map(|((_, id), _)| &orders[id]).filter(|o| self.matches(o)).collect(),
            None => {
                let mut all: Vec<&Order> = orders.values().filter(|o| self.matches(o)).collect();
                all.sort_by_key(|o| (o.modified_at, o.o_id));
                all
            }
        };
        if self.start_ts.is_some() {
            rows.sort_by_key(|o| o.ts);
        }
        let total = rows.len() as u64;
        let skip = (self.page_index - 1) * self.page_size;
        let page: Vec<&Order> = rows.iter().skip(skip as usize).take(self.page_size as usize).copied().collect();
        let has_next = skip + (page.len() as u64) < total;
        let (data_count, page_count) = if self.get_total { (total, total.div_ceil(self.page_size)) } else { (0, 0) };
        self.envelope(data_count, page_count, has_next, &page)
    }

    /// The ts cursor without a total (what the docs recommend): walks the
    /// row versions from `start_ts` and stops at the end of the page,
    /// instead of sorting the window for every page; `has_next` looks for
    /// a later version in the window from its newest rows down. Same rows,
    /// same order.
    fn run_by_ts(
        &self,
        orders: &HashMap<u64, Order>,
        index: &BTreeMap<(i64, u64), u64>,
        by_ts: &BTreeMap<u64, u64>,
        (b, e): (i64, i64),
        start: u64,
    ) -> Box<RawValue> {
        // The window's rows as (key, ts), in modified order.
        let window = || index.range((b, 0)..=(e, u64::MAX));
        let wanted = |o: &Order| (b..=e).contains(&o.modified_at) && self.matches(o);
        // Walk only the versions the window's rows span: a cursor's first
        // call (start 0) would walk every older version, and a window's last
        // page every newer one (all of them, for the first windows of a
        // backfill).
        let (oldest, newest) = window().fold((u64::MAX, 0), |(lo, hi), (_, ts)| (lo.min(*ts), hi.max(*ts)));
        let start = start.max(oldest);
        if start > newest {
            return self.envelope(0, 0, false, &[]);
        }
        let skip = ((self.page_index - 1) * self.page_size) as usize;
        let page: Vec<&Order> = by_ts.range(start..=newest).map(|(_, id)| &orders[id]).filter(|o| wanted(o)).skip(skip).take(self.page_size as usize).collect();
        let has_next = page.len() == self.page_size as usize && {
            let last = page.last().map_or(0, |o| o.ts);
            window().rev().any(|((_, id), ts)| *ts > last && self.matches(&orders[id]))
        };
        self.envelope(0, 0, has_next, &page)
    }

    fn envelope(&self, data_count: u64, page_count: u64, has_next: bool, page: &[&Order]) -> Box<RawValue> {
        let out = PageOut { page_size: self.page_size, page_index: self.page_index, data_count, page_count, has_next, datas: page };
        serde_json::value::to_raw_value(&out).expect("orders always serialize")
    }
}

/// The `data` object of one page.
#[derive(Serialize)]
struct PageOut<'a> {
    page_size: u64,
    page_index: u64,
    data_count: u64,
    page_count: u64,
    has_next: bool,
    datas: &'a [&'a Order],
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    /// The ts walk answers exactly what sorting the window answered, page
    /// by page, including orders changed since (new ts, new modified).
    #[test]
    fn the_ts_walk_pages_like_the_sorted_window() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let base = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let (mut orders, mut index, mut by_ts) = (HashMap::new(), BTreeMap::new(), BTreeMap::new());
        for i in 0..400u64 {
            let at = base + jiff::SignedDuration::from_secs((i as i64 * 97) % 7200);
            // Versions out of time order, as changes make them.
            let ts = (i * 7919) % 1000 + 1;
            let o = super::super::orders::generate(&mut rng, 10_000 + i, at, ts);
            index.insert((o.modified_at, o.o_id), o.ts);
            by_ts.insert(o.ts, o.o_id);
            orders.insert(o.o_id, o);
        }
        let fmt = |t: jiff::Timestamp| crate::time::format(t);
        let (b, e) = (fmt(base + jiff::SignedDuration::from_secs(600)), fmt(base + jiff::SignedDuration::from_secs(5000)));
        for status in [None, Some("Confirmed")] {
            let mut start = 0u64;
            loop {
                let mut biz = json!({"modified_begin": b, "modified_end": e, "page_index": 1, "page_size": 25, "start_ts": start});
                if let Some(s) = status {
                    biz["status"] = json!(s);
                }
                let page = |biz: &Value| serde_json::from_str::<Value>(parse(biz).unwrap().run(&orders, &index, &by_ts).get()).unwrap();
                let sorted = page(&biz);
                biz["is_get_total"] = json!(false);
                let walked = page(&biz);
                assert_eq!((&walked["datas"], &walked["has_next"]), (&sorted["datas"], &sorted["has_next"]), "from ts {start}");
                let rows = walked["datas"].as_array().unwrap();
                if !walked["has_next"].as_bool().unwrap() {
                    break;
                }
                start = rows.iter().map(|r| r["ts"].as_u64().unwrap()).max().unwrap() + 1;
            }
        }
    }
}
