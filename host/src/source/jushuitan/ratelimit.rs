//! One rate limiter per app_key, shared by every request of the process,
//! holding both the per-second and the per-minute budget (GCRA, governor).
//! The budgets are spaced evenly with a small safety margin, because the
//! server counts over sliding windows: a burst followed by a steady rate
//! would trip it.
//!
//! A process that restarts would start its budget afresh, and its first
//! call could come right after the last call of the process before it
//! (killed, or stopped) and trip the server's windows. Where the state can
//! remember it ([`BudgetMemory`]), each call records when the next may
//! start, and a new process waits for that before its first call.

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
    type ByApp = HashMap<(String, u32, u32), Arc<AppLimiter>>;
    static ALL: OnceLock<Mutex<ByApp>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().expect("limiter registry");
    all.entry((app_key.to_string(), per_second, per_minute)).or_insert_with(|| Arc::new(AppLimiter::new(per_second, per_minute))).clone()
}

pub use crate::budget::{BudgetMemory, SharedBudget};

/// The budget a client draws on: the shared one when there is one, else
/// the process-wide limiter of its app_key.
pub struct Budget {
    app_key: String,
    local: Arc<AppLimiter>,
    shared: Option<Arc<dyn SharedBudget>>,
    interval: Duration,
    memory: Option<Arc<dyn BudgetMemory>>,
    /// Whether the remembered slot of an earlier process was waited for.
    floor_waited: tokio::sync::OnceCell<()>,
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
        Budget {
            app_key: app_key.to_string(),
            local: for_app(app_key, per_second, per_minute),
            shared,
            interval,
            memory: None,
            floor_waited: tokio::sync::OnceCell::new(),
        }
    }

    /// Remembers the next call slot in `memory` (and waits for the one an
    /// earlier process left before the first call).
    pub fn with_memory(mut self, memory: Option<Arc<dyn BudgetMemory>>) -> Self {
        self.memory = memory;
        self
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
        let Some(memory) = &self.memory else { return self.local.acquire().await };
        self.floor_waited
            .get_or_init(|| async {
                let wait = memory.next_slot(&self.app_key).and_then(|at| at.duration_since(std::time::SystemTime::now()).ok());
                if let Some(wait) = wait.filter(|w| *w <= self.interval.max(Duration::from_secs(1)) * 2) {
                    tracing::debug!(app_key = %self.app_key, ?wait, "waiting for the call slot an earlier process left");
                    tokio::time::sleep(wait).await;
                }
            })
            .await;
        self.local.acquire().await;
        memory.remember(&self.app_key, std::time::SystemTime::now() + self.interval);
        started.elapsed()
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

    /// A memory in a map, as a state store keeps it.
    #[derive(Default)]
    struct Remembered(Mutex<HashMap<String, std::time::SystemTime>>);

    impl BudgetMemory for Remembered {
        fn next_slot(&self, app_key: &str) -> Option<std::time::SystemTime> {
            self.0.lock().unwrap().get(app_key).copied()
        }
        fn remember(&self, app_key: &str, at: std::time::SystemTime) {
            self.0.lock().unwrap().insert(app_key.to_string(), at);
        }
    }

    /// A budget made after another process's call waits for the slot that
    /// call left, though its own limiter is fresh.
    #[tokio::test]
    async fn a_restarted_process_waits_for_the_slot_the_last_one_left() {
        let memory = Arc::new(Remembered::default());
        let first = Budget::new("app-remembered", 4, 1000, None).with_memory(Some(memory.clone()));
        first.acquire().await;
        let slot = memory.next_slot("app-remembered").expect("the next slot is remembered");
        let left = slot.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        assert!(left > Duration::from_millis(150), "{left:?}");
        // A fresh process: its own limiter has no history (another app_key
        // here, so this process's limiter is fresh too).
        memory.remember("app-fresh", slot);
        let second = Budget::new("app-fresh", 4, 1000, None).with_memory(Some(memory.clone()));
        let waited = second.acquire().await;
        assert!(waited >= left - Duration::from_millis(20), "waited {waited:?} for a slot {left:?} away");
        let third = Budget::new("app-unknown", 4, 1000, None).with_memory(Some(memory.clone()));
        assert!(third.acquire().await < Duration::from_millis(20), "nothing remembered: no wait");
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
