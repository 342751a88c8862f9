//! The simulator's state and HTTP face.

use super::auth::Tokens;
use super::config::JushuitanSimConfig;
use super::limits::{Refusal, Window};
use super::orders::{self, Order};
use super::quirks::{self, Quirk, QuirkRule};
pub use super::stats::{Stats, Truth};
use super::{objects, query};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::Uri;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The order query's path on the new gateway.
pub const ORDER_QUERY_PATH: &str = "/open/orders/out/simple/query";

struct Inner {
    orders: HashMap<u64, Order>,
    /// (modified, io_id) -> ts.
    index: BTreeMap<(i64, u64), u64>,
    /// Row version -> io_id, for the ts cursor.
    by_ts: BTreeMap<u64, u64>,
    next_o_id: u64,
    next_ts: u64,
    rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    windows: HashMap<String, Window>,
    stats: Stats,
    quirk_rng: ChaCha8Rng,
    /// The last `data` answered, for the repeat-page lie.
    previous: Option<Value>,
    /// Answers given with code 0.
    answers: u64,
    /// Whether a page with rows has been answered (the huge page is the first).
    rows_served: bool,
    /// The app's access and refresh tokens.
    tokens: Tokens,
}

/// The simulator's state, shared by its handlers.
pub struct SimState {
    config: JushuitanSimConfig,
    mutation: Mutex<super::Mutation>,
    quirks: Mutex<Vec<QuirkRule>>,
    inner: Mutex<Inner>,
    /// When it started, for the call times in [`Stats`].
    started: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Http500,
    Slow,
    Reset,
    Truncated,
}

