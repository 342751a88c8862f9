//! Scale-out: several `ferry serve` workers on one PostgreSQL database.
//!
//! - **Leases.** A worker runs a pipeline's sync commands only while it
//!   holds the pipeline's lease: a row in `leases`, claimed with
//!   `FOR UPDATE SKIP LOCKED` (two workers never wait on each other) and
//!   renewed while the run goes on. A worker that dies stops renewing; once
//!   the lease has expired, another worker claims the pipeline and resumes
//!   its running command from the outbox and the checkpoint.
//! - **Commands** live in the shared `commands` table, so a command accepted
//!   by any worker is seen by all and claimed by one.
//! - **Heartbeats** in `workers` show who is alive (`GET /cluster`).
//! - **Rate budgets** per app_key: see [`crate::state::PgStore`]'s
//!   [`SharedBudget`](crate::budget::SharedBudget).
//!
//! This module decides when to claim, renew and give back; the SQL for
//! leases, heartbeats and the cluster view is in the store
//! (`state/pg/lease.rs`).

mod hold;

pub use hold::RunLease;

pub use crate::state::{LeaseView, WorkerView};

use crate::state::{CommandRecord, PgStore, StateError};
use std::sync::Arc;
use std::time::Duration;

/// This worker's membership in a cluster.
pub struct Cluster {
    db: Arc<PgStore>,
    /// This worker's id.
    pub worker: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Cluster {
    /// Joins the cluster of `db` as `worker`.
    pub fn join(db: Arc<PgStore>, worker: String, lease: Duration) -> Arc<Cluster> {
        Arc::new(Cluster { db, worker, lease })
    }

    /// The shared store.
    pub fn db(&self) -> &Arc<PgStore> {
        &self.db
    }

    /// Says this worker is alive (and where its API listens).
    pub fn heartbeat(&self, address: &str) -> Result<(), StateError> {
        self.db.heartbeat(&self.worker, address)
    }

    /// Claims `pipeline` if no live lease holds it and it has a sync command
    /// to run: one left `running` by a worker whose lease ran out (to
    /// resume) first, else the oldest `queued`. Returns that command; from
    /// then on this worker's writes to the pipeline are fenced by the lease.
    pub fn claim(&self, pipeline: &str) -> Result<Option<CommandRecord>, StateError> {
        let claimed = self.db.claim_lease(pipeline, &self.worker, secs(self.lease))?;
        if claimed.is_some() {
            self.db.fence(pipeline, &self.worker);
        }
        Ok(claimed)
    }

    /// Which of `pipelines` have a sync command queued or running.
    pub fn runnable(&self, pipelines: &[String]) -> Result<Vec<String>, StateError> {
        self.db.runnable(pipelines)
    }

    /// Extends this worker's lease on `pipeline`; `false` when it no longer
    /// holds it (another worker took it over).
    pub fn renew(&self, pipeline: &str) -> Result<bool, StateError> {
        self.db.renew_lease(pipeline, &self.worker, secs(self.lease))
    }

    /// Gives `pipeline` back (after its run).
    pub fn release(&self, pipeline: &str) -> Result<(), StateError> {
        self.db.unfence(pipeline);
        self.db.release_lease(pipeline, &self.worker)
    }

    /// The digest last put live for each pipeline, by any worker.
    pub fn live_digests(&self) -> Result<Vec<(String, String)>, StateError> {
        self.db.live_digests()
    }

    /// Whether this worker speaks for the cluster in what every worker
    /// would otherwise each say (alerts on a timer): the live worker with
    /// the smallest id.
    pub fn leads(&self) -> bool {
        match self.view() {
            Ok((workers, _)) => workers.iter().filter(|w| w.alive).map(|w| w.id.as_str()).min() == Some(self.worker.as_str()),
            Err(_) => false,
        }
    }

    /// Every worker that ever joined, and the leases held now.
    pub fn view(&self) -> Result<(Vec<WorkerView>, Vec<LeaseView>), StateError> {
        self.db.cluster_view(secs(self.lease * 2))
    }
}

/// A worker id when none is given: the host name and the process id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).unwrap_or_else(|| "ferry".into());
    format!("{host}-{}", std::process::id())
}
