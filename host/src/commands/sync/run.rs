//! Running the queue: a pipeline's worker takes its queued commands one at
//! a time, a schedule adds one when none is queued or running, `execute`
//! runs one sync and `finish` records how it ended; at start, `restore`
//! queues the stored commands again.

use super::super::model::{SyncInput, TaskCountView, TaskView};
use super::super::status::SyncStatus;
use super::super::{Engine, PipelineHandle, command_key};
use super::{SyncCommand, live_count, update};
use crate::pipeline::{RunOptions, RunStatus, Runner};
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Runs a pipeline's queued commands one at a time until shutdown.
pub(crate) async fn worker(state: Arc<Engine>, handle: Arc<PipelineHandle>) {
    let mut stop = state.stop.clone();
    loop {
        let next = handle.queue.lock().expect("queue lock").pop_front();
        let Some(id) = next else {
            tokio::select! {
                () = handle.wake.notified() => continue,
                _ = stop.changed() => return,
            }
        };
        if *stop.borrow() {
            return;
        }
        // queued -> running under the commands lock, so a cancel cannot slip in between.
        let input = {
            let mut syncs = state.syncs.lock().expect("syncs lock");
            match syncs.get_mut(&command_key(&handle.tenant, id)) {
                Some(c) if c.status == SyncStatus::Queued => {
                    c.become_(SyncStatus::Running);
                    c.started = Some(Timestamp::now());
                    c.persist(&state);
                    Some(c.input.clone())
                }
                _ => None,
            }
        };
        let Some(input) = input else { continue };
        let outcome = execute(&state, &handle, id, input, state.stop.clone(), false).await;
        finish(&state, &handle.tenant, id, outcome);
        // Idle until the next run: the state gives back what it holds, and
        // so does the heap.
        handle.state.rest();
        crate::memory::after_run();
    }
}

/// How a run ended, for its command.
pub(crate) struct Outcome {
    pub(crate) status: SyncStatus,
    count: TaskCountView,
    error: Option<String>,
    failed: Vec<TaskView>,
}

/// Records the outcome in the command.
pub(crate) fn finish(state: &Engine, tenant: &str, id: Uuid, o: Outcome) {
    update(state, tenant, id, |c| {
        c.become_(o.status);
        (c.count, c.error, c.failed, c.completed) = (o.count, o.error, o.failed, Some(Timestamp::now()));
    });
}

/// Runs one sync of the pipeline until it ends or `stop` is set; `resumed`
/// when other workers ran part of it before.
pub(crate) async fn execute(
    state: &Engine,
    handle: &PipelineHandle,
    id: Uuid,
    input: SyncInput,
    stop: tokio::sync::watch::Receiver<bool>,
    resumed: bool,
) -> Outcome {
    let name = &handle.pipeline.name;
    // The pipeline's only writer here: a replay waits for the run (and is refused meanwhile).
    let _slot = handle.slot.lock().await;
    let runner = match Runner::from_parts(handle.pipeline.clone(), handle.registry.clone(), handle.state.clone(), false) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            let fact = crate::alerts::Fact::Run { status: RunStatus::Failed, dead_letters: 0, error: Some(e.to_string()) };
            state.alerts.observe(name, &handle.tenant, &fact);
            return Outcome { status: SyncStatus::Failed, count: TaskCountView::default(), error: Some(e.to_string()), failed: Vec::new() };
        }
    };
    *handle.running.lock().expect("running lock") = Some((id, runner.clone()));
    // In a cluster, other workers read the command from the database: keep its taskCount moving there.
    let (snapshot, started, before) = {
        let syncs = state.syncs.lock().expect("syncs lock");
        let cmd = syncs.get(&command_key(&handle.tenant, id));
        (state.cluster.as_ref().and(cmd).map(|c| c.record(handle)), cmd.and_then(|c| c.started), cmd.map(|c| c.count).unwrap_or_default())
    };
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let progress = snapshot.map(|r| tokio::spawn(super::shared::publish_progress(handle.state.clone(), r, runner.clone(), finished)));
    let dead_before = handle.state.dead_letter_count(name).unwrap_or(0);
    let opts = RunOptions {
        since: input.since.as_deref().and_then(|t| crate::time::parse(t).ok()),
        until: input.until.as_deref().and_then(|t| crate::time::parse(t).ok()),
        dry_run: false,
        stop: Some(stop),
    };
    // The run's log lines, its outcome line included, name the command.
    let summary = tracing::Instrument::instrument(runner.run(opts), tracing::info_span!("sync", command = %id)).await;
    drop(done);
    if let Some(p) = progress {
        let _ = p.await;
    }
    // The command keeps the first failures; all of them stay dead letters.
    let failed: Vec<TaskView> = handle
        .state
        .dead_letters_page(name, crate::state::Page { offset: dead_before, limit: TASKS_KEPT })
        .unwrap_or_default()
        .into_iter()
        .map(|d| TaskView { record_id: d.key.id, status: "FAILED".into(), message: d.reason })
        .collect();
    let mine = live_count(&runner.counters);
    let count = if resumed { counted(handle, started, before, mine) } else { mine };
    let status = match summary.status {
        RunStatus::Ok | RunStatus::DryRun => SyncStatus::Succeeded,
        RunStatus::Partial => SyncStatus::Partial,
        RunStatus::Interrupted => SyncStatus::Interrupted,
        RunStatus::Failed => SyncStatus::Failed,
    };
    metrics::counter!("ferry_commands_total", "kind" => "sync", "status" => status.as_str()).increment(1);
    let fact = crate::alerts::Fact::Run { status: summary.status, dead_letters: summary.dead_lettered, error: summary.error.clone() };
    state.alerts.observe(name, &handle.tenant, &fact);
    if matches!(summary.status, RunStatus::Ok | RunStatus::Partial) {
        super::warn::dead_letter_spike(handle, summary.dead_lettered);
    }
    *handle.running.lock().expect("running lock") = None;
    Outcome { status, count, error: summary.error.clone(), failed }
}