impl SimState {
    /// Generates the initial orders from the seed.
    pub fn new(config: JushuitanSimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let split = config.quirks.iter().any(|r| r.quirk == super::Quirk::SplitShipments);
        let orders::World { orders, index, by_ts, next_ts } = orders::world(&mut rng, config.orders, (config.from, config.until), config.first_o_id, split);
        let inner = Inner {
            next_o_id: config.first_o_id + config.orders as u64,
            next_ts,
            orders,
            index,
            by_ts,
            fault_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_fa17),
            rng,
            windows: HashMap::new(),
            stats: Stats::default(),
            quirk_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x0dd_a45e),
            previous: None,
            answers: 0,
            rows_served: false,
            tokens: Tokens::new(config.tokens.clone(), config.seed, &config.access_token, &config.refresh_token),
        };
        SimState {
            mutation: Mutex::new(config.mutation.clone()),
            quirks: Mutex::new(config.quirks.clone()),
            config,
            inner: Mutex::new(inner),
            started: Instant::now(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JushuitanSimConfig {
        &self.config
    }

    /// Every current row of another object (`refund.single.query`), by
    /// key, as the API prints it; `None` for an API it does not serve.
    pub fn object_truth(&self, api: &str) -> Option<Vec<Value>> {
        let obj = objects::by_api(api)?;
        let inner = self.inner.lock().expect("sim lock");
        Some(objects::rows(obj, &inner.orders).into_iter().map(|r| r.row).collect())
    }

    /// Every current outbound order, by `o_id` then `io_id`, and the counters.
    pub fn truth(&self) -> Truth {
        let inner = self.inner.lock().expect("sim lock");
        let mut orders: Vec<Order> = inner.orders.values().cloned().collect();
        orders.sort_by_key(|o| (o.o_id, o.io_id));
        Truth { orders, stats: Stats { tokens: inner.tokens.stats.clone(), ..inner.stats.clone() } }
    }

    /// Changes the mutation rate (e.g. to stop it: the shop closes).
    pub fn set_mutation(&self, mutation: super::Mutation) {
        *self.mutation.lock().expect("sim lock") = mutation;
    }

    /// Changes the quirk modes (e.g. none: the source is healthy again).
    pub fn set_quirks(&self, quirks: Vec<QuirkRule>) {
        *self.quirks.lock().expect("sim lock") = quirks;
    }

    fn quirks(&self) -> Vec<QuirkRule> {
        self.quirks.lock().expect("sim lock").clone()
    }

    /// Whether `quirk` strikes this answer (rolled from the seed).
    fn strikes(&self, inner: &mut Inner, rule: &QuirkRule) -> bool {
        rule.rate >= 1.0 || inner.quirk_rng.random::<f64>() < rule.rate
    }

    /// Whether this answer is an HTML maintenance page.
    fn maintenance(&self) -> bool {
        let rules = self.quirks();
        let mut inner = self.inner.lock().expect("sim lock");
        let html = rules.iter().any(|r| r.quirk == Quirk::Html && self.strikes(&mut inner, r));
        inner.stats.lies += u64::from(html);
        html
    }

    /// Applies the quirk modes to one page's `data`.
    /// Another object's list is read under the outbound key while the
    /// quirks apply, and lies that serve rows of other windows are told
    /// with outbound orders only (`asked` is `None` for another object).
    fn quirked(&self, inner: &mut Inner, rules: &[QuirkRule], asked: Option<(Option<(i64, i64)>, usize)>, list_key: &str, data: &RawValue) -> Box<RawValue> {
        let mut page: Value = serde_json::from_str(data.get()).expect("the query prints JSON");
        if let Some(rows) = page.as_object_mut().and_then(|m| m.remove(list_key)) {
            page["datas"] = rows;
        }
        let has_rows = page["datas"].as_array().is_some_and(|r| !r.is_empty());
        // Rows of another window, only for the lies that serve them.
        let wanted = rules.iter().any(|r| matches!(r.quirk, Quirk::OtherWindow | Quirk::OutsideRows));
        let elsewhere: Vec<Value> = match asked.and_then(|(w, size)| w.map(|w| (w, size))).filter(|_| wanted) {
            Some(((b, e), size)) => {
                let before = inner.index.range(..(b, 0)).rev().take(size);
                let after = inner.index.range((e + 1, 0)..).take(size);
                let ids: Vec<u64> = before.chain(after).map(|((_, id), _)| *id).collect();
                ids.iter().filter_map(|id| serde_json::to_value(&inner.orders[id]).ok()).collect()
            }
            None => Vec::new(),
        };
        let honest = page.clone();
        let cx =
            quirks::Context { previous: inner.previous.as_ref(), elsewhere: &elsewhere, answer_no: inner.answers, first_rows: has_rows && !inner.rows_served };
        for rule in rules.iter().filter(|r| r.quirk.is_spelling()) {
            quirks::spell(rule.quirk, &mut page, &cx);
        }
        let rolled: Vec<(Quirk, bool)> =
            rules.iter().filter(|r| !r.quirk.is_spelling() && r.quirk != Quirk::Html).map(|r| (r.quirk, self.strikes(inner, r))).collect();
        let cx = quirks::Context { previous: inner.previous.as_ref(), elsewhere: &elsewhere, answer_no: inner.answers, first_rows: false };
        let mut lied = false;
        for (quirk, strikes) in rolled {
            lied |= strikes && quirks::lie(quirk, &mut page, &cx);
        }
        if rules.iter().any(|r| r.quirk == Quirk::BigTs) {
            quirks::big_ts(&mut page);
        }
        inner.stats.lies += u64::from(lied);
        inner.answers += 1;
        inner.rows_served |= has_rows;
        inner.previous = Some(honest);
        if let Some(rows) = page.as_object_mut().and_then(|m| m.remove("datas")) {
            page[list_key] = rows;
        }
        serde_json::value::to_raw_value(&page).expect("a page serializes")
    }

    /// The counters only.
    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock().expect("sim lock");
        Stats { tokens: inner.tokens.stats.clone(), ..inner.stats.clone() }
    }

    /// Runs `f` on the app's tokens, after checking a token call's app
    /// key, sign and timestamp like every call's (code 10 or 180 if not).
    pub(crate) fn token_call<R>(&self, fields: &BTreeMap<String, String>, f: impl FnOnce(&mut Tokens) -> Result<R, (i64, String)>) -> Result<R, (i64, String)> {
        let c = &self.config;
        let given = fields.get("sign").ok_or((10, "sign is missing".to_string()))?;
        if fields.get("app_key") != Some(&c.app_key) {
            return Err((10, "app_key is not recognised".into()));
        }
        if !given.eq_ignore_ascii_case(&super::verify::expected(&c.app_secret, fields)) {
            return Err((10, "invalid sign (签名错误)".into()));
        }
        let now = Timestamp::now().as_second();
        match fields.get("timestamp").and_then(|t| t.parse::<i64>().ok()) {
            Some(ts) if (now - ts).unsigned_abs() <= c.clock_tolerance.as_secs() => {}
            _ => return Err((180, "timestamp is invalid or too far from the server clock".into())),
        }
        f(&mut self.inner.lock().expect("sim lock").tokens)
    }

    fn roll_fault(&self) -> Option<Fault> {
        let f = &self.config.faults;
        let mut inner = self.inner.lock().expect("sim lock");
        inner.stats.requests += 1;
        let roll: f64 = inner.fault_rng.random();
        let mut edge = 0.0;
        for (p, fault) in [(f.http500, Fault::Http500), (f.slow, Fault::Slow), (f.reset, Fault::Reset), (f.truncated, Fault::Truncated)] {
            edge += p;
            if roll < edge {
                let s = &mut inner.stats;
                *match fault {
                    Fault::Http500 => &mut s.fault_500,
                    Fault::Slow => &mut s.fault_slow,
                    Fault::Reset => &mut s.fault_reset,
                    Fault::Truncated => &mut s.fault_truncated,
                } += 1;
                return Some(fault);
            }
        }
        None
    }

    /// Checks, limits and answers one call: `(code, msg, data)`.
    fn handle(&self, object: Option<&'static objects::Object>, body: &[u8]) -> (i64, Option<String>, Option<Box<RawValue>>) {
        let fields: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let c = &self.config;
        let mut inner = self.inner.lock().expect("sim lock");
        let fail = |inner: &mut Inner, code: i64, msg: String| {
            let s = &mut inner.stats;
            match code {
                10 => s.code10 += 1,
                100 => s.code100 += 1,
                140 => s.code140 += 1,
                180 => s.code180 += 1,
                199 => s.code199 += 1,
                200 => s.code200 += 1,
                _ => {}
            }
            (code, Some(msg), None)
        };
        let Some(given) = fields.get("sign") else { return fail(&mut inner, 10, "sign is missing".into()) };
        if fields.get("app_key") != Some(&c.app_key) {
            return fail(&mut inner, 10, "app_key is not recognised".into());
        }
        if !given.eq_ignore_ascii_case(&super::verify::expected(&c.app_secret, &fields)) {
            return fail(&mut inner, 10, "invalid sign (签名错误)".into());
        }
        if !inner.tokens.valid(fields.get("access_token")) {
            return fail(&mut inner, 100, "access_token is invalid or expired".into());
        }
        let now = Timestamp::now().as_second();
        match fields.get("timestamp").and_then(|t| t.parse::<i64>().ok()) {
            Some(ts) if (now - ts).unsigned_abs() <= c.clock_tolerance.as_secs() => {}
            _ => return fail(&mut inner, 180, "timestamp is invalid or too far from the server clock".into()),
        }
        let admitted = inner.windows.entry(c.app_key.clone()).or_default().admit(Instant::now(), c.per_second, c.per_minute);
        match admitted {
            Err(Refusal::PerSecond) => return fail(&mut inner, 199, "调用太频繁，请稍后再试!".into()),
            Err(Refusal::PerMinute) => return fail(&mut inner, 200, "调用频次超过限制!".into()),
            Ok(()) => {}
        }
        let w = &inner.windows[&c.app_key];
        let (mpm, mps) = (w.max_per_minute as u64, w.max_per_second as u64);
        inner.stats.max_per_minute = inner.stats.max_per_minute.max(mpm);
        inner.stats.max_per_second = inner.stats.max_per_second.max(mps);
        let mut biz: Value = match serde_json::from_str(fields.get("biz").map_or("{}", String::as_str)) {
            Ok(v) => v,
            Err(e) => return fail(&mut inner, 140, format!("biz is not valid JSON: {e}")),
        };
        let rules = self.quirks();
        for cursor in ["start_ts", "ts"] {
            if let Some(ts) = biz.get(cursor).and_then(Value::as_u64).filter(|_| rules.iter().any(|r| r.quirk == Quirk::BigTs)) {
                biz[cursor] = Value::from(ts.saturating_sub(quirks::BIG_TS_OFFSET));
            }
        }
        let asked = match object {
            None => query::parse(&biz).map(|q| (q.run(&inner.orders, &inner.index, &inner.by_ts), Some((q.window(), q.page_size())), "datas")),
            Some(obj) => objects::parse(obj, &biz).map(|q| (q.run(&inner.orders), None, obj.list_key)),
        };
        let (mut data, outbound, list_key) = match asked {
            Ok(a) => a,
            Err(msg) => return fail(&mut inner, 140, msg),
        };
        inner.stats.accepted += 1;
        // Monotonic: a wall clock stepped mid-run must not stretch a sync.
        let at = self.started.elapsed().as_millis() as i64;
        inner.stats.first_call_ms.get_or_insert(at);
        inner.stats.last_call_ms = Some(at);
        *inner.stats.calls.entry(object.map_or("orders.out.simple.query", |o| o.api).to_string()).or_default() += 1;
        if !rules.is_empty() {
            data = self.quirked(&mut inner, &rules, outbound, list_key, &data);
        }
        self.mutate(&mut inner);
        (0, None, Some(data))
    }

    /// The shop keeps working: some orders change, new ones appear.
    fn mutate(&self, inner: &mut Inner) {
        let m = self.mutation.lock().expect("sim lock").clone();
        let count = |rng: &mut ChaCha8Rng, expected: f64| expected.floor() as u64 + u64::from(rng.random_bool(expected.fract()));
        let changes = count(&mut inner.rng, m.changes_per_request);
        let created = count(&mut inner.rng, m.new_per_request);
        let now = Timestamp::now();
        for _ in 0..changes {
            let first = self.config.first_o_id;
            if inner.next_o_id == first {
                break;
            }
            let io_id = orders::first_io_id(inner.rng.random_range(first..inner.next_o_id));
            let ts = inner.next_ts;
            inner.next_ts += 1;
            let Inner { orders, index, by_ts, rng, .. } = inner;
            if let Some(order) = orders.get_mut(&io_id) {
                index.remove(&(order.modified_at, io_id));
                by_ts.remove(&order.ts);
                orders::change(rng, order, now, ts);
                index.insert((order.modified_at, io_id), order.ts);
                by_ts.insert(order.ts, io_id);
                inner.stats.orders_changed += 1;
            }
        }
        for _ in 0..created {
            add_order(inner, now);
        }
        let late = count(&mut inner.rng, m.late_per_request);
        for _ in 0..late {
            add_order(inner, now - jiff::SignedDuration::try_from(m.late_by).unwrap_or_default());
            inner.stats.orders_late += 1;
        }
    }

    /// `n` new orders that become visible `by` after they were modified,
    /// so the windows that should have held them were already read (the
    /// `late` mode of [`super::Mutation`], at once).
    pub fn add_late(&self, n: usize, by: std::time::Duration) {
        let mut inner = self.inner.lock().expect("sim lock");
        for _ in 0..n {
            add_order(&mut inner, Timestamp::now() - jiff::SignedDuration::try_from(by).unwrap_or_default());
            inner.stats.orders_late += 1;
        }
    }
}

