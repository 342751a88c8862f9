//! Windows `[begin, end]` to query: from the checkpoint (minus a lookback
//! overlap) or the pipeline's start, to now minus a safety lag, each at
//! most the configured span (the API allows 7 days).

use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// The API's longest window.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// One query window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `modified_begin`.
    pub begin: Timestamp,
    /// `modified_end`; the checkpoint moves here once the window is confirmed.
    pub end: Timestamp,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} .. {}]", crate::time::display(self.begin), crate::time::display(self.end))
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Splits `[from, until]` into windows of at most `span` (capped at 7 days).
pub fn split(from: Timestamp, until: Timestamp, span: Duration) -> Vec<Window> {
    let span = signed(span.min(MAX_WINDOW).max(Duration::from_secs(1)));
    let mut out = Vec::new();
    let mut begin = from;
    while begin < until {
        let end = begin.checked_add(span).map_or(until, |e| e.min(until));
        out.push(Window { begin, end });
        begin = end;
    }
    out
}

/// The windows of an incremental run.
pub fn incremental(checkpoint: Option<Timestamp>, start: Timestamp, now: Timestamp, lag: Duration, lookback: Duration, span: Duration) -> Vec<Window> {
    let begin = match checkpoint {
        Some(c) => c.checked_sub(signed(lookback)).unwrap_or(c).max(start),
        None => start,
    };
    let until = now.checked_sub(signed(lag)).unwrap_or(now);
    split(begin, until, span)
}

/// How far a window was read before a process stopped: every row the
/// `ts` cursor had passed is staged (in the outbox, dead letters or idCheck).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The window, exactly as it was read.
    pub window: Window,
    /// The `start_ts` to go on from.
    pub cursor: u64,
}

/// Re-plans `planned` (contiguous windows) around windows read part way:
/// each of those is read again exactly as it was, from its cursor (the
/// cursor holds only for the same window), and the ranges between them are
/// split as usual. A saved window outside the plan is left out.
pub fn resume(planned: Vec<Window>, saved: &[Progress], span: Duration) -> Vec<(Window, u64)> {
    let (Some(first), Some(last)) = (planned.first(), planned.last()) else { return Vec::new() };
    let (from, until) = (first.begin, last.end);
    let mut inside: Vec<Progress> =
        saved.iter().copied().filter(|p| p.window.begin >= from && p.window.end <= until && p.window.begin < p.window.end).collect();
    if inside.is_empty() {
        return planned.into_iter().map(|w| (w, 0)).collect();
    }
    inside.sort_by_key(|p| p.window.begin);
    let mut out = Vec::new();
    let mut at = from;
    for p in inside {
        if p.window.begin < at {
            continue; // overlaps one already taken
        }
        out.extend(split(at, p.window.begin, span).into_iter().map(|w| (w, 0)));
        out.push((p.window, p.cursor));
        at = p.window.end;
    }
    out.extend(split(at, until, span).into_iter().map(|w| (w, 0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        crate::time::parse(s).unwrap()
    }

    #[test]
    fn seven_day_split_lag_and_lookback() {
        let now = t("2024-01-20 12:00:00");
        let w = incremental(None, t("2024-01-01 00:00:00"), now, Duration::from_secs(120), Duration::ZERO, MAX_WINDOW);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], Window { begin: t("2024-01-01 00:00:00"), end: t("2024-01-08 00:00:00") });
        assert_eq!(w[2].end, t("2024-01-20 11:58:00"), "ends the safety lag before now");
        let w = incremental(Some(t("2024-01-20 11:00:00")), t("2024-01-01 00:00:00"), now, Duration::from_secs(120), Duration::from_secs(600), MAX_WINDOW);
        assert_eq!(w, vec![Window { begin: t("2024-01-20 10:50:00"), end: t("2024-01-20 11:58:00") }], "overlaps by the lookback");
        let w = split(t("2024-01-01 00:00:00"), t("2024-01-01 01:00:00"), Duration::from_secs(30 * 24 * 3600));
        assert_eq!(w.len(), 1, "a longer span is capped at 7 days, not refused");
        assert!(incremental(Some(now), now, now, Duration::from_secs(60), Duration::ZERO, MAX_WINDOW).is_empty());
        let w = split(t("2024-01-01 00:00:00"), t("2024-01-01 01:00:00"), Duration::from_secs(25 * 60));
        assert_eq!(w.iter().map(|w| crate::time::format(w.end)).collect::<Vec<_>>(), ["2024-01-01 00:25:00", "2024-01-01 00:50:00", "2024-01-01 01:00:00"]);
    }

    #[test]
    fn windows_read_part_way_are_resumed_exactly() {
        let w = |b: &str, e: &str| Window { begin: t(b), end: t(e) };
        let day = Duration::from_secs(24 * 3600);
        let planned = split(t("2024-01-01 00:00:00"), t("2024-01-04 12:00:00"), day);
        assert_eq!(resume(planned.clone(), &[], day), planned.iter().map(|w| (*w, 0)).collect::<Vec<_>>());
        // A day window read to cursor 77, and a short one at the old end of the plan.
        let saved = [
            Progress { window: w("2024-01-02 00:00:00", "2024-01-03 00:00:00"), cursor: 77 },
            Progress { window: w("2024-01-03 00:00:00", "2024-01-03 06:00:00"), cursor: 9 },
            Progress { window: w("2023-12-01 00:00:00", "2023-12-02 00:00:00"), cursor: 5 },
        ];
        let got = resume(planned, &saved, day);
        assert_eq!(
            got,
            vec![
                (w("2024-01-01 00:00:00", "2024-01-02 00:00:00"), 0),
                (w("2024-01-02 00:00:00", "2024-01-03 00:00:00"), 77),
                (w("2024-01-03 00:00:00", "2024-01-03 06:00:00"), 9),
                (w("2024-01-03 06:00:00", "2024-01-04 06:00:00"), 0),
                (w("2024-01-04 06:00:00", "2024-01-04 12:00:00"), 0),
            ],
            "the ranges stay contiguous and the saved windows keep their bounds"
        );
    }
}
