//! The seam between the source's rate limiter and the stores that keep a
//! budget beyond one process: the limiter (in `source`) draws on these
//! traits, the state stores (in `state`) implement them, and neither layer
//! imports the other.

use std::time::Duration;

/// A rate budget kept outside this process, so that every process of a
/// cluster draws on the same one (see the PostgreSQL state store).
pub trait SharedBudget: Send + Sync {
    /// Reserves the next call slot of `app_key`, slots `interval` apart;
    /// returns how long to wait until it.
    fn reserve(&self, app_key: &str, interval: Duration) -> Result<Duration, String>;
}

/// Where a budget's next call slot is remembered across processes (a
/// wall-clock time, as a restart loses the monotonic clock).
pub trait BudgetMemory: Send + Sync {
    /// No call of `app_key` may start before this, as the last process left it.
    fn next_slot(&self, app_key: &str) -> Option<std::time::SystemTime>;
    /// Records that the next call of `app_key` may start at `at`.
    fn remember(&self, app_key: &str, at: std::time::SystemTime);
}
