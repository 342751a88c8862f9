//! One rate limiter per app_key, shared by every request of the process,
//! holding both the per-second and the per-minute budget, modelled as the
//! server counts them: over sliding windows of the calls it accepted. A
//! fresh budget can spend the opening burst the windows allow (up to
//! `per_second` calls at once, `per_minute` in the first minute), and a
//! long sync then runs at the pace its own calls leave the minute window:
//! every budget used at every horizon. Each window is counted a little
//! longer than the server's (`SECOND_MARGIN`, `MINUTE_MARGIN`), because
//! the server counts arrivals, and network jitter can bring two calls
//! closer on arrival than they were sent.
//!
//! Several pipelines of one app (one per object) draw on one budget. When
//! a slot frees, it goes to the waiting party (pipeline) served longest
//! ago, so a pipeline with several calls in flight cannot crowd out one
//! with a single call: the budget is split by turns, not by who wakes first.
//!
//! A process that restarts would start its budget afresh, and its first
//! calls could land in the same windows as the last calls of the process
//! before it (killed, or stopped) and trip them. Where the state can
//! remember it ([`BudgetMemory`]), the calls of the last minute are kept,
//! and a new process counts them as its own before its first call.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How much longer than the server's each window is counted.
const SECOND_MARGIN: Duration = Duration::from_millis(100);
const MINUTE_MARGIN: Duration = Duration::from_millis(500);
/// Share of each budget a shared budget (several processes) uses, its
/// calls spaced evenly; the rest absorbs the jitter of many processes.
const SECOND_SHARE: f64 = 0.95;
const MINUTE_SHARE: f64 = 0.97;
/// How much later than its slot a call of a shared budget may reach the
/// server without tripping the per-second window.
const SHARED_JITTER: Duration = Duration::from_millis(300);

/// Both budgets of one app_key: the calls of the last minute, and who
/// waits for the next slot.
pub struct AppLimiter {
    per_second: usize,
    per_minute: usize,
    state: Mutex<Slots>,
    freed: tokio::sync::Notify,
}

/// The calls made, the callers waiting and whose turn was when.
#[derive(Default)]
struct Slots {
    calls: VecDeque<Instant>,
    /// (party, ticket) of each caller waiting, in arrival order.
    waiting: Vec<(u64, u64)>,
    /// The turn at which each party was last served.
    served: HashMap<u64, u64>,
    turn: u64,
    next_ticket: u64,
}

impl Slots {
    /// The ticket whose turn it is: of the party served longest ago (never
    /// served first), its oldest.
    fn next(&self) -> Option<u64> {
        self.waiting.iter().min_by_key(|(party, ticket)| (self.served.get(party).copied().unwrap_or(0), *ticket)).map(|(_, t)| *t)
    }
}

/// A caller's place in line, given up when its call starts or it stops waiting.
struct InLine<'a>(&'a AppLimiter, u64);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        let mut slots = self.0.state.lock().expect("limiter lock");
        slots.waiting.retain(|(_, t)| *t != self.1);
        drop(slots);
        self.0.freed.notify_waiters();
    }
}

/// A party (a budget's holder) that has not said who it is.
const ANYONE: u64 = 0;

/// The spacing of `calls` per `per` at `share` of the budget.
fn period(per: Duration, calls: u32, share: f64) -> Duration {
    per.mul_f64(1.0 / (f64::from(calls.max(1)) * share))
}

