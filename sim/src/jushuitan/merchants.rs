//! Many merchants in one simulator process (issue 25). Each merchant is a
//! whole [`SimState`]: its own app key, secret and tokens, its own orders
//! (its own seed and `o_id` range) and its own rate budget, so one process
//! can stand for the hundreds of shops a shared Ferry host syncs. A call
//! goes to the merchant its form's `app_key` names; an unknown key gets
//! the gateway's code 10, as from a single-merchant simulator.

use super::config::JushuitanSimConfig;
use super::server::{SimState, Stats, order_query};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// How far apart two merchants' `o_id` ranges start.
pub const O_ID_STRIDE: u64 = 100_000_000;

/// The merchants of one simulator process.
pub struct Merchants {
    states: Vec<Arc<SimState>>,
    by_key: HashMap<String, usize>,
}

impl Merchants {
    /// `n` merchants made from `base`. Merchant `k` (1-based) has the app
    /// key `{app_key}-{k}`, the secret `{app_secret}-{k}`, the tokens
    /// `{access_token}-{k}` and `{refresh_token}-{k}`, the seed `seed + k`
    /// and orders from `o_id` `first_o_id + k × 10^8`; everything else
    /// (orders, budget, faults, mutation, quirks) is `base`'s.
    pub fn new(base: &JushuitanSimConfig, n: usize) -> Self {
        let configs: Vec<JushuitanSimConfig> = (1..=n).map(|k| Self::config(base, k)).collect();
        let by_key = configs.iter().enumerate().map(|(i, c)| (c.app_key.clone(), i)).collect();
        // Generating worlds is the slow part of a large start: one thread per core.
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n.max(1));
        let chunk = n.div_ceil(threads).max(1);
        let states = std::thread::scope(|s| {
            let parts: Vec<_> =
                configs.chunks(chunk).map(|cs| s.spawn(move || cs.iter().map(|c| Arc::new(SimState::new(c.clone()))).collect::<Vec<_>>())).collect();
            parts.into_iter().flat_map(|p| p.join().expect("a merchant's world")).collect()
        });
        Merchants { states, by_key }
    }

    /// Merchant `k`'s configuration (1-based), as [`Merchants::new`] makes it.
    pub fn config(base: &JushuitanSimConfig, k: usize) -> JushuitanSimConfig {
        let mut c = base.clone();
        c.app_key = format!("{}-{k}", base.app_key);
        c.app_secret = format!("{}-{k}", base.app_secret);
        c.access_token = format!("{}-{k}", base.access_token);
        c.refresh_token = format!("{}-{k}", base.refresh_token);
        c.seed = base.seed.wrapping_add(k as u64);
        c.first_o_id = base.first_o_id + k as u64 * O_ID_STRIDE;
        c
    }

    /// How many merchants there are.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Merchant `k` (1-based).
    pub fn get(&self, k: usize) -> Option<&Arc<SimState>> {
        k.checked_sub(1).and_then(|i| self.states.get(i))
    }

    /// Every merchant's counters, merchant 1 first.
    pub fn stats(&self) -> Vec<Stats> {
        self.states.iter().map(|s| s.stats()).collect()
    }

    /// The merchant a signed form names by its `app_key`.
    fn of(&self, body: &[u8]) -> Option<Arc<SimState>> {
        let key = form_urlencoded::parse(body).find(|(k, _)| k == "app_key").map(|(_, v)| v.into_owned())?;
        self.by_key.get(&key).map(|&i| self.states[i].clone())
    }
}

/// The gateway's answer to an app key no merchant has.
fn unknown_app() -> Response {
    axum::Json(json!({"code": 10, "msg": "app_key is not recognised", "data": null})).into_response()
}

async fn open(State(m): State<Arc<Merchants>>, uri: Uri, body: Bytes) -> Response {
    match m.of(&body) {
        Some(st) => order_query(State(st), uri, body).await,
        None => unknown_app(),
    }
}

async fn auth(State(m): State<Arc<Merchants>>, op: Path<String>, body: Bytes) -> Response {
    match m.of(&body) {
        Some(st) => super::auth::handle(State(st), op, body).await.into_response(),
        None => unknown_app(),
    }
}

async fn all_stats(State(m): State<Arc<Merchants>>) -> Response {
    let rows: Vec<_> = m.states.iter().map(|s| json!({"app_key": s.config().app_key, "stats": s.stats()})).collect();
    axum::Json(rows).into_response()
}

async fn one_truth(State(m): State<Arc<Merchants>>, Path(k): Path<usize>) -> Response {
    match m.get(k) {
        Some(st) => super::server::truth(State(st.clone())).await.into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": format!("no merchant {k} (1 to {})", m.len())}))).into_response(),
    }
}

/// The routes: the gateway and token calls as for one merchant,
/// `GET /__sim/merchants` (each merchant's app key and counters) and
/// `GET /__sim/merchants/{k}/truth`.
pub fn router(state: Arc<Merchants>) -> Router {
    Router::new()
        .route("/open/{*api}", post(open))
        .route("/openWeb/auth/{op}", post(auth))
        .route("/__sim/merchants", get(all_stats))
        .route("/__sim/merchants/{k}/truth", get(one_truth))
        .with_state(state)
}

/// Starts `n` merchants made from `base` on 127.0.0.1:`port` (0 = any free port).
pub async fn start(base: &JushuitanSimConfig, n: usize, port: u16) -> std::io::Result<crate::Running<Arc<Merchants>>> {
    let state = Arc::new(Merchants::new(base, n));
    crate::spawn(port, router(state.clone()), state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchants_have_their_own_keys_orders_and_budgets() {
        let mut base = JushuitanSimConfig::new(3);
        base.orders = 20;
        let m = Merchants::new(&base, 3);
        assert_eq!(m.len(), 3);
        let (one, three) = (m.get(1).unwrap().truth(), m.get(3).unwrap().truth());
        assert_eq!(m.get(3).unwrap().config().app_key, "ferry-demo-app-3");
        assert_eq!(one.orders[0].o_id, base.first_o_id + O_ID_STRIDE);
        assert_eq!(three.orders[0].o_id, base.first_o_id + 3 * O_ID_STRIDE);
        assert!(m.get(0).is_none() && m.get(4).is_none());
        let body = b"app_key=ferry-demo-app-2&sign=x";
        assert!(Arc::ptr_eq(&m.of(body).unwrap(), m.get(2).unwrap()));
        assert!(m.of(b"app_key=ferry-demo-app&sign=x").is_none());
    }
}