/// The taskCount of a resumed command at its end, counting every worker
/// that ran it: a worker that took the run over counts only what it did
/// itself, so the
/// records the target confirmed since the command started (what `/records`
/// lists) are its successes, and the failures counted before the takeover
/// (`before`, as last published) are added to this worker's.
fn counted(handle: &PipelineHandle, started: Option<Timestamp>, before: TaskCountView, mine: TaskCountView) -> TaskCountView {
    let success = started
        .and_then(|s| handle.state.confirmed_record_ids(&handle.pipeline.name, &crate::time::sortable(s), &crate::time::sortable(Timestamp::now())).ok())
        .map_or(mine.success, |ids| ids.len() as u64);
    let failed = before.failed + mine.failed;
    TaskCountView { success, failed, total: success + failed }
}

/// Failed records a sync command keeps (its taskCount counts them all; the
/// pipeline's dead letters hold every one).
pub(crate) const TASKS_KEPT: u64 = 1000;

/// How far apart scheduled pipelines' first runs start: a host opening a
/// thousand scheduled pipelines starts their runs over ten seconds, not in
/// one instant (the herd's peak, freed at once, left about 100 MB in the
/// allocator's arenas; BENCHMARKS.md, section 9). The period keeps that
/// phase, so later runs stay spread too. One pipeline alone starts at once.
const STAGGER: Duration = Duration::from_millis(10);

/// When the next scheduled pipeline's first run may start: now, or
/// `STAGGER` after the one before it, whichever is later.
fn staggered_start() -> tokio::time::Instant {
    static NEXT: std::sync::Mutex<Option<tokio::time::Instant>> = std::sync::Mutex::new(None);
    let now = tokio::time::Instant::now();
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let at = next.map_or(now, |n| n.max(now));
    *next = Some(at + STAGGER);
    at
}

