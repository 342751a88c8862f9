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

/// Where a budget's calls of the last minute are remembered across
/// processes (wall-clock times, as a restart loses the monotonic clock), so
/// a new process counts them against the server's windows.
pub trait BudgetMemory: Send + Sync {
    /// The calls of `app_key` the last process made in the last minute, oldest first.
    fn recent_calls(&self, app_key: &str) -> Vec<std::time::SystemTime>;
    /// Records the calls of `app_key` in the last minute.
    fn remember_calls(&self, app_key: &str, calls: &[std::time::SystemTime]);
}
