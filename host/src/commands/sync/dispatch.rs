//! The sync commands' dispatcher in a cluster: each worker looks for
//! pipelines with runnable commands in the shared database, claims one by
//! its lease (see [`crate::cluster`]), runs its command while renewing the
//! lease, and gives it back; a run whose lease another worker took over
//! stops writing (the store fences it) and leaves the command to that one.

use super::SyncCommand;
use crate::cluster::Cluster;
use crate::commands::status::SyncStatus;
use crate::commands::{Engine, PipelineHandle};
use crate::state::CommandRecord;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often an idle worker looks for work, beats its heart and checks
/// for a plugin version put live elsewhere.
const POLL: Duration = Duration::from_millis(500);

/// The worker's loop: look for work, claim it, run it; until shutdown,
/// then wait for the runs to stop cleanly and give their leases back.
pub(crate) async fn dispatch(state: Arc<Engine>, cluster: Arc<Cluster>, address: String) {
    let mut stop = state.stop.clone();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut runs = tokio::task::JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut refused: HashSet<(String, String)> = HashSet::new();
    tracing::info!(worker = %cluster.worker, database = %cluster.db().name(), "joined the cluster");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.dispatch.notified() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        while let Some(done) = runs.try_join_next() {
            if let Ok(name) = done {
                running.remove(&name);
            }
        }
        if let Err(e) = cluster.heartbeat(&address) {
            tracing::warn!(worker = %cluster.worker, "heartbeat failed: {e}");
        }
        crate::commands::follow::follow_plugins(&state, &cluster, &mut refused).await;
        let names: Vec<String> = state.pipelines.keys().filter(|n| !running.contains(*n)).cloned().collect();
        let runnable = match cluster.runnable(&names) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(worker = %cluster.worker, "cannot look for work: {e}");
                continue;
            }
        };
        for name in runnable {
            let Some(handle) = state.pipelines.get(&name) else { continue };
            match cluster.claim(&name) {
                Ok(Some(record)) => {
                    running.insert(name.clone());
                    runs.spawn(run_claimed(state.clone(), cluster.clone(), handle.clone(), record));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(pipeline = %name, "cannot claim: {e}"),
            }
        }
    }
    while runs.join_next().await.is_some() {}
}

/// Runs a claimed command under its lease; returns the pipeline's name.
async fn run_claimed(state: Arc<Engine>, cluster: Arc<Cluster>, handle: Arc<PipelineHandle>, record: CommandRecord) -> String {
    let name = handle.pipeline.name.clone();
    let seen = record.status.clone();
    let mut cmd = match SyncCommand::from_record(record) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(pipeline = %name, "{e}");
            let _ = cluster.release(&name);
            return name;
        }
    };
    if seen == SyncStatus::Running.as_str() {
        tracing::warn!(pipeline = %name, command = %cmd.id(), worker = %cluster.worker, "taking over a sync whose worker stopped renewing its lease; resuming from the outbox and checkpoint");
    }
    // Started before (taken over, or queued again by a worker that stopped):
    // other workers delivered part of it.
    let resumed = cmd.started.is_some();
    cmd.start(&cluster.worker);
    let moved = handle.state.update_command_if(&cmd.record(&handle), &[seen.as_str()]);
    if !matches!(moved, Ok(true)) {
        // Cancelled (or changed) between the claim and now.
        let _ = cluster.release(&name);
        return name;
    }
    let id = cmd.id();
    let input = cmd.input().clone();
    let key = super::command_key(&handle.tenant, id);
    state.syncs.lock().expect("syncs lock").insert(key.clone(), cmd);

    let (run_stop, stop_rx) = watch::channel(false);
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = tokio::spawn(keep_lease(cluster.clone(), name.clone(), state.stop.clone(), run_stop, lost.clone()));
    let outcome = super::run::execute(&state, &handle, id, input, stop_rx, resumed).await;
    keeper.abort();
    // A write refused by the fence ends the run before the keeper notices.
    if !lost.load(Ordering::SeqCst) && matches!(cluster.renew(&name), Ok(false)) {
        lost.store(true, Ordering::SeqCst);
    }
    if lost.load(Ordering::SeqCst) {
        cluster.db().unfence(&name);
        // Another worker holds the pipeline now and owns the command.
        tracing::error!(pipeline = %name, command = %id, "lost the lease during the run; the worker that took it over resumes the run");
    } else if outcome.status == SyncStatus::Interrupted && *state.stop.borrow() {
        let worker = cluster.worker.clone();
        super::update(&state, &handle.tenant, id, |c| c.requeue(&worker));
        let _ = cluster.release(&name);
    } else {
        super::run::finish(&state, &handle.tenant, id, outcome);
        let _ = cluster.release(&name);
    }
    state.syncs.lock().expect("syncs lock").remove(&key);
    name
}

/// Renews the lease every third of its time while the run goes on; when
/// the server stops, tells the run to stop (and still renews while its
/// in-flight batches finish); when the lease is lost, stops the run.
async fn keep_lease(cluster: Arc<Cluster>, name: String, mut server_stop: watch::Receiver<bool>, run_stop: watch::Sender<bool>, lost: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(cluster.lease / 3);
    let mut stopping = *server_stop.borrow();
    if stopping {
        let _ = run_stop.send(true);
    }
    loop {
        if stopping {
            tick.tick().await;
        } else {
            tokio::select! {
                _ = tick.tick() => {}
                _ = server_stop.changed() => {
                    stopping = true;
                    let _ = run_stop.send(true);
                    continue;
                }
            }
        }
        match cluster.renew(&name) {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                let _ = run_stop.send(true);
                return;
            }
            Err(e) => tracing::warn!(pipeline = %name, "cannot renew the lease (retrying): {e}"),
        }
    }
}