/// A new order modified at `at`, with the next id and row version.
fn add_order(inner: &mut Inner, at: Timestamp) {
    let (o_id, ts) = (inner.next_o_id, inner.next_ts);
    inner.next_o_id += 1;
    inner.next_ts += 1;
    let order = orders::generate(&mut inner.rng, o_id, at, ts);
    inner.index.insert((order.modified_at, order.io_id), order.ts);
    inner.by_ts.insert(order.ts, order.io_id);
    inner.orders.insert(order.io_id, order);
    inner.stats.orders_created += 1;
}

impl SimState {}

/// The envelope of every answer; `data` is printed once, by the query.
#[derive(serde::Serialize)]
struct Answer {
    code: i64,
    msg: Option<String>,
    data: Option<Box<RawValue>>,
}

pub(super) async fn order_query(State(st): State<Arc<SimState>>, uri: Uri, body: Bytes) -> Response {
    let fault = st.roll_fault();
    if fault == Some(Fault::Http500) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "simulated internal error").into_response();
    }
    let object = objects::by_path(uri.path());
    if uri.path() != ORDER_QUERY_PATH && object.is_none() {
        let body = json!({"code": 404, "msg": format!("unknown API path {}", uri.path()), "data": null});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    if st.maintenance() {
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], quirks::MAINTENANCE_PAGE).into_response();
    }
    let (code, msg, data) = st.handle(object, &body);
    let text = serde_json::to_string(&Answer { code, msg, data }).expect("an answer always serializes");
    let json_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    match fault {
        Some(Fault::Slow) => {
            tokio::time::sleep(st.config.faults.slow_delay).await;
            (json_type, text).into_response()
        }
        Some(Fault::Reset) => {
            let broken = futures_util::stream::iter([
                Ok(Bytes::copy_from_slice(&text.as_bytes()[..text.len() / 3])),
                Err(std::io::Error::other("simulated connection reset")),
            ]);
            (json_type, Body::from_stream(broken)).into_response()
        }
        Some(Fault::Truncated) => (json_type, Bytes::copy_from_slice(&text.as_bytes()[..text.len() / 2])).into_response(),
        _ => (json_type, text).into_response(),
    }
}

