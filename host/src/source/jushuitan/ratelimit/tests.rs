//! The limiter's tests, on a paused clock where they wait.

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
    let limiter = Arc::new(AppLimiter::new(5, 100));
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

/// Calls that reach the server late (a loaded host, a slow network:
/// anywhere up to 400 ms after they were let go, answered 20 ms after
/// arriving) never break the server's windows, 2 callers in parallel:
/// a call counts until its answer. The opening burst is still used.
#[tokio::test(start_paused = true)]
async fn calls_that_arrive_late_never_break_the_windows() {
    let limiter = Arc::new(AppLimiter::new(5, 100));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for caller in 0..2u64 {
        let (limiter, arrivals) = (limiter.clone(), arrivals.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..60u64 {
                let (_, call) = limiter.acquire().await;
                // A fixed, uneven spread of delays (deterministic).
                tokio::time::sleep(Duration::from_millis((i * 7919 + caller * 104_729) % 400)).await;
                arrivals.lock().unwrap().push(Instant::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(call);
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let mut times = arrivals.lock().unwrap().clone();
    times.sort();
    assert_eq!(refused(&times, 5, 100), 0, "a late arrival broke a window");
    // 120 calls: 100 in the first minute, 20 more in the second's first seconds.
    assert!(Instant::now() - start <= Duration::from_secs(70), "took {:?}", Instant::now() - start);
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
    let (waited, _) = second.acquire().await;
    assert!(waited >= Duration::from_millis(900), "the second's four calls leave the window first: waited {waited:?}");
    let third = Budget::new("app-unknown", 4, 1000, None).with_memory(Some(memory.clone()));
    assert!(third.acquire().await.0 < Duration::from_millis(20), "nothing remembered: no wait");
}

/// What is remembered after each call is what can hold the next process
/// back: all of the minute's calls where the minute's budget can fill, only
/// the last second's where it cannot (a generous budget once wrote every
/// call of the minute after each call: 48,000 of them, 800 times a second).
#[tokio::test(start_paused = true)]
async fn only_the_calls_that_can_bind_are_remembered() {
    let memory = Arc::new(Remembered::default());
    let remembered = |app: &str| memory.recent_calls(app).len();
    let tight = Budget::new("app-tight", 5, 100, None).with_memory(Some(memory.clone()));
    let generous = Budget::new("app-generous", 1000, 1_000_000, None).with_memory(Some(memory.clone()));
    for _ in 0..40 {
        tight.acquire().await;
        generous.acquire().await;
    }
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..3 {
        tight.acquire().await;
        generous.acquire().await;
    }
    assert_eq!(remembered("app-tight"), 43, "5/s and 100/min: the minute can fill, so all of it is kept");
    assert_eq!(remembered("app-generous"), 3, "1000/s and 1,000,000/min: the minute cannot fill, only the last second counts");
}

#[tokio::test]
async fn shared_budgets_space_calls_with_a_margin_for_jitter() {
    let shared = Arc::new(Recording(Mutex::new(Vec::new()), Duration::from_millis(30)));
    for (per_second, per_minute) in [(5, 100), (5, 300)] {
        let (waited, _) = Budget::new("app", per_second, per_minute, Some(shared.clone())).acquire().await;
        assert!(waited >= Duration::from_millis(30), "the reserved slot's wait is slept: {waited:?}");
    }
    let asked = shared.0.lock().unwrap().clone();
    // 100/min at 97% dominates the real defaults; 5/s keeps 300 ms of margin.
    assert_eq!(asked[0].1.as_millis(), 618);
    assert_eq!(asked[1].1.as_millis(), 260);
    assert_eq!(asked[0].0, "app");
}
