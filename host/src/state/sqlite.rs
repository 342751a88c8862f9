//! The SQLite state store (rusqlite, bundled): WAL journal, one connection
//! behind a mutex, schema migrations by `PRAGMA user_version`.

use super::types::{DeadLetter, OutboxEntry, RecordKey, RunRecord, TaskCount};
use super::{StateError, StateStore};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;
use uuid::Uuid;

/// Schema versions, applied in order; never edit a released one.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE checkpoints (pipeline TEXT PRIMARY KEY, at TEXT NOT NULL, updated TEXT NOT NULL);
     CREATE TABLE id_check (pipeline TEXT NOT NULL, record_id TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
                            PRIMARY KEY (pipeline, record_id, version)) WITHOUT ROWID;
     CREATE TABLE outbox (command TEXT PRIMARY KEY, pipeline TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
                          entry TEXT NOT NULL, plugin TEXT NOT NULL, created TEXT NOT NULL, confirmed TEXT, task_count TEXT);
     CREATE INDEX outbox_by_status ON outbox (pipeline, status, seq);
     CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, record_id TEXT NOT NULL,
                                version TEXT NOT NULL, reason TEXT NOT NULL, plugin TEXT NOT NULL, raw TEXT NOT NULL,
                                command TEXT, created TEXT NOT NULL);
     CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);
     CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, kind TEXT NOT NULL, started TEXT NOT NULL,
                        finished TEXT, status TEXT NOT NULL, summary TEXT);
     CREATE INDEX runs_by_pipeline ON runs (pipeline, id);",
];

/// State in one SQLite file.
pub struct SqliteStore {
    path: String,
    conn: Mutex<Connection>,
}

fn now() -> String {
    Timestamp::now().to_string()
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let name = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| StateError { path: name.clone(), message: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(&format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| err(&e))?;
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
        Ok(SqliteStore { path: name, conn: Mutex::new(conn) })
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError { path: self.path.clone(), message: e.to_string() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StateError> {
        let mut conn = self.conn.lock().map_err(|_| self.err("connection lock poisoned"))?;
        f(&mut conn).map_err(|e| self.err(e))
    }
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

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

impl StateStore for SqliteStore {
    fn checkpoint(&self, pipeline: &str) -> Result<Option<Timestamp>, StateError> {
        let at: Option<String> =
            self.with(|c| c.query_row("SELECT at FROM checkpoints WHERE pipeline = ?1", [pipeline], |r| r.get(0)).optional())?;
        at.map(|s| s.parse().map_err(|e| self.err(format!("bad checkpoint `{s}`: {e}")))).transpose()
    }

    fn set_checkpoint(&self, pipeline: &str, at: Timestamp) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO checkpoints (pipeline, at, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline) DO UPDATE SET at = excluded.at, updated = excluded.updated",
                params![pipeline, at.to_string(), now()],
            )
            .map(|_| ())
        })
    }

    fn handled(&self, pipeline: &str, keys: &[RecordKey]) -> Result<Vec<bool>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM id_check WHERE pipeline = ?1 AND record_id = ?2 AND version = ?3")?;
            keys.iter().map(|k| stmt.exists(params![pipeline, k.id, k.version])).collect()
        })
    }

    fn stage(&self, pipeline: &str, entry: Option<&OutboxEntry>, dead: &[DeadLetter], skipped: &[RecordKey]) -> Result<(), StateError> {
        self.with(|c| {
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
        })
    }

    fn pending(&self, pipeline: &str) -> Result<Vec<OutboxEntry>, StateError> {
        let texts: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare("SELECT entry FROM outbox WHERE pipeline = ?1 AND status = 'pending' ORDER BY seq")?;
            stmt.query_map([pipeline], |r| r.get(0))?.collect()
        })?;
        texts.iter().map(|t| serde_json::from_str(t).map_err(|e| self.err(format!("corrupt outbox entry: {e}")))).collect()
    }

    fn confirm(&self, pipeline: &str, command: Uuid, count: TaskCount, dead: &[DeadLetter]) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let text: Option<String> = tx
                .query_row("SELECT entry FROM outbox WHERE command = ?1 AND status = 'pending'", [command.to_string()], |r| r.get(0))
                .optional()?;
            let Some(text) = text else { return Ok(()) };
            let entry: OutboxEntry = serde_json::from_str(&text).map_err(json_err)?;
            mark_handled(&tx, pipeline, entry.sources.iter().map(|s| &s.key))?;
            insert_dead(&tx, pipeline, dead)?;
            let kept = serde_json::json!({ "record_ids": entry.record_ids, "window_end": entry.window_end }).to_string();
            tx.execute(
                "UPDATE outbox SET status = 'confirmed', confirmed = ?2, task_count = ?3, entry = ?4 WHERE command = ?1",
                params![command.to_string(), now(), serde_json::to_string(&count).map_err(json_err)?, kept],
            )?;
            tx.commit()
        })
    }

    fn dead_letters(&self, pipeline: &str) -> Result<Vec<DeadLetter>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, record_id, version, reason, plugin, raw, command, created FROM dead_letters WHERE pipeline = ?1 ORDER BY id",
            )?;
            stmt.query_map([pipeline], |r| {
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

    fn handled_count(&self, pipeline: &str) -> Result<u64, StateError> {
        self.with(|c| c.query_row("SELECT COUNT(*) FROM id_check WHERE pipeline = ?1", [pipeline], |r| r.get(0)))
    }

    fn start_run(&self, pipeline: &str, kind: &str) -> Result<i64, StateError> {
        self.with(|c| {
            c.execute("INSERT INTO runs (pipeline, kind, started, status) VALUES (?1, ?2, ?3, 'running')", params![pipeline, kind, now()])?;
            Ok(c.last_insert_rowid())
        })
    }

    fn finish_run(&self, run: i64, status: &str, summary: &serde_json::Value) -> Result<(), StateError> {
        self.with(|c| {
            c.execute("UPDATE runs SET finished = ?2, status = ?3, summary = ?4 WHERE id = ?1", params![run, now(), status, summary.to_string()])
                .map(|_| ())
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
}
