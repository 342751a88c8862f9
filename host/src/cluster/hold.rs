//! A lease held by one `ferry run` of a pipeline whose state is in
//! PostgreSQL. Refusing a run only while a worker happens to hold the lease
//! leaves a gap: the run starts between two of the cluster's syncs, the
//! cluster starts the next one beside it, and both send the same windows.
//! So the run takes the lease itself, like a worker, renews it while it
//! goes on, and gives it back at the end; a worker's claim meanwhile finds
//! it held and waits. A run that dies stops renewing, and the lease runs out
//! as a worker's would.

use super::Cluster;
use crate::state::{PgStore, StateError};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How long a run's lease lasts without renewal.
const RUN_LEASE: Duration = Duration::from_secs(15);

/// The held lease; dropping it stops the renewal and gives the lease back.
pub struct RunLease {
    cluster: Arc<Cluster>,
    pipeline: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl RunLease {
    /// Takes `pipeline`'s lease in `db` for this process (`holder` says what
    /// it is); refuses, naming the holder, if a live lease is someone else's.
    pub fn take(db: Arc<PgStore>, pipeline: &str, holder: &str) -> Result<RunLease, String> {
        let me = format!("{holder} on {}", super::default_worker_id());
        let cluster = Cluster::join(db, me, RUN_LEASE);
        match cluster.hold(pipeline).map_err(|e| e.to_string())? {
            Ok(()) => {}
            Err(other) => {
                return Err(format!(
                    "pipeline `{pipeline}` is leased by {other}; start its syncs through the cluster's API (PUT /sync-commands/{{uuid}}), or wait for that run to end, so it is not synced twice at once"
                ));
            }
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (c, p) = (cluster.clone(), pipeline.to_string());
        let renewer = std::thread::Builder::new()
            .name("ferry-run-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RUN_LEASE / 3) {
                    match c.renew(&p) {
                        Ok(true) => {}
                        Ok(false) => tracing::error!(pipeline = %p, "this run's lease was taken over; its writes are no longer guarded"),
                        Err(e) => tracing::warn!(pipeline = %p, "cannot renew this run's lease: {e}"),
                    }
                }
            })
            .map_err(|e| format!("cannot start the lease renewal: {e}"))?;
        Ok(RunLease { cluster, pipeline: pipeline.to_string(), stop: Some(stop), renewer: Some(renewer) })
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(r) = self.renewer.take() {
            let _ = r.join();
        }
        if let Err(e) = self.cluster.release(&self.pipeline) {
            tracing::warn!(pipeline = %self.pipeline, "cannot give the lease back (it runs out by itself): {e}");
        }
    }
}

impl Cluster {
    /// Takes `pipeline`'s lease when no live lease of another holder has
    /// it, whether or not a command waits; `Err(holder)` names who has it.
    pub fn hold(&self, pipeline: &str) -> Result<Result<(), String>, StateError> {
        self.db.hold_lease(pipeline, &self.worker, super::secs(self.lease))
    }
}