pub(super) async fn truth(State(st): State<Arc<SimState>>) -> axum::Json<Truth> {
    axum::Json(st.truth())
}

async fn object_truth(State(st): State<Arc<SimState>>, axum::extract::Path(api): axum::extract::Path<String>) -> Response {
    match st.object_truth(&api) {
        Some(rows) => axum::Json(json!({"api": api, "rows": rows})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no object `{api}` (known: {})", objects::OBJECTS.iter().map(|o| o.api).collect::<Vec<_>>().join(", "))})),
        )
            .into_response(),
    }
}

/// The simulator's routes: the gateway under `/open/`, its token calls
/// under `/openWeb/auth/`, `GET /__sim/truth` and, per other object,
/// `GET /__sim/truth/{api}`.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/open/{*api}", post(order_query))
        .route("/openWeb/auth/{op}", post(super::auth::handle))
        .route("/__sim/truth", get(truth))
        .route("/__sim/truth/{api}", get(object_truth))
        .with_state(state)
}

/// Starts a simulator on 127.0.0.1:`port` (0 = any free port).
pub async fn start(config: JushuitanSimConfig, port: u16) -> std::io::Result<crate::Running<Arc<SimState>>> {
    let state = Arc::new(SimState::new(config));
    crate::spawn(port, router(state.clone()), state).await
}
