//! [`ControlStore`] on PostgreSQL: commands (keyed by tenant and id, their
//! writes fenced by the pipeline's lease like the data plane's), plugin
//! versions and swaps.

use super::PgStore;
use super::store::{json, now};
use crate::state::types::{CommandFilter, CommandRecord, Page, SwapRecord};
use crate::state::{ControlStore, StateError};
use postgres::Row;

const COMMAND_COLUMNS: &str = "id, kind, pipeline, tenant, created, status, record";

fn command_row(r: &Row) -> CommandRecord {
    CommandRecord {
        id: r.get(0),
        kind: r.get(1),
        pipeline: r.get(2),
        tenant: r.get(3),
        created: r.get(4),
        status: r.get(5),
        record: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or(serde_json::Value::Null),
    }
}

impl ControlStore for PgStore {
    fn put_command(&self, cmd: &CommandRecord) -> Result<(), StateError> {
        let (cmd, record) = (cmd.clone(), json(&cmd.record));
        // Fenced like every other write of a worker running the pipeline.
        self.fenced(&cmd.pipeline.clone(), move |tx, _| {
            tx.execute(
                "INSERT INTO commands (id, kind, pipeline, tenant, created, status, record) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, record = excluded.record",
                &[&cmd.id, &cmd.kind, &cmd.pipeline, &cmd.tenant, &cmd.created, &cmd.status, &record],
            )
            .map(|_| ())
        })
    }

    fn command(&self, tenant: &str, id: &str) -> Result<Option<CommandRecord>, StateError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.call(move |c| {
            Ok(c.query_opt(&format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE tenant = $1 AND id = $2"), &[&tenant, &id])?.map(|r| command_row(&r)))
        })
    }

    fn insert_command(&self, cmd: &CommandRecord) -> Result<Option<CommandRecord>, StateError> {
        let (cmd, record) = (cmd.clone(), json(&cmd.record));
        self.call(move |c| {
            let mut tx = c.transaction()?;
            let inserted = tx.execute(
                "INSERT INTO commands (id, kind, pipeline, tenant, created, status, record) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, id) DO NOTHING",
                &[&cmd.id, &cmd.kind, &cmd.pipeline, &cmd.tenant, &cmd.created, &cmd.status, &record],
            )?;
            let existing = if inserted == 0 {
                tx.query_opt(&format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE tenant = $1 AND id = $2"), &[&cmd.tenant, &cmd.id])?
                    .map(|r| command_row(&r))
            } else {
                None
            };
            tx.commit()?;
            Ok(existing)
        })
    }

    fn update_command_if(&self, cmd: &CommandRecord, from: &[&str]) -> Result<bool, StateError> {
        let (id, tenant, status, record) = (cmd.id.clone(), cmd.tenant.clone(), cmd.status.clone(), json(&cmd.record));
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        // A worker that lost the pipeline's lease (stopped, then woken) moves
        // none of its commands: its progress must not overwrite the new holder's.
        let moved = self.in_fence(&cmd.pipeline, move |tx, _| {
            let sql = "UPDATE commands SET status = $2, record = $3 WHERE id = $1 AND tenant = $5 AND status = ANY($4)";
            Ok(tx.execute(sql, &[&id, &status, &record, &from, &tenant])? == 1)
        })?;
        Ok(moved.unwrap_or(false))
    }

    fn commands(&self, f: &CommandFilter) -> Result<Vec<CommandRecord>, StateError> {
        let f = f.clone();
        self.call(move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {COMMAND_COLUMNS} FROM commands
                     WHERE kind = $1 AND ($2::text IS NULL OR pipeline = $2) AND ($3::text IS NULL OR tenant = $3) AND ($4::text IS NULL OR status = $4)
                       AND ($5::text IS NULL OR created >= $5) AND ($6::text IS NULL OR created < $6)
                     ORDER BY created DESC, id DESC"
                ),
                &[&f.kind, &f.pipeline, &f.tenant, &f.status, &f.since, &f.until],
            )?;
            Ok(rows.iter().map(command_row).collect())
        })
    }

    fn prune_commands(&self, before: &str) -> Result<u64, StateError> {
        let before = before.to_string();
        self.call(move |c| c.execute("DELETE FROM commands WHERE created < $1", &[&before]))
    }

    fn put_plugin_version(&self, digest: &str, label: &str, bytes: &[u8]) -> Result<(), StateError> {
        let (d, l, b) = (digest.to_string(), label.to_string(), bytes.to_vec());
        self.call(move |c| {
            c.execute("INSERT INTO plugin_versions (digest, label, bytes, added) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", &[&d, &l, &b, &now()])
                .map(|_| ())
        })
    }

    fn plugin_version(&self, digest: &str) -> Result<Option<Vec<u8>>, StateError> {
        let d = digest.to_string();
        self.call(move |c| Ok(c.query_opt("SELECT bytes FROM plugin_versions WHERE digest = $1", &[&d])?.map(|r| r.get(0))))
    }

    fn record_swap(&self, pipeline: &str, s: &SwapRecord) -> Result<(), StateError> {
        let (p, s) = (pipeline.to_string(), s.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO plugin_swaps (pipeline, at, digest, label, origin, previous, accepted, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&p, &s.at, &s.digest, &s.label, &s.origin, &s.previous, &s.accepted, &s.reason],
            )
            .map(|_| ())
        })
    }

    fn swaps_page(&self, pipeline: &str, page: Page) -> Result<Vec<SwapRecord>, StateError> {
        let p = pipeline.to_string();
        let (limit, offset) = page.sql();
        self.call(move |c| {
            let rows = c.query(
                "SELECT at, digest, label, origin, previous, accepted, reason FROM plugin_swaps WHERE pipeline = $1 ORDER BY id LIMIT $2 OFFSET $3",
                &[&p, &limit, &offset],
            )?;
            Ok(rows
                .iter()
                .map(|r| SwapRecord {
                    at: r.get(0),
                    digest: r.get(1),
                    label: r.get(2),
                    origin: r.get(3),
                    previous: r.get(4),
                    accepted: r.get(5),
                    reason: r.get(6),
                })
                .collect())
        })
    }

    fn swap_count(&self, pipeline: &str) -> Result<u64, StateError> {
        let p = pipeline.to_string();
        self.call(move |c| c.query_one("SELECT COUNT(*) FROM plugin_swaps WHERE pipeline = $1", &[&p]).map(|r| r.get::<_, i64>(0) as u64))
    }
}
