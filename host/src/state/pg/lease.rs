//! The cluster's tables in PostgreSQL: leases (claimed with `FOR UPDATE
//! SKIP LOCKED`, renewed, given back, or held by a `ferry run`), worker
//! heartbeats, the version each pipeline last put live, and what `GET
//! /cluster` shows. `crate::cluster` decides when to call these; the SQL
//! lives here, with the rest of the store.

use super::PgStore;
use crate::state::{CommandRecord, StateError};
use serde::Serialize;

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

const TIME: &str = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

fn rfc3339(column: &str) -> String {
    TIME.replace("%s", column)
}

impl PgStore {
    /// Says `worker` is alive (and where its API listens).
    pub fn heartbeat(&self, worker: &str, address: &str) -> Result<(), StateError> {
        let (me, address) = (worker.to_string(), address.to_string());
        self.call(move |c| {
            c.execute(
                "INSERT INTO workers (id, address, started, heartbeat) VALUES ($1, $2, clock_timestamp(), clock_timestamp())
                 ON CONFLICT (id) DO UPDATE SET address = excluded.address, heartbeat = excluded.heartbeat",
                &[&me, &address],
            )
            .map(|_| ())
        })
    }

    /// Claims `pipeline` for `worker` for `ttl` seconds if no live lease of
    /// another holds it and it has a sync command to run: one left `running`
    /// (to resume) first, else the oldest `queued`. Returns that command.
    pub fn claim_lease(&self, pipeline: &str, worker: &str, ttl: f64) -> Result<Option<CommandRecord>, StateError> {
        let (me, p) = (worker.to_string(), pipeline.to_string());
        self.call(move |c| {
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
        })
    }

    /// Takes `pipeline`'s lease for `holder` for `ttl` seconds when no live
    /// lease of another has it, whether or not a command waits;
    /// `Err(holder)` names who has it.
    pub fn hold_lease(&self, pipeline: &str, holder: &str, ttl: f64) -> Result<Result<(), String>, StateError> {
        let (me, p) = (holder.to_string(), pipeline.to_string());
        self.call(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("INSERT INTO leases (pipeline) VALUES ($1) ON CONFLICT DO NOTHING", &[&p])?;
            let row = tx.query_one("SELECT worker, COALESCE(expires > clock_timestamp(), false) FROM leases WHERE pipeline = $1 FOR UPDATE", &[&p])?;
            let (held_by, live): (Option<String>, bool) = (row.get(0), row.get(1));
            if live && held_by.as_deref() != Some(me.as_str()) {
                return Ok(Err(held_by.unwrap_or_default()));
            }
            tx.execute(
                "UPDATE leases SET worker = $2, command = NULL, acquired = clock_timestamp(), expires = clock_timestamp() + make_interval(secs => $3) WHERE pipeline = $1",
                &[&p, &me, &ttl],
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    /// Which of `pipelines` have a sync command queued or running.
    pub fn runnable(&self, pipelines: &[String]) -> Result<Vec<String>, StateError> {
        let names = pipelines.to_vec();
        self.call(move |c| {
            let rows =
                c.query("SELECT DISTINCT pipeline FROM commands WHERE kind = 'sync' AND status IN ('queued', 'running') AND pipeline = ANY($1)", &[&names])?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Extends `worker`'s lease on `pipeline` by `ttl` seconds; `false`
    /// when it no longer holds it.
    pub fn renew_lease(&self, pipeline: &str, worker: &str, ttl: f64) -> Result<bool, StateError> {
        let (me, p) = (worker.to_string(), pipeline.to_string());
        self.call(move |c| {
            Ok(c.execute("UPDATE leases SET expires = clock_timestamp() + make_interval(secs => $3) WHERE pipeline = $1 AND worker = $2", &[&p, &me, &ttl])?
                == 1)
        })
    }

    /// Gives `worker`'s lease on `pipeline` back.
    pub fn release_lease(&self, pipeline: &str, worker: &str) -> Result<(), StateError> {
        let (me, p) = (worker.to_string(), pipeline.to_string());
        self.call(move |c| {
            c.execute("UPDATE leases SET worker = NULL, command = NULL, expires = NULL WHERE pipeline = $1 AND worker = $2", &[&p, &me]).map(|_| ())
        })
    }

    /// The digest last put live for each pipeline, by any worker.
    pub fn live_digests(&self) -> Result<Vec<(String, String)>, StateError> {
        self.call(|c| {
            let rows = c.query("SELECT DISTINCT ON (pipeline) pipeline, digest FROM plugin_swaps WHERE accepted ORDER BY pipeline, id DESC", &[])?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Every worker that ever joined (alive: a heartbeat within `alive`
    /// seconds), and the leases held now.
    pub fn cluster_view(&self, alive: f64) -> Result<(Vec<WorkerView>, Vec<LeaseView>), StateError> {
        self.call(move |c| {
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
