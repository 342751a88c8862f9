//! One rate limiter per app_key, shared by every request of the process,
//! holding both the per-second and the per-minute budget (GCRA, governor).
//! The budgets are spaced evenly with a small safety margin, because the
//! server counts over sliding windows: a burst followed by a steady rate
//! would trip it.

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Share of each budget used; the rest absorbs network jitter.
const SECOND_SHARE: f64 = 0.95;
const MINUTE_SHARE: f64 = 0.97;
/// How much later than its slot a call of a shared budget may reach the
/// server without tripping the per-second window.
const SHARED_JITTER: Duration = Duration::from_millis(300);

/// A GCRA limiter on std's monotonic clock. governor's default clock
/// (quanta) calibrates the TSC on first use by spinning for up to 200 ms of
/// wall time, which showed as 8% of all CPU samples of a short `ferry run`.
type Limiter = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// Both budgets of one app_key.
pub struct AppLimiter {
    second: Limiter,
    minute: Limiter,
}

/// The spacing of `calls` per `per` at `share` of the budget.
fn period(per: Duration, calls: u32, share: f64) -> Duration {
    per.mul_f64(1.0 / (f64::from(calls.max(1)) * share))
}

fn evenly(per: Duration, calls: u32, share: f64) -> Limiter {
    let quota = Quota::with_period(period(per, calls, share)).expect("non-zero period").allow_burst(NonZeroU32::MIN);
    RateLimiter::direct_with_clock(quota, MonotonicClock)
}

impl AppLimiter {
    /// A limiter for `per_second` and `per_minute` calls.
    pub fn new(per_second: u32, per_minute: u32) -> Self {
        AppLimiter { second: evenly(Duration::from_secs(1), per_second, SECOND_SHARE), minute: evenly(Duration::from_secs(60), per_minute, MINUTE_SHARE) }
    }

    /// Waits for a slot in both budgets; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        self.minute.until_ready().await;
        self.second.until_ready().await;
        started.elapsed()
    }
}

/// The process-wide limiter of an app_key (made on first use with these
/// budgets; later callers share it).
pub fn for_app(app_key: &str, per_second: u32, per_minute: u32) -> Arc<AppLimiter> {
    static ALL: OnceLock<Mutex<HashMap<(String, u32, u32), Arc<AppLimiter>>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().expect("limiter registry");
    all.entry((app_key.to_string(), per_second, per_minute)).or_insert_with(|| Arc::new(AppLimiter::new(per_second, per_minute))).clone()
}

/// A rate budget kept outside this process, so that every process of a
/// cluster draws on the same one (see the PostgreSQL state store).
pub trait SharedBudget: Send + Sync {
    /// Reserves the next call slot of `app_key`, slots `interval` apart;
    /// returns how long to wait until it.
    fn reserve(&self, app_key: &str, interval: Duration) -> Result<Duration, String>;
}

/// The budget a client draws on: the shared one when there is one, else
/// the process-wide limiter of its app_key.
pub struct Budget {
    app_key: String,
    local: Arc<AppLimiter>,
    shared: Option<Arc<dyn SharedBudget>>,
    interval: Duration,
}

impl Budget {
    /// `per_second` and `per_minute` calls for `app_key`, spaced evenly.
    pub fn new(app_key: &str, per_second: u32, per_minute: u32, shared: Option<Arc<dyn SharedBudget>>) -> Self {
        let mut interval = period(Duration::from_secs(1), per_second, SECOND_SHARE).max(period(Duration::from_secs(60), per_minute, MINUTE_SHARE));
        if shared.is_some() {
            // Calls of several processes reach the server with more jitter
            // (scheduling, the database round trip): keep an absolute margin
            // on the per-second window too.
            interval = interval.max(period(Duration::from_secs(1) + SHARED_JITTER, per_second, 1.0));
        }
        Budget { app_key: app_key.to_string(), local: for_app(app_key, per_second, per_minute), shared, interval }
    }

    /// Waits for a slot; returns how long it waited. When the shared budget
    /// cannot be reached, the local limiter still spaces this process's calls.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        if let Some(shared) = &self.shared {
            match shared.reserve(&self.app_key, self.interval) {
                Ok(wait) => {
                    tokio::time::sleep(wait).await;
                    return started.elapsed();
                }
                Err(e) => tracing::warn!(app_key = %self.app_key, "shared rate budget unavailable, limiting this process alone: {e}"),
            }
        }
        self.local.acquire().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was asked and answers a fixed wait.
    struct Recording(Mutex<Vec<(String, Duration)>>, Duration);

    impl SharedBudget for Recording {
        fn reserve(&self, app_key: &str, interval: Duration) -> Result<Duration, String> {
            self.0.lock().unwrap().push((app_key.to_string(), interval));
            Ok(self.1)
        }
    }

    #[tokio::test]
    async fn shared_budgets_space_calls_with_a_margin_for_jitter() {
        let shared = Arc::new(Recording(Mutex::new(Vec::new()), Duration::from_millis(30)));
        for (per_second, per_minute) in [(5, 100), (5, 300)] {
            let waited = Budget::new("app", per_second, per_minute, Some(shared.clone())).acquire().await;
            assert!(waited >= Duration::from_millis(30), "the reserved slot's wait is slept: {waited:?}");
        }
        let asked = shared.0.lock().unwrap().clone();
        // 100/min at 97% dominates the real defaults; 5/s keeps 300 ms of margin.
        assert_eq!(asked[0].1.as_millis(), 618);
        assert_eq!(asked[1].1.as_millis(), 260);
        assert_eq!(asked[0].0, "app");
    }
}
