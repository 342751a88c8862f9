//! Per-app_key call limits, counted over sliding windows of accepted calls.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Accepted-call times of one app_key.
#[derive(Debug, Default)]
pub struct Window {
    calls: VecDeque<Instant>,
    /// The most calls accepted in any 60 s.
    pub max_per_minute: usize,
    /// The most calls accepted in any 1 s.
    pub max_per_second: usize,
}

/// Why a call was refused.
pub enum Refusal {
    /// Code 199: too frequent.
    PerSecond,
    /// Code 200: over the per-minute budget.
    PerMinute,
}

impl Window {
    /// Admits a call at `now` or says which limit it breaks.
    pub fn admit(&mut self, now: Instant, per_second: u32, per_minute: u32) -> Result<(), Refusal> {
        while self.calls.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            self.calls.pop_front();
        }
        let last_second = self.calls.iter().rev().take_while(|t| now.duration_since(**t) < Duration::from_secs(1)).count();
        if last_second >= per_second as usize {
            return Err(Refusal::PerSecond);
        }
        if self.calls.len() >= per_minute as usize {
            return Err(Refusal::PerMinute);
        }
        self.calls.push_back(now);
        self.max_per_minute = self.max_per_minute.max(self.calls.len());
        self.max_per_second = self.max_per_second.max(last_second + 1);
        Ok(())
    }
}
