//! Realistic outbound orders (Chinese names, awkward prices), generated
//! deterministically from the seed, and the changes the shop makes to them.

use jiff::Timestamp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One item line (`items[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub ioi_id: u64,
    pub sku_id: String,
    pub i_id: String,
    pub name: String,
    pub qty: i64,
    pub sale_price: f64,
    pub sale_amount: f64,
}

/// One outbound order, with the fields of the real API's subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub co_id: u64,
    pub shop_id: u64,
    pub shop_name: String,
    pub io_id: u64,
    pub o_id: u64,
    pub so_id: String,
    pub created: String,
    pub modified: String,
    pub io_date: String,
    pub status: String,
    pub receiver_name: String,
    pub pay_amount: f64,
    pub freight: f64,
    pub ts: u64,
    pub items: Vec<OrderItem>,
    /// `modified` as seconds, for filtering; not sent.
    #[serde(skip)]
    pub modified_at: i64,
}

const SHOPS: &[(u64, &str)] = &[(10086, "天猫旗舰店"), (10087, "京东自营店"), (10088, "拼多多专营店"), (0, "线下门店")];
const SURNAMES: &[&str] = &["张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "欧阳"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "小红", "建国"];
const PRODUCTS: &[&str] = &["青花瓷茶杯", "紫砂壶", "龙井茶礼盒", "丝绸围巾", "竹制筷子", "景德镇茶具", "普洱茶饼", "红木梳子"];
/// Prices in cents, awkward on purpose: 0.1, 0.2, 19.99, 33.33, ...
const PRICES: &[i64] = &[10, 20, 1999, 3333, 990, 12800, 1, 6666, 105, 4999];
const STATUSES: &[(&str, u32)] = &[("Confirmed", 80), ("WaitConfirm", 10), ("Cancelled", 6), ("OuterConfirming", 4)];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// Makes a new order `o_id` modified at `at` with row version `ts`.
pub fn generate(rng: &mut ChaCha8Rng, o_id: u64, at: Timestamp, ts: u64) -> Order {
    let (shop_id, shop_name) = *pick(rng, SHOPS);
    let n_items = rng.random_range(1..=4);
    let mut items = Vec::with_capacity(n_items);
    let mut total = 0i64;
    for k in 0..n_items {
        let cents = *pick(rng, PRICES);
        let qty = rng.random_range(1..=5);
        total += cents * qty;
        let sku = rng.random_range(1000..1100);
        items.push(OrderItem {
            ioi_id: o_id * 10 + k as u64,
            sku_id: format!("SKU-{sku}"),
            i_id: format!("I-{sku}"),
            name: pick(rng, PRODUCTS).to_string(),
            qty,
            sale_price: money(cents),
            sale_amount: money(cents * qty),
        });
    }
    let freight = *pick(rng, &[0i64, 0, 500, 800, 1200]);
    let roll = rng.random_range(0..100);
    let mut acc = 0;
    let status = STATUSES.iter().find(|(_, w)| {
        acc += w;
        roll < acc
    });
    let created = at - jiff::SignedDuration::from_secs(rng.random_range(60..86_400));
    let name = format!("{}{}", pick(rng, SURNAMES), pick(rng, GIVEN));
    let mut order = Order {
        co_id: 10001,
        shop_id,
        shop_name: shop_name.to_string(),
        io_id: first_io_id(o_id),
        o_id,
        so_id: format!("SO{}", 202_400_000_000u64 + o_id * 7),
        created: crate::time::format(created),
        modified: String::new(),
        io_date: String::new(),
        status: status.map_or("Confirmed", |s| s.0).to_string(),
        receiver_name: name,
        pay_amount: money(total + freight),
        freight: money(freight),
        ts,
        items,
        modified_at: 0,
    };
    touch(&mut order, at, ts);
    order
}

/// The orders a simulator starts with, and their indexes.
pub struct World {
    /// By `io_id`.
    pub orders: std::collections::HashMap<u64, Order>,
    /// (modified, io_id) -> ts.
    pub index: std::collections::BTreeMap<(i64, u64), u64>,
    /// Row version -> io_id, for the ts cursor.
    pub by_ts: std::collections::BTreeMap<u64, u64>,
    /// The next row version.
    pub next_ts: u64,
}

/// `n` orders from `first_o_id` on, modified over `[from, until]`; with
/// `split`, every fourth ships twice in the same second.
pub fn world(rng: &mut ChaCha8Rng, n: usize, (from, until): (Timestamp, Timestamp), first_o_id: u64, split: bool) -> World {
    let (from, until) = (from.as_second(), until.as_second().max(from.as_second()));
    let mut times: Vec<i64> = (0..n).map(|_| rng.random_range(from..=until)).collect();
    times.sort_unstable();
    let mut w = World { orders: Default::default(), index: Default::default(), by_ts: Default::default(), next_ts: n as u64 + 1 };
    for (i, t) in times.into_iter().enumerate() {
        let o_id = first_o_id + i as u64;
        let order = generate(rng, o_id, Timestamp::from_second(t).expect("valid time"), i as u64 + 1);
        let sibling = (split && o_id.is_multiple_of(4)).then(|| {
            w.next_ts += 1;
            second_shipment(&order, w.next_ts - 1)
        });
        for order in std::iter::once(order).chain(sibling) {
            w.index.insert((order.modified_at, order.io_id), order.ts);
            w.by_ts.insert(order.ts, order.io_id);
            w.orders.insert(order.io_id, order);
        }
    }
    w
}

/// The `io_id` of an order's first outbound order.
pub fn first_io_id(o_id: u64) -> u64 {
    9_000_000 + o_id
}

/// A second outbound order of the same order (a split shipment): its own
/// `io_id` and row version, the same `modified`, the item lines after the
/// first (or the same line, for an order of one).
pub fn second_shipment(first: &Order, ts: u64) -> Order {
    let mut second = first.clone();
    second.io_id = 5_000_000_000 + first.o_id;
    second.ts = ts;
    if second.items.len() > 1 {
        second.items.remove(0);
    }
    for item in &mut second.items {
        item.ioi_id += 5_000_000_000;
    }
    second
}

/// Sets a new `modified` (and `io_date`) and row version.
pub fn touch(order: &mut Order, at: Timestamp, ts: u64) {
    order.modified = crate::time::format(at);
    order.io_date = order.modified.clone();
    order.modified_at = at.as_second();
    order.ts = ts;
}

/// A change by the shop: sometimes a new quantity or price.
pub fn change(rng: &mut ChaCha8Rng, order: &mut Order, at: Timestamp, ts: u64) {
    if rng.random_bool(0.4) && !order.items.is_empty() {
        let i = rng.random_range(0..order.items.len());
        let item = &mut order.items[i];
        if rng.random_bool(0.5) {
            item.qty = rng.random_range(1..=6);
        } else {
            item.sale_price = money(*pick(rng, PRICES));
        }
        let cents = (item.sale_price * 100.0).round() as i64;
        item.sale_amount = money(cents * item.qty);
    }
    touch(order, at, ts);
}
