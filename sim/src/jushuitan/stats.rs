//! What the simulator counts and what it knows to be true, for the tests
//! and benchmarks that check a sync against it.

use super::orders::Order;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counters the tests read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub accepted: u64,
    pub code10: u64,
    pub code100: u64,
    pub code140: u64,
    pub code180: u64,
    pub code199: u64,
    pub code200: u64,
    pub fault_500: u64,
    pub fault_slow: u64,
    pub fault_reset: u64,
    pub fault_truncated: u64,
    pub orders_changed: u64,
    pub orders_created: u64,
    /// Of those, created late: visible only after their `modified` passed.
    #[serde(default)]
    pub orders_late: u64,
    /// Answers changed by a lie (a quirk that contradicts), HTML pages included.
    pub lies: u64,
    /// The most calls accepted in any 60 s for one app_key.
    pub max_per_minute: u64,
    /// The most calls accepted in any 1 s for one app_key.
    pub max_per_second: u64,
    /// The token calls (`/openWeb/auth/...`).
    #[serde(default)]
    pub tokens: super::TokenStats,
    /// When the first and the last accepted call came: ms after the
    /// simulator started, on the monotonic clock.
    #[serde(default)]
    pub first_call_ms: Option<i64>,
    #[serde(default)]
    pub last_call_ms: Option<i64>,
    /// Accepted calls by API name.
    #[serde(default)]
    pub calls: BTreeMap<String, u64>,
}

/// Ground truth: every current outbound order (by `o_id`, then `io_id`) and the counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    pub orders: Vec<Order>,
    pub stats: Stats,
}
