//! Where a run is and when it should end: windows done of planned, and an
//! ETA that is the later of two estimates, the pace so far and the rate
//! budget (the pages the remaining windows should take, at the budget's
//! sustained calls per second). The pace alone promises too much while a
//! run spends the opening burst the limiter allows; the budget alone too
//! little when the target, not the source, is slow.

use super::Runner;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A run's progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub windows_done: u64,
    pub windows_planned: u64,
    pub fetched: u64,
    pub eta: Option<Duration>,
}

impl Runner {
    /// Where this run is (see the module doc for the ETA).
    pub fn progress(&self) -> Progress {
        let c = &self.counters;
        let (done, planned) = (c.windows_done.load(Ordering::Relaxed), c.windows_planned.load(Ordering::Relaxed));
        let left = planned.saturating_sub(done) as f64;
        let elapsed = c.started.lock().ok().and_then(|s| s.map(|s| s.elapsed()));
        let pace = elapsed.filter(|_| done > 0).map(|e| e.mul_f64(left / done as f64));
        let rate = self.client_rate();
        let pages = self.client.stats.pages.load(Ordering::Relaxed) as f64;
        let budget = (done > 0 && rate > 0.0).then(|| Duration::from_secs_f64(left * pages / done as f64 / rate));
        let eta = match (pace, budget) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Progress { windows_done: done, windows_planned: planned, fetched: c.fetched.load(Ordering::Relaxed), eta }
    }

    /// The budget's sustained calls per second.
    fn client_rate(&self) -> f64 {
        let c = &self.pipeline.source.client;
        f64::from(c.per_second).min(f64::from(c.per_minute) / 60.0)
    }
}