impl AppLimiter {
    /// A limiter for `per_second` and `per_minute` calls.
    pub fn new(per_second: u32, per_minute: u32) -> Self {
        AppLimiter {
            per_second: per_second.max(1) as usize,
            per_minute: per_minute.max(1) as usize,
            state: Mutex::default(),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// When a call may start, given the calls made (`None`: now).
    fn free_at(&self, calls: &VecDeque<Instant>, now: Instant) -> Option<Instant> {
        let (second, minute) = (Duration::from_secs(1) + SECOND_MARGIN, Duration::from_secs(60) + MINUTE_MARGIN);
        let in_second = calls.iter().rev().take_while(|t| now.saturating_duration_since(**t) < second).count();
        let by_second = (in_second >= self.per_second).then(|| calls[calls.len() - self.per_second] + second);
        let by_minute = (calls.len() >= self.per_minute).then(|| calls[calls.len() - self.per_minute] + minute);
        by_second.max(by_minute).filter(|at| *at > now)
    }

    /// Waits for a slot in both budgets and takes it; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        self.acquire_as(ANYONE).await
    }

    /// As `acquire`, taking turns with the other parties waiting.
    pub async fn acquire_as(&self, party: u64) -> Duration {
        let started = Instant::now();
        let ticket = {
            let mut slots = self.state.lock().expect("limiter lock");
            slots.next_ticket += 1;
            let ticket = slots.next_ticket;
            slots.waiting.push((party, ticket));
            ticket
        };
        let _line = InLine(self, ticket);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let wait = {
                let mut slots = self.state.lock().expect("limiter lock");
                let now = Instant::now();
                let minute = Duration::from_secs(60) + MINUTE_MARGIN;
                while slots.calls.front().is_some_and(|t| now.saturating_duration_since(*t) >= minute) {
                    slots.calls.pop_front();
                }
                match self.free_at(&slots.calls, now) {
                    None if slots.next() == Some(ticket) => {
                        slots.calls.push_back(now);
                        slots.turn += 1;
                        let turn = slots.turn;
                        slots.served.insert(party, turn);
                        return started.elapsed();
                    }
                    // Free, but another's turn: it takes the slot and wakes the line.
                    None => Duration::from_secs(1),
                    Some(at) => at - now,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut freed => {}
            }
        }
    }

    /// Forgets a party that will not call again (its budget was dropped):
    /// every run has its own, and a host runs for months.
    fn forget(&self, party: u64) {
        self.state.lock().expect("limiter lock").served.remove(&party);
    }

    /// Counts calls another process made (from a [`BudgetMemory`]) as this
    /// limiter's own, in order.
    fn seed(&self, earlier: &[SystemTime]) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut slots = self.state.lock().expect("limiter lock");
        let calls = &mut slots.calls;
        for t in earlier {
            let ago = wall.duration_since(*t).unwrap_or_default();
            if ago < Duration::from_secs(61)
                && let Some(at) = now.checked_sub(ago)
            {
                calls.push_back(at);
            }
        }
        calls.make_contiguous().sort();
    }

    /// The calls of the last minute, as wall-clock times (for the next process).
    fn recent(&self) -> Vec<SystemTime> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        self.state.lock().expect("limiter lock").calls.iter().map(|t| wall - now.saturating_duration_since(*t)).collect()
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
    /// Whether the calls an earlier process left were counted.
    seeded: tokio::sync::OnceCell<()>,
    /// Who this budget's holder is, for taking turns with the others.
    party: u64,
}

