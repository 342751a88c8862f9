//! The Jushuitan open-API simulator (`POST /open/orders/out/simple/query`
//! of the new gateway), as `../shared/jushuitan-api.md` describes it:
//! signed form requests, business-parameter checks, the real envelope,
//! per-app rate limits answered with codes 199/200, access tokens that
//! expire and renew (`auth`), optional faults and optional mutation of
//! orders while a sync runs, and a ground-truth view; `merchants` serves
//! many merchants, each with its own key, orders and budget, from one process.

mod auth;
mod config;
mod limits;
pub mod merchants;
mod objects;
mod orders;
mod query;
mod quirks;
mod server;
mod stats;
mod verify;

pub use auth::{TOO_EARLY, TokenPolicy, TokenStats};
pub use config::{Faults, JushuitanSimConfig, Mutation};
pub use objects::{OBJECTS, Object};
pub use orders::{Order, OrderItem};
pub use quirks::{BIG_TS_OFFSET, Quirk, QuirkRule};
pub use server::{SimState, Stats, Truth, router, start};

/// `n` realistic orders as JSON text, deterministic from `seed` (for
/// benchmarks and plugin tests).
pub fn sample_orders(seed: u64, n: usize) -> Vec<String> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let at = jiff::Timestamp::from_second(1_735_689_600).expect("fixed time");
    (0..n).map(|i| serde_json::to_string(&orders::generate(&mut rng, 10_000_001 + i as u64, at, i as u64 + 1)).expect("order JSON")).collect()
}
