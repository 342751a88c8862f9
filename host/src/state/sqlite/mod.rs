//! The SQLite state store (rusqlite, bundled): WAL journal, one connection
//! behind a mutex (closed while idle: `idle`), schema migrations by
//! `PRAGMA user_version`. What a
//! restarted process reads back (window progress, the next rate slot, runs
//! whose process died) is in `restart`; the schema's versions in `schema`.

use super::types::{CommandFilter, CommandRecord, DeadLetter, OutboxEntry, Page, RecordKey, RunRecord, SwapRecord, TaskCount, WindowProgress};
use super::{ControlStore, DataStore, StateError};

mod idle;
mod restart;
mod schema;
mod tokens;
use crate::budget::BudgetMemory;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use schema::MIGRATIONS;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// State in one SQLite file.
pub struct SqliteStore {
    path: String,
    conn: Arc<idle::Conn>,
}

fn now() -> String {
    crate::time::sortable(Timestamp::now())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let name = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| StateError { path: name.clone(), message: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(&format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let mut conn = idle::connect(path).map_err(|e| err(&e))?;
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| err(&e))?;
        if version > MIGRATIONS.len() {
            return Err(err(&format!("schema version {version} is newer than this ferry knows ({}); upgrade ferry", MIGRATIONS.len())));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction().map_err(|e| err(&e))?;
            tx.execute_batch(sql).map_err(|e| err(&format!("migration {}: {e}", i + 1)))?;
            tx.pragma_update(None, "user_version", i + 1).map_err(|e| err(&e))?;
            tx.commit().map_err(|e| err(&e))?;
        }
        release(&conn).map_err(|e| err(&e))?;
        Ok(SqliteStore { path: name, conn: idle::Conn::new(path, conn) })
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError { path: self.path.clone(), message: e.to_string() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StateError> {
        super::blocking(|| self.conn.with(f).map_err(|e| self.err(e)))
    }
}

/// Gives back the connection's cached pages. A served pipeline idles
/// between runs, and each connection would keep up to 2 MB of them (the
/// plugin version it stored, 0.6 MB, was most of an idle pipeline's
/// memory: 200 pipelines held 170 MB); the OS keeps the file cached anyway.
fn release(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA shrink_memory")
}

fn insert_dead(tx: &rusqlite::Transaction<'_>, pipeline: &str, dead: &[DeadLetter]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO dead_letters (pipeline, record_id, version, reason, plugin, raw, command, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for d in dead {
        stmt.execute(params![pipeline, d.key.id, d.key.version, d.reason, d.plugin, d.raw, d.command.map(|c| c.to_string()), now()])?;
    }
    Ok(())
}

fn mark_handled<'a>(tx: &rusqlite::Transaction<'_>, pipeline: &str, keys: impl Iterator<Item = &'a RecordKey>) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO id_check (pipeline, record_id, version, at) VALUES (?1, ?2, ?3, ?4)")?;
    let at = now();
    for k in keys {
        stmt.execute(params![pipeline, k.id, k.version, at])?;
    }
    Ok(())
}

