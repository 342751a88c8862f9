//! One rate limiter per app_key, shared by every request of the process,
//! holding both the per-second and the per-minute budget, modelled as the
//! server counts them: over sliding windows of the calls it accepted. A
//! fresh budget can spend the opening burst the windows allow (up to
//! `per_second` calls at once, `per_minute` in the first minute), and a
//! long sync then runs at the pace its own calls leave the minute window:
//! every budget used at every horizon. The server counts a call when it
//! arrives, somewhere between its sending and its answer, and 199 is also
//! its concurrency limit: so a call in flight counts as made now, and an
//! answered one as made when its answer came (the latest it can have
//! arrived), however late the network or a loaded host delivered it. Each
//! window is then counted a little longer than the server's
//! (`SECOND_MARGIN`, `MINUTE_MARGIN`) for its own clock's granularity.
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
const SECOND_MARGIN: Duration = Duration::from_millis(50);
const MINUTE_MARGIN: Duration = Duration::from_millis(500);
/// The server's windows as counted here: each a margin longer.
const SECOND_WINDOW: Duration = Duration::from_secs(1).saturating_add(SECOND_MARGIN);
const MINUTE_WINDOW: Duration = Duration::from_secs(60).saturating_add(MINUTE_MARGIN);
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
    /// When each answered call of the last minute was answered, oldest first.
    calls: VecDeque<Instant>,
    /// Calls sent and not yet answered (they count as made now).
    in_flight: usize,
    /// (party, ticket) of each caller waiting, in arrival order.
    waiting: Vec<(u64, u64)>,
    /// The turn at which each party was last served.
    served: HashMap<u64, u64>,
    turn: u64,
    next_ticket: u64,
}

impl Slots {
    /// Where the answered calls less than `window` before `now` begin in
    /// `calls` (which is in time order: a bisection, not a walk, since a
    /// generous budget holds many).
    fn first_within(&self, now: Instant, window: Duration) -> usize {
        self.calls.partition_point(|t| now.saturating_duration_since(*t) >= window)
    }

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

    /// When a call may start, given the calls made and in flight (`None`: now).
    fn free_at(&self, slots: &Slots, now: Instant) -> Option<Instant> {
        let (calls, flying) = (&slots.calls, slots.in_flight);
        // The `limit`-th latest call (in flight ones are the latest, at now) leaves a `span` window at:
        let leaves = |limit: usize, span: Duration| match limit.checked_sub(flying) {
            None | Some(0) => now + span,
            Some(k) => calls[calls.len() - k] + span,
        };
        let in_second = flying + calls.len() - slots.first_within(now, SECOND_WINDOW);
        let by_second = (in_second >= self.per_second).then(|| leaves(self.per_second, SECOND_WINDOW));
        let by_minute = (flying + calls.len() >= self.per_minute).then(|| leaves(self.per_minute, MINUTE_WINDOW));
        by_second.max(by_minute).filter(|at| *at > now)
    }

    /// A call answered (or given up): it counts from now, and a waiting caller may go.
    fn answered(&self) {
        let mut slots = self.state.lock().expect("limiter lock");
        slots.in_flight = slots.in_flight.saturating_sub(1);
        slots.calls.push_back(Instant::now());
        drop(slots);
        self.freed.notify_waiters();
    }

    /// Waits for a slot in both budgets and takes it; returns how long it
    /// waited, and the call, to hold until its answer has come.
    pub async fn acquire(self: &Arc<Self>) -> (Duration, InFlight) {
        self.acquire_as(ANYONE).await
    }

    /// As `acquire`, taking turns with the other parties waiting.
    pub async fn acquire_as(self: &Arc<Self>, party: u64) -> (Duration, InFlight) {
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
                let gone = slots.first_within(now, MINUTE_WINDOW);
                slots.calls.drain(..gone);
                match self.free_at(&slots, now) {
                    None if slots.next() == Some(ticket) => {
                        slots.in_flight += 1;
                        slots.turn += 1;
                        let turn = slots.turn;
                        slots.served.insert(party, turn);
                        return (started.elapsed(), InFlight(Some(self.clone())));
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

    /// The calls of the last minute that can still hold the next process
    /// back, as wall-clock times. The minute's count matters only while it
    /// can reach the per-minute budget within a minute at the per-second
    /// rate; below that (a generous budget: thousands of calls a minute,
    /// each remembering them all) the last second's calls are enough.
    fn recent(&self) -> Vec<SystemTime> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let slots = self.state.lock().expect("limiter lock");
        let minute_binds = slots.calls.len() + slots.in_flight + 60 * self.per_second >= self.per_minute;
        let from = if minute_binds { 0 } else { slots.first_within(now, SECOND_WINDOW) };
        let answered = slots.calls.range(from..).map(|t| wall - now.saturating_duration_since(*t));
        answered.chain(std::iter::repeat_n(wall, slots.in_flight)).collect()
    }
}

/// A call the limiter let go, counted as in flight until this is dropped
/// (when its answer has come, or the call was given up).
pub struct InFlight(Option<Arc<AppLimiter>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(limiter) = self.0.take() {
            limiter.answered();
        }
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

    /// Waits for a slot; returns how long it waited and the call, to hold
    /// until its answer has come. When the shared budget cannot be reached,
    /// the local limiter still spaces this process's calls.
    pub async fn acquire(&self) -> (Duration, InFlight) {
        let started = Instant::now();
        if let Some(shared) = &self.shared {
            match shared.reserve(&self.app_key, self.interval) {
                Ok(wait) => {
                    tokio::time::sleep(wait).await;
                    return (started.elapsed(), InFlight(None));
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
        let (_, call) = self.local.acquire_as(self.party).await;
        memory.remember_calls(&self.app_key, &self.local.recent());
        (started.elapsed(), call)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.local.forget(self.party);
    }
}

#[cfg(test)]
mod tests;
