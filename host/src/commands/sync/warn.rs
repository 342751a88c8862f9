//! Warnings an operator should not have to look for: a run whose dead
//! letters jump against the runs before it, and a scheduled pipeline whose
//! checkpoint falls behind its schedule. Each is one log line (the alerts
//! of `[[alerts]]` are the way to be told elsewhere).

use super::super::PipelineHandle;
use std::time::Duration;

/// Runs compared with.
const BEFORE: usize = 5;
/// Dead letters a run must reach before it counts as a spike.
const SPIKE_FLOOR: u64 = 10;

/// Warns when this run's `dead_letters` are at least three times the
/// average of the runs before it (and at least 10): the source, the
/// target or the mapping changed.
pub(crate) fn dead_letter_spike(h: &PipelineHandle, dead_letters: u64) {
    let name = &h.pipeline.name;
    let Ok(runs) = h.state.runs(name, BEFORE + 1) else { return };
    // The newest is this run.
    let before: Vec<u64> = runs
        .iter()
        .skip(1)
        .filter(|r| matches!(r.status.as_str(), "ok" | "partial"))
        .filter_map(|r| r.summary.as_ref()?.get("dead_lettered")?.as_u64())
        .collect();
    if let Some(why) = spike(dead_letters, &before) {
        tracing::warn!(pipeline = %name, tenant = %h.tenant, dead_letters, "dead letters spiked: {why}; see `ferry dlq list` or the dashboard's reasons");
    }
}

fn spike(now: u64, before: &[u64]) -> Option<String> {
    if before.is_empty() || now < SPIKE_FLOOR {
        return None;
    }
    let average = before.iter().sum::<u64>() as f64 / before.len() as f64;
    (now as f64 >= 3.0 * average.max(1.0)).then(|| format!("{now} in this run against {average:.1} a run over the {} before", before.len()))
}

/// Whether a scheduled pipeline has fallen behind: its checkpoint is more
/// than three schedule periods (plus the source's lag and one window)
/// behind now. Says so once when it starts and once when it has caught up;
/// returns the new state.
pub(crate) fn behind(h: &PipelineHandle, every: Duration, was_behind: bool) -> bool {
    let name = &h.pipeline.name;
    let Ok(Some(lag)) = h.checkpoint_lag() else { return was_behind };
    let s = &h.pipeline.source;
    let allowed = every * 3 + s.lag + s.window;
    let now_behind = lag > allowed;
    let human = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    match (was_behind, now_behind) {
        (false, true) => tracing::warn!(
            pipeline = %name, tenant = %h.tenant, lag_seconds = lag.as_secs(),
            "fell behind: the checkpoint is {} behind now, more than three periods of its schedule (every {}) plus the source lag and a window; runs fail, take longer than the schedule, or wait for the rate budget",
            human(lag), human(every)
        ),
        (true, false) => tracing::info!(pipeline = %name, tenant = %h.tenant, "caught up: the checkpoint is {} behind now", human(lag)),
        _ => {}
    }
    now_behind
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_spike_is_three_times_the_usual_and_at_least_ten() {
        assert!(super::spike(30, &[10, 10, 10]).is_some());
        assert!(super::spike(29, &[10, 10, 10]).is_none());
        assert!(super::spike(12, &[0, 0]).is_some(), "from none to 12");
        assert!(super::spike(9, &[0]).is_none(), "under the floor");
        assert!(super::spike(500, &[]).is_none(), "nothing to compare with");
    }
}