impl Budget {
    /// `per_second` and `per_minute` calls for `app_key` (a shared budget's spaced evenly).
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
            seeded: tokio::sync::OnceCell::new(),
            party: {
                static PARTIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(ANYONE + 1);
                PARTIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// Remembers the calls of the last minute in `memory` (and counts the
    /// ones an earlier process left before the first call).
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
        let Some(memory) = &self.memory else { return self.local.acquire_as(self.party).await };
        self.seeded
            .get_or_init(|| async {
                let earlier = memory.recent_calls(&self.app_key);
                tracing::debug!(app_key = %self.app_key, calls = earlier.len(), "counting the calls an earlier process made in the last minute");
                self.local.seed(&earlier);
            })
            .await;
        self.local.acquire_as(self.party).await;
        memory.remember_calls(&self.app_key, &self.local.recent());
        started.elapsed()
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.local.forget(self.party);
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
    struct Remembered(Mutex<HashMap<String, Vec<SystemTime>>>);

    impl BudgetMemory for Remembered {
        fn recent_calls(&self, app_key: &str) -> Vec<SystemTime> {
            self.0.lock().unwrap().get(app_key).cloned().unwrap_or_default()
        }
        fn remember_calls(&self, app_key: &str, calls: &[SystemTime]) {
            self.0.lock().unwrap().insert(app_key.to_string(), calls.to_vec());
        }
    }

    /// The server's count (as the simulator keeps it): calls in the last
    /// 1 s and 60 s, refusing what breaks either.
    fn refused(times: &[Instant], per_second: usize, per_minute: usize) -> usize {
        let mut bad = 0;
        for (i, t) in times.iter().enumerate() {
            let before = &times[..i];
            let second = before.iter().filter(|s| t.duration_since(**s) < Duration::from_secs(1)).count();
            let minute = before.iter().filter(|s| t.duration_since(**s) < Duration::from_secs(60)).count();
            bad += usize::from(second >= per_second || minute >= per_minute);
        }
        bad
    }

    /// A party with three calls in flight and one with one call at a time
    /// split the budget by turns, not three to one.
    #[tokio::test(start_paused = true)]
    async fn parties_take_turns() {
        let limiter = Arc::new(AppLimiter::new(5, 100));
        let counts = Arc::new([std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0)]);
        let mut tasks = Vec::new();
        for (party, callers) in [(1u64, 3), (2u64, 1)] {
            for _ in 0..callers {
                let (limiter, counts) = (limiter.clone(), counts.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..40 {
                        limiter.acquire_as(party).await;
                        counts[party as usize - 1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_secs(12)).await;
        let (a, b) = (counts[0].load(std::sync::atomic::Ordering::Relaxed), counts[1].load(std::sync::atomic::Ordering::Relaxed));
        assert!(a + b >= 50, "{a} + {b}");
        assert!(b * 10 >= (a + b) * 4, "the single caller got {b} of {} slots", a + b);
        for t in tasks {
            t.abort();
        }
    }

    /// A dropped budget's turn is forgotten: the limiter of an app keeps
    /// no entry per run it ever served.
    #[tokio::test(start_paused = true)]
    async fn dropped_budgets_leave_no_turn_behind() {
        for _ in 0..3 {
            let budget = Budget::new("app-forget", 5, 100, None);
            budget.acquire().await;
            assert_eq!(budget.local.state.lock().unwrap().served.len(), 1);
        }
        assert!(for_app("app-forget", 5, 100).state.lock().unwrap().served.is_empty());
    }

    /// 300 calls at 5/s and 100/min: the opening burst is used, nothing is
    /// refused, and every horizon ends close to what the windows allow.
    #[tokio::test(start_paused = true)]
    async fn the_windows_are_used_at_every_horizon_and_never_broken() {
        let limiter = AppLimiter::new(5, 100);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..300 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert_eq!(refused(&times, 5, 100), 0, "the server's windows are never broken");
        assert_eq!(times[..5].iter().filter(|t| **t == start).count(), 5, "the first second's burst is taken at once");
        let by = |secs: u64| times.iter().filter(|t| **t - start <= Duration::from_secs(secs)).count() as f64;
        // What the windows allow from a fresh start: 100 in the first 20 s, then 100 a minute.
        let allowed = |secs: f64| if secs < 60.0 { (secs * 5.0 + 1.0).min(100.0) } else { 100.0 + ((secs - 60.0) / 60.0 * 100.0).min(100.0) };
        assert!(by(70) / allowed(70.0) >= 0.95, "70 s: {} of {}", by(70), allowed(70.0));
        let last = times[299] - start;
        // The optimum reaches call 300 at 120 s + 20 s (the third minute's burst).
        assert!(last <= Duration::from_secs(145), "300 calls by {last:?}");
    }

    /// A budget made after another process's calls counts them: its first
    /// call waits until the earlier calls leave the windows.
    #[tokio::test]
    async fn a_restarted_process_counts_the_calls_the_last_one_made() {
        let memory = Arc::new(Remembered::default());
        let first = Budget::new("app-remembered", 4, 1000, None).with_memory(Some(memory.clone()));
        for _ in 0..4 {
            first.acquire().await;
        }
        assert_eq!(memory.recent_calls("app-remembered").len(), 4, "the calls of the last minute are remembered");
        // A fresh process: its own limiter has no history (another app_key here).
        memory.remember_calls("app-fresh", &memory.recent_calls("app-remembered"));
        let second = Budget::new("app-fresh", 4, 1000, None).with_memory(Some(memory.clone()));
        let waited = second.acquire().await;
        assert!(waited >= Duration::from_millis(900), "the second's four calls leave the window first: waited {waited:?}");
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