fn command_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommandRecord> {
    Ok(CommandRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        pipeline: r.get(2)?,
        tenant: r.get(3)?,
        created: r.get(4)?,
        status: r.get(5)?,
        record: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(serde_json::Value::Null),
    })
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl DataStore for SqliteStore {
    fn checkpoint(&self, pipeline: &str) -> Result<Option<Timestamp>, StateError> {
        let at: Option<String> = self.with(|c| c.query_row("SELECT at FROM checkpoints WHERE pipeline = ?1", [pipeline], |r| r.get(0)).optional())?;
        at.map(|s| s.parse().map_err(|e| self.err(format!("bad checkpoint `{s}`: {e}")))).transpose()
    }

    fn set_checkpoint(&self, pipeline: &str, at: Timestamp) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO checkpoints (pipeline, at, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline) DO UPDATE SET at = excluded.at, updated = excluded.updated",
                params![pipeline, at.to_string(), now()],
            )?;
            tx.execute("DELETE FROM window_progress WHERE pipeline = ?1 AND end_at <= ?2", params![pipeline, crate::time::sortable(at)])?;
            tx.commit()
        })
    }

    fn window_progress(&self, pipeline: &str) -> Result<Vec<WindowProgress>, StateError> {
        self.progress_rows(pipeline)
    }

    fn set_window_progress(&self, pipeline: &str, progress: Option<&WindowProgress>) -> Result<(), StateError> {
        self.write_progress(pipeline, progress)
    }

    fn handled(&self, pipeline: &str, keys: &[RecordKey]) -> Result<Vec<bool>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM id_check WHERE pipeline = ?1 AND record_id = ?2 AND version = ?3")?;
            keys.iter().map(|k| stmt.exists(params![pipeline, k.id, k.version])).collect()
        })
    }

    fn stage(&self, pipeline: &str, entry: Option<&OutboxEntry>, dead: &[DeadLetter], skipped: &[RecordKey]) -> Result<(), StateError> {
        self.with(|c| {
            // An entry is sent right after this returns: its commit reaches
            // the disk first (WAL synced), so a power loss cannot drop an
            // entry the target has seen. Other commits may lose a suffix
            // on power loss, never a middle (WAL order), which a re-read
            // with deterministic UUIDs repairs.
            let durable = entry.is_some();
            if durable {
                c.pragma_update(None, "synchronous", "FULL")?;
            }
            let staged = (|| {
                let tx = c.transaction()?;
                if let Some(e) = entry {
                    let text = serde_json::to_string(e).map_err(json_err)?;
                    tx.execute(
                        "INSERT OR IGNORE INTO outbox (command, pipeline, seq, status, entry, plugin, created)
                         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), 'pending', ?3, ?4, ?5)",
                        params![e.command.to_string(), pipeline, text, e.plugin, now()],
                    )?;
                }
                insert_dead(&tx, pipeline, dead)?;
                mark_handled(&tx, pipeline, dead.iter().map(|d| &d.key).chain(skipped))?;
                tx.commit()
            })();
            if durable {
                c.pragma_update(None, "synchronous", "NORMAL")?;
            }
            staged
        })
    }

    fn pending(&self, pipeline: &str) -> Result<Vec<OutboxEntry>, StateError> {
        let texts: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare("SELECT entry FROM outbox WHERE pipeline = ?1 AND status = 'pending' ORDER BY seq")?;
            stmt.query_map([pipeline], |r| r.get(0))?.collect()
        })?;
        texts.iter().map(|t| serde_json::from_str(t).map_err(|e| self.err(format!("corrupt outbox entry: {e}")))).collect()
    }

    fn confirm(&self, pipeline: &str, entry: &OutboxEntry, count: TaskCount, dead: &[DeadLetter]) -> Result<(), StateError> {
        let kept = super::types::kept_parts(entry);
        self.with(|c| {
            let tx = c.transaction()?;
            let confirmed = tx.execute(
                "UPDATE outbox SET status = 'confirmed', confirmed = ?2, task_count = ?3, entry = ?4 WHERE command = ?1 AND status = 'pending'",
                params![entry.command.to_string(), now(), serde_json::to_string(&count).map_err(json_err)?, kept],
            )?;
            if confirmed == 0 {
                return Ok(());
            }
            mark_handled(&tx, pipeline, entry.sources.iter().map(|s| &s.key))?;
            insert_dead(&tx, pipeline, dead)?;
            tx.commit()
        })
    }

    fn dead_letters_page(&self, pipeline: &str, page: Page) -> Result<Vec<DeadLetter>, StateError> {
        let (limit, offset) = page.sql();
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, record_id, version, reason, plugin, raw, command, created FROM dead_letters WHERE pipeline = ?1 ORDER BY id LIMIT ?2 OFFSET ?3",
            )?;
            stmt.query_map(params![pipeline, limit, offset], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    key: RecordKey { id: r.get(1)?, version: r.get(2)? },
                    reason: r.get(3)?,
                    plugin: r.get(4)?,
                    raw: r.get(5)?,
                    command: r.get::<_, Option<String>>(6)?.and_then(|s| Uuid::parse_str(&s).ok()),
                    created: r.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn remove_dead_letters(&self, pipeline: &str, ids: &[i64]) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for id in ids {
                tx.execute("DELETE FROM dead_letters WHERE pipeline = ?1 AND id = ?2", params![pipeline, id])?;
            }
            tx.commit()
        })
    }

    fn dead_letter_count(&self, pipeline: &str) -> Result<u64, StateError> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM dead_letters WHERE pipeline = ?1", [pipeline], |r| r.get(0)))
    }

    fn dead_letter_reasons(&self, pipeline: &str, limit: u64) -> Result<Vec<(String, u64)>, StateError> {
        self.with(|c| {
            let sql = "SELECT reason, COUNT(*) FROM dead_letters WHERE pipeline = ?1 GROUP BY reason ORDER BY COUNT(*) DESC, reason LIMIT ?2";
            c.prepare(sql)?.query_map(params![pipeline, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    fn handled_count(&self, pipeline: &str) -> Result<u64, StateError> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM id_check WHERE pipeline = ?1", [pipeline], |r| r.get(0)))
    }

    fn handled_between(&self, pipeline: &str, from: &str, to: &str) -> Result<u64, StateError> {
        // `~` sorts after the space and `=` of a row key, so `to` and anything it begins include.
        let to = format!("{to}~");
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(DISTINCT record_id) FROM id_check WHERE pipeline = ?1 AND version >= ?2 AND version <= ?3",
                params![pipeline, from, to],
                |r| r.get(0),
            )
        })
    }

    fn forget(&self, pipeline: &str, keys: &[RecordKey]) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached("DELETE FROM id_check WHERE pipeline = ?1 AND record_id = ?2 AND version = ?3")?;
                for k in keys {
                    stmt.execute(params![pipeline, k.id, k.version])?;
                }
            }
            tx.commit()
        })
    }

    fn start_run(&self, pipeline: &str, kind: &str) -> Result<i64, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (pipeline, kind, started, status, owner) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![pipeline, kind, now(), super::owner::this_process()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn rest(&self) {
        self.conn.close();
    }

    fn budget_memory(&self) -> Option<Arc<dyn BudgetMemory>> {
        Some(Arc::new(restart::SlotMemory(self.conn.clone())))
    }

    fn sweep_dead_runs(&self) -> Result<u64, StateError> {
        self.sweep(super::owner::is_dead)
    }

    fn finish_run(&self, run: i64, status: &str, summary: &serde_json::Value) -> Result<(), StateError> {
        self.with(|c| {
            c.execute("UPDATE runs SET finished = ?2, status = ?3, summary = ?4 WHERE id = ?1", params![run, now(), status, summary.to_string()])?;
            release(c)
        })
    }

    fn runs(&self, pipeline: &str, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id, kind, started, finished, status, summary FROM runs WHERE pipeline = ?1 ORDER BY id DESC LIMIT ?2")?;
            stmt.query_map(params![pipeline, limit as i64], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    status: r.get(4)?,
                    summary: r.get::<_, Option<String>>(5)?.and_then(|s| serde_json::from_str(&s).ok()),
                })
            })?
            .collect()
        })
    }

    fn confirmed_record_ids(&self, pipeline: &str, from: &str, to: &str) -> Result<Vec<String>, StateError> {
        let entries: Vec<String> = self.with(|conn| {
            let mut stmt =
                conn.prepare("SELECT entry FROM outbox WHERE pipeline = ?1 AND status = 'confirmed' AND confirmed >= ?2 AND confirmed <= ?3 ORDER BY seq")?;
            stmt.query_map(params![pipeline, from, to], |r| r.get(0))?.collect()
        })?;
        crate::state::types::kept_record_ids(&entries).map_err(|e| self.err(e))
    }
}

