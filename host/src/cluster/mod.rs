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

mod hold;

pub use hold::RunLease;

use crate::state::{CommandRecord, PgStore, StateError};
use serde::Serialize;
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

/// A worker as the cluster sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// Its id.
    pub id: String,
    /// Where its API listens.
    pub address: String,
    /// When it joined (RFC 3339).
    pub started: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat: String,
    /// Whether the heartbeat is recent (within two lease times).
    pub alive: bool,
}

/// A held lease.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// The pipeline.
    pub pipeline: String,
    /// The worker holding it.
    pub worker: String,
    /// The sync command it runs.
    pub command: Option<String>,
    /// When it was claimed (RFC 3339).
    pub acquired: String,
    /// When it runs out unless renewed (RFC 3339).
    pub expires: String,
    /// Whether it has run out (its worker stopped renewing).
    pub expired: bool,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const TIME: &str = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

fn rfc3339(column: &str) -> String {
    TIME.replace("%s", column)
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
        let (me, address) = (self.worker.clone(), address.to_string());
        self.db.call(move |c| {
            c.execute(
                "INSERT INTO workers (id, address, started, heartbeat) VALUES ($1, $2, clock_timestamp(), clock_timestamp())
                 ON CONFLICT (id) DO UPDATE SET address = excluded.address, heartbeat = excluded.heartbeat",
                &[&me, &address],
            )
            .map(|_| ())
        })
    }

    /// Claims `pipeline` if no live lease holds it and it has a sync command
    /// to run: one left `running` by a worker whose lease ran out (to
    /// resume) first, else the oldest `queued`. Returns that command.
    pub fn claim(&self, pipeline: &str) -> Result<Option<CommandRecord>, StateError> {
        let (me, p, ttl) = (self.worker.clone(), pipeline.to_string(), secs(self.lease));
        let claimed = self.db.call(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("INSERT INTO leases (pipeline) VALUES ($1) ON CONFLICT DO NOTHING", &[&p])?;
            let Some(lease) =
                tx.query_opt("SELECT worker, COALESCE(expires > clock_timestamp(), false) FROM leases WHERE pipeline = $1 FOR UPDATE SKIP LOCKED", &[&p])?
            else {
                return Ok(None); // another worker is claiming it right now
            };
            let (holder, live): (Option<String>, bool) = (lease.get(0), lease.get(1));
            if live && holder.as_deref() != Some(me.as_str()) {
                return Ok(None);
            }
            let row = tx.query_opt(
                "SELECT id, kind, pipeline, tenant, created, status, record FROM commands
                 WHERE kind = 'sync' AND pipeline = $1 AND status IN ('running', 'queued')
                 ORDER BY (status = 'running') DESC, created, id LIMIT 1",
                &[&p],
            )?;
            let Some(row) = row else { return Ok(None) };
            let command = CommandRecord {
                id: row.get(0),
                kind: row.get(1),
                pipeline: row.get(2),
                tenant: row.get(3),
                created: row.get(4),
                status: row.get(5),
                record: serde_json::from_str(row.get::<_, &str>(6)).unwrap_or_default(),
            };
            tx.execute(
                "UPDATE leases SET worker = $2, command = $3, acquired = clock_timestamp(), expires = clock_timestamp() + make_interval(secs => $4)
                 WHERE pipeline = $1",
                &[&p, &me, &command.id, &ttl],
            )?;
            tx.commit()?;
            Ok(Some(command))
        })?;
        if claimed.is_some() {
            self.db.fence(pipeline, &self.worker);
        }
        Ok(claimed)
    }

    /// Which of `pipelines` have a sync command queued or running.
    pub fn runnable(&self, pipelines: &[String]) -> Result<Vec<String>, StateError> {
        let names = pipelines.to_vec();
        self.db.call(move |c| {
            let rows =
                c.query("SELECT DISTINCT pipeline FROM commands WHERE kind = 'sync' AND status IN ('queued', 'running') AND pipeline = ANY($1)", &[&names])?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Extends this worker's lease on `pipeline`; `false` when it no longer
    /// holds it (another worker took it over).
    pub fn renew(&self, pipeline: &str) -> Result<bool, StateError> {
        let (me, p, ttl) = (self.worker.clone(), pipeline.to_string(), secs(self.lease));
        self.db.call(move |c| {
            Ok(c.execute("UPDATE leases SET expires = clock_timestamp() + make_interval(secs => $3) WHERE pipeline = $1 AND worker = $2", &[&p, &me, &ttl])?
                == 1)
        })
    }

    /// Gives `pipeline` back (after its run).
    pub fn release(&self, pipeline: &str) -> Result<(), StateError> {
        self.db.unfence(pipeline);
        let (me, p) = (self.worker.clone(), pipeline.to_string());
        self.db.call(move |c| {
            c.execute("UPDATE leases SET worker = NULL, command = NULL, expires = NULL WHERE pipeline = $1 AND worker = $2", &[&p, &me]).map(|_| ())
        })
    }

    /// The digest last put live for each pipeline, by any worker.
    pub fn live_digests(&self) -> Result<Vec<(String, String)>, StateError> {
        self.db.call(|c| {
            let rows = c.query("SELECT DISTINCT ON (pipeline) pipeline, digest FROM plugin_swaps WHERE accepted ORDER BY pipeline, id DESC", &[])?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Every worker that ever joined, and the leases held now.
    pub fn view(&self) -> Result<(Vec<WorkerView>, Vec<LeaseView>), StateError> {
        let alive = secs(self.lease * 2);
        self.db.call(move |c| {
            let workers = c
                .query(
                    &format!(
                        "SELECT id, address, {}, {}, heartbeat > clock_timestamp() - make_interval(secs => $1) FROM workers ORDER BY id",
                        rfc3339("started"),
                        rfc3339("heartbeat")
                    ),
                    &[&alive],
                )?
                .iter()
                .map(|r| WorkerView { id: r.get(0), address: r.get(1), started: r.get(2), heartbeat: r.get(3), alive: r.get(4) })
                .collect();
            let leases = c
                .query(
                    &format!(
                        "SELECT pipeline, worker, command, {}, {}, expires <= clock_timestamp() FROM leases WHERE worker IS NOT NULL ORDER BY pipeline",
                        rfc3339("acquired"),
                        rfc3339("expires")
                    ),
                    &[],
                )?
                .iter()
                .map(|r| LeaseView { pipeline: r.get(0), worker: r.get(1), command: r.get(2), acquired: r.get(3), expires: r.get(4), expired: r.get(5) })
                .collect();
            Ok((workers, leases))
        })
    }
}

/// A worker id when none is given: the host name and the process id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).unwrap_or_else(|| "ferry".into());
    format!("{host}-{}", std::process::id())
}