/// Queues a sync every `every` (the first at once, or staggered behind
/// other pipelines' first runs), unless one is already queued or running.
pub(crate) async fn schedule(state: Arc<Engine>, handle: Arc<PipelineHandle>, every: Duration) {
    let mut stop = state.stop.clone();
    let mut tick = tokio::time::interval_at(staggered_start(), every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut warned, mut behind) = (false, false);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        // The tick just passed: the next one is a period from now.
        *handle.next_run.lock().expect("next run lock") = jiff::SignedDuration::try_from(every).ok().and_then(|p| Timestamp::now().checked_add(p).ok());
        let (busy, id) = match &state.cluster {
            // Every worker schedules; the slot's id makes one command of them.
            Some(_) => (super::shared::busy(&handle), super::shared::schedule_id(&handle.pipeline.name, every)),
            None => (handle.running.lock().expect("running lock").is_some() || !handle.queue.lock().expect("queue lock").is_empty(), Uuid::new_v4()),
        };
        behind = super::warn::behind(&handle, every, behind);
        // A token that needs the merchant pauses the schedule (the run would fail at once).
        let token = state.token_of(&handle);
        let paused = token.is_some_and(|t| {
            t.seconds_left(); // keeps the expiry gauge current between runs
            t.state == crate::credentials::TokenState::NeedsReauthorization
        });
        if paused {
            if !warned {
                tracing::warn!(pipeline = %handle.pipeline.name, "schedule paused: the app's token needs re-authorization (`ferry jushuitan token set`)");
                warned = true;
            }
            continue;
        }
        warned = false;
        if busy {
            continue;
        }
        let input = SyncInput { pipeline: handle.pipeline.name.clone(), since: None, until: None };
        if let Err(e) = state.create_sync(&handle.tenant, id, input, "schedule") {
            tracing::warn!(pipeline = %handle.pipeline.name, "scheduled sync not queued: {e}");
        }
    }
}

/// The scheme's `omissionRemedy`: every `remedy.every` (the first after
/// one interval), queues a backfill of its range (origin
/// `omissionRemedy`), which reads the range again through idCheck and
/// delivers what the incremental runs missed. One command per slot, on
/// every worker of a cluster alike.
pub(crate) async fn remedy(state: Arc<Engine>, handle: Arc<PipelineHandle>, remedy: crate::source::jushuitan::remedy::Remedy) {
    let mut stop = state.stop.clone();
    let every = remedy.every;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let name = &handle.pipeline.name;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let checkpoint = match handle.state.checkpoint(name) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(pipeline = %name, "omission remedy skipped: {e}");
                continue;
            }
        };
        let Some((since, until)) = remedy.range(checkpoint, &handle.pipeline.source.request.zone) else { continue };
        let slot = Timestamp::now().as_second().max(0) as u64 / every.as_secs().max(1);
        let id = Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("ferry:remedy:{name}:{}:{slot}", every.as_secs()).as_bytes());
        let input = SyncInput { pipeline: name.clone(), since: Some(crate::time::rfc3339(since)), until: Some(crate::time::rfc3339(until)) };
        match state.create_sync(&handle.tenant, id, input, "omissionRemedy") {
            Ok(_) => tracing::info!(pipeline = %name, since = %crate::time::rfc3339(since), until = %crate::time::rfc3339(until), "omission remedy queued"),
            Err(e) => tracing::warn!(pipeline = %name, "omission remedy not queued: {e}"),
        }
    }
}

/// Loads the stored history at start: queued commands queue again in order;
/// ones that were running when the server stopped are marked interrupted.
pub(crate) fn restore(state: &Engine) {
    if state.cluster.is_some() {
        return; // the shared queue is the truth; a dead worker's runs are taken over by lease
    }
    for h in state.pipelines.values() {
        let filter = crate::state::CommandFilter { kind: "sync".into(), pipeline: Some(h.pipeline.name.clone()), ..Default::default() };
        let mut records = h.state.commands(&filter).unwrap_or_default();
        records.reverse();
        let mut syncs = state.syncs.lock().expect("syncs lock");
        for r in records {
            let Ok(mut cmd) = serde_json::from_value::<SyncCommand>(r.record) else { continue };
            match cmd.status {
                SyncStatus::Queued => h.queue.lock().expect("queue lock").push_back(cmd.id),
                SyncStatus::Running => {
                    cmd.become_(SyncStatus::Interrupted);
                    cmd.error = Some("the server stopped during the run; the next run resumes from the outbox and checkpoint".into());
                    cmd.completed = Some(Timestamp::now());
                    cmd.persist(state);
                }
                _ => {}
            }
            syncs.insert(command_key(&cmd.tenant, cmd.id), cmd);
        }
        drop(syncs);
        h.state.rest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_runs_opened_together_start_a_stagger_apart() {
        let starts: Vec<_> = (0..5).map(|_| staggered_start()).collect();
        for pair in starts.windows(2) {
            assert!(pair[1] >= pair[0] + STAGGER, "{:?} then {:?}", pair[0], pair[1]);
        }
        assert!(starts[4] <= tokio::time::Instant::now() + STAGGER * 64, "spread, not pushed far out");
    }
}