impl ControlStore for SqliteStore {
    fn put_command(&self, c: &CommandRecord) -> Result<(), StateError> {
        let record = serde_json::to_string(&c.record).map_err(|e| self.err(e))?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO commands (id, kind, pipeline, tenant, created, status, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, record = excluded.record",
                params![c.id, c.kind, c.pipeline, c.tenant, c.created, c.status, record],
            )
            .map(|_| ())
        })
    }

    fn command(&self, tenant: &str, id: &str) -> Result<Option<CommandRecord>, StateError> {
        self.with(|conn| {
            conn.query_row("SELECT id, kind, pipeline, tenant, created, status, record FROM commands WHERE tenant = ?1 AND id = ?2", [tenant, id], command_row)
                .optional()
        })
    }

    fn insert_command(&self, c: &CommandRecord) -> Result<Option<CommandRecord>, StateError> {
        let record = serde_json::to_string(&c.record).map_err(|e| self.err(e))?;
        self.with(|conn| {
            let tx = conn.transaction()?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO commands (id, kind, pipeline, tenant, created, status, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.id, c.kind, c.pipeline, c.tenant, c.created, c.status, record],
            )?;
            let existing = if inserted == 0 {
                Some(tx.query_row(
                    "SELECT id, kind, pipeline, tenant, created, status, record FROM commands WHERE tenant = ?1 AND id = ?2",
                    [&c.tenant, &c.id],
                    command_row,
                )?)
            } else {
                None
            };
            tx.commit()?;
            Ok(existing)
        })
    }

    fn update_command_if(&self, c: &CommandRecord, from: &[&str]) -> Result<bool, StateError> {
        let record = serde_json::to_string(&c.record).map_err(|e| self.err(e))?;
        let from = serde_json::to_string(from).map_err(|e| self.err(e))?;
        self.with(|conn| {
            conn.execute(
                "UPDATE commands SET status = ?2, record = ?3 WHERE id = ?1 AND tenant = ?5 AND status IN (SELECT value FROM json_each(?4))",
                params![c.id, c.status, record, from, c.tenant],
            )
            .map(|n| n == 1)
        })
    }

    fn commands(&self, f: &CommandFilter) -> Result<Vec<CommandRecord>, StateError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, kind, pipeline, tenant, created, status, record FROM commands
                 WHERE kind = ?1 AND (?2 IS NULL OR pipeline = ?2) AND (?3 IS NULL OR tenant = ?3) AND (?4 IS NULL OR status = ?4)
                   AND (?5 IS NULL OR created >= ?5) AND (?6 IS NULL OR created < ?6)
                 ORDER BY created DESC, id DESC",
            )?;
            let rows = stmt.query_map(params![f.kind, f.pipeline, f.tenant, f.status, f.since, f.until], command_row)?;
            rows.collect()
        })
    }

    fn prune_commands(&self, before: &str) -> Result<u64, StateError> {
        self.with(|conn| conn.execute("DELETE FROM commands WHERE created < ?1", [before]).map(|n| n as u64))
    }

    fn put_plugin_version(&self, digest: &str, label: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.with(|conn| {
            conn.execute("INSERT OR IGNORE INTO plugin_versions (digest, label, bytes, added) VALUES (?1, ?2, ?3, ?4)", params![digest, label, bytes, now()])?;
            release(conn)
        })
    }

    fn plugin_version(&self, digest: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.with(|conn| conn.query_row("SELECT bytes FROM plugin_versions WHERE digest = ?1", [digest], |r| r.get(0)).optional())
    }

    fn record_swap(&self, pipeline: &str, s: &SwapRecord) -> Result<(), StateError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO plugin_swaps (pipeline, at, digest, label, origin, previous, accepted, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![pipeline, s.at, s.digest, s.label, s.origin, s.previous, s.accepted, s.reason],
            )
            .map(|_| ())
        })
    }

    fn swaps_page(&self, pipeline: &str, page: Page) -> Result<Vec<SwapRecord>, StateError> {
        let (limit, offset) = page.sql();
        self.with(|conn| {
            let mut stmt = conn
                .prepare("SELECT at, digest, label, origin, previous, accepted, reason FROM plugin_swaps WHERE pipeline = ?1 ORDER BY id LIMIT ?2 OFFSET ?3")?;
            stmt.query_map(params![pipeline, limit, offset], |r| {
                Ok(SwapRecord {
                    at: r.get(0)?,
                    digest: r.get(1)?,
                    label: r.get(2)?,
                    origin: r.get(3)?,
                    previous: r.get(4)?,
                    accepted: r.get(5)?,
                    reason: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    fn swap_count(&self, pipeline: &str) -> Result<u64, StateError> {
        self.with(|conn| conn.query_row("SELECT COUNT(*) FROM plugin_swaps WHERE pipeline = ?1", [pipeline], |r| r.get::<_, i64>(0)).map(|n| n as u64))
    }
}
