//! [`DataStore`] on PostgreSQL: the SQLite store's queries, set-based
//! where a batch of keys goes by (idCheck lookups and inserts use arrays).

use super::PgStore;
use crate::state::types::{DeadLetter, OutboxEntry, Page, RecordKey, RunRecord, TaskCount, WindowProgress};
use crate::state::{DataStore, StateError};
use jiff::Timestamp;
use postgres::GenericClient;
use uuid::Uuid;

pub(super) fn now() -> String {
    crate::time::sortable(Timestamp::now())
}

fn keys_columns<'a>(keys: impl Iterator<Item = &'a RecordKey>) -> (Vec<String>, Vec<String>) {
    keys.map(|k| (k.id.clone(), k.version.clone())).unzip()
}

fn mark_handled(tx: &mut impl GenericClient, pipeline: &str, ids: &[String], versions: &[String]) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO id_check (pipeline, record_id, version, at) SELECT $1, k.id, k.version, $4 FROM unnest($2::text[], $3::text[]) AS k(id, version)
         ON CONFLICT DO NOTHING",
        &[&pipeline, &ids, &versions, &now()],
    )
    .map(|_| ())
}

fn insert_dead(tx: &mut impl GenericClient, pipeline: &str, dead: &[DeadLetter]) -> Result<(), postgres::Error> {
    if dead.is_empty() {
        return Ok(());
    }
    let stmt =
        tx.prepare("INSERT INTO dead_letters (pipeline, record_id, version, reason, plugin, raw, command, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")?;
    for d in dead {
        tx.execute(&stmt, &[&pipeline, &d.key.id, &d.key.version, &d.reason, &d.plugin, &d.raw, &d.command.map(|c| c.to_string()), &now()])?;
    }
    Ok(())
}

/// The lease check of a fenced pipeline, inside the writing transaction
/// (`FOR SHARE` holds off a takeover until the write commits). `Some`
/// names why the write is refused.
fn lease_lost(tx: &mut impl GenericClient, pipeline: &str, worker: Option<&str>) -> Result<Option<String>, postgres::Error> {
    let Some(worker) = worker else { return Ok(None) };
    let holder: Option<String> = tx.query_opt("SELECT worker FROM leases WHERE pipeline = $1 FOR SHARE", &[&pipeline])?.and_then(|r| r.get(0));
    Ok((holder.as_deref() != Some(worker))
        .then(|| format!("worker {worker} no longer holds the lease of pipeline `{pipeline}` (now {}): write refused", holder.as_deref().unwrap_or("nobody"))))
}

impl PgStore {
    /// Runs `write` in one transaction that first checks `pipeline`'s
    /// lease fence, and commits it; `Err(why)` when the fence refuses (then
    /// nothing was written).
    pub(super) fn in_fence<T: Send + 'static>(
        &self,
        pipeline: &str,
        mut write: impl FnMut(&mut postgres::Transaction<'_>, &str) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<Result<T, String>, StateError> {
        let (p, fence) = (pipeline.to_string(), self.fence_of(pipeline));
        self.call(move |c| {
            let mut tx = c.transaction()?;
            if let Some(why) = lease_lost(&mut tx, &p, fence.as_deref())? {
                return Ok(Err(why));
            }
            let done = write(&mut tx, &p)?;
            tx.commit()?;
            Ok(Ok(done))
        })
    }

    /// [`in_fence`](Self::in_fence), where a write the fence refuses is an
    /// error naming why. Every write that moves a pipeline on goes through here.
    pub(super) fn fenced(
        &self,
        pipeline: &str,
        write: impl FnMut(&mut postgres::Transaction<'_>, &str) -> Result<(), postgres::Error> + Send + 'static,
    ) -> Result<(), StateError> {
        self.in_fence(pipeline, write)?.map_err(|m| self.err(m))
    }
}

pub(super) fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl DataStore for PgStore {
    fn checkpoint(&self, pipeline: &str) -> Result<Option<Timestamp>, StateError> {
        let p = pipeline.to_string();
        let at: Option<String> = self.call(move |c| Ok(c.query_opt("SELECT at FROM checkpoints WHERE pipeline = $1", &[&p])?.map(|r| r.get(0))))?;
        at.map(|s| s.parse().map_err(|e| self.err(format!("bad checkpoint `{s}`: {e}")))).transpose()
    }

    fn set_checkpoint(&self, pipeline: &str, at: Timestamp) -> Result<(), StateError> {
        let (sortable_at, at) = (crate::time::sortable(at), at.to_string());
        self.fenced(pipeline, move |tx, p| {
            tx.execute(
                "INSERT INTO checkpoints (pipeline, at, updated) VALUES ($1, $2, $3)
                 ON CONFLICT (pipeline) DO UPDATE SET at = excluded.at, updated = excluded.updated",
                &[&p, &at, &now()],
            )?;
            tx.execute("DELETE FROM window_progress WHERE pipeline = $1 AND end_at <= $2", &[&p, &sortable_at])?;
            Ok(())
        })
    }

    fn window_progress(&self, pipeline: &str) -> Result<Vec<WindowProgress>, StateError> {
        let p = pipeline.to_string();
        let rows: Vec<(String, String, String)> = self.call(move |c| {
            Ok(c.query("SELECT begin_at, end_at, cursor FROM window_progress WHERE pipeline = $1 ORDER BY begin_at", &[&p])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })?;
        rows.iter().map(|(b, e, c)| crate::state::types::progress_from_text(b, e, c).map_err(|m| self.err(m))).collect()
    }

    fn set_window_progress(&self, pipeline: &str, progress: Option<&WindowProgress>) -> Result<(), StateError> {
        let row = progress.map(|w| (crate::time::sortable(w.begin), crate::time::sortable(w.end), w.cursor.to_string()));
        self.fenced(pipeline, move |tx, p| {
            match &row {
                None => tx.execute("DELETE FROM window_progress WHERE pipeline = $1", &[&p])?,
                Some((b, e, cursor)) => tx.execute(
                    "INSERT INTO window_progress (pipeline, begin_at, end_at, cursor) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (pipeline, begin_at, end_at) DO UPDATE SET cursor = excluded.cursor",
                    &[&p, b, e, cursor],
                )?,
            };
            Ok(())
        })
    }

    fn handled(&self, pipeline: &str, keys: &[RecordKey]) -> Result<Vec<bool>, StateError> {
        let (p, n) = (pipeline.to_string(), keys.len());
        let (ids, versions) = keys_columns(keys.iter());
        let found: Vec<i64> = self.call(move |c| {
            let rows = c.query(
                "SELECT k.i FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(id, version, i)
                 JOIN id_check h ON h.pipeline = $1 AND h.record_id = k.id AND h.version = k.version",
                &[&p, &ids, &versions],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        let mut out = vec![false; n];
        for i in found {
            out[(i - 1) as usize] = true;
        }
        Ok(out)
    }

    fn stage(&self, pipeline: &str, entry: Option<&OutboxEntry>, dead: &[DeadLetter], skipped: &[RecordKey]) -> Result<(), StateError> {
        let entry = entry.map(|e| (e.command.to_string(), json(e), e.plugin.clone()));
        let dead = dead.to_vec();
        let (ids, versions) = keys_columns(dead.iter().map(|d| &d.key).chain(skipped));
        self.fenced(pipeline, move |tx, p| {
            if let Some((command, text, plugin)) = &entry {
                tx.execute(
                    "INSERT INTO outbox (command, pipeline, status, entry, plugin, created) VALUES ($1, $2, 'pending', $3, $4, $5)
                     ON CONFLICT (command) DO NOTHING",
                    &[command, &p, text, plugin, &now()],
                )?;
            }
            insert_dead(tx, p, &dead)?;
            mark_handled(tx, p, &ids, &versions)
        })
    }

    fn pending(&self, pipeline: &str) -> Result<Vec<OutboxEntry>, StateError> {
        let p = pipeline.to_string();
        let texts: Vec<String> = self.call(move |c| {
            Ok(c.query("SELECT entry FROM outbox WHERE pipeline = $1 AND status = 'pending' ORDER BY seq", &[&p])?.iter().map(|r| r.get(0)).collect())
        })?;
        texts.iter().map(|t| serde_json::from_str(t).map_err(|e| self.err(format!("corrupt outbox entry: {e}")))).collect()
    }

    fn confirm(&self, pipeline: &str, entry: &OutboxEntry, count: TaskCount, dead: &[DeadLetter]) -> Result<(), StateError> {
        let (command, count, dead) = (entry.command.to_string(), json(&count), dead.to_vec());
        let (ids, versions) = keys_columns(entry.sources.iter().map(|s| &s.key));
        let kept = crate::state::types::kept_parts(entry);
        self.fenced(pipeline, move |tx, p| {
            let confirmed = tx.execute(
                "UPDATE outbox SET status = 'confirmed', confirmed = $2, task_count = $3, entry = $4 WHERE command = $1 AND status = 'pending'",
                &[&command, &now(), &count, &kept],
            )?;
            // Confirmed before (a replay): nothing more to write.
            if confirmed == 0 {
                return Ok(());
            }
            mark_handled(tx, p, &ids, &versions)?;
            insert_dead(tx, p, &dead)
        })
    }

    fn dead_letters_page(&self, pipeline: &str, page: Page) -> Result<Vec<DeadLetter>, StateError> {
        let p = pipeline.to_string();
        let (limit, offset) = page.sql();
        self.call(move |c| {
            let rows = c.query(
                "SELECT id, record_id, version, reason, plugin, raw, command, created FROM dead_letters WHERE pipeline = $1 ORDER BY id LIMIT $2 OFFSET $3",
                &[&p, &limit, &offset],
            )?;
            Ok(rows
                .iter()
                .map(|r| DeadLetter {
                    id: r.get(0),
                    key: RecordKey { id: r.get(1), version: r.get(2) },
                    reason: r.get(3),
                    plugin: r.get(4),
                    raw: r.get(5),
                    command: r.get::<_, Option<&str>>(6).and_then(|s| Uuid::parse_str(s).ok()),
                    created: r.get(7),
                })
                .collect())
        })
    }

    fn dead_letter_count(&self, pipeline: &str) -> Result<u64, StateError> {
        let p = pipeline.to_string();
        self.call(move |c| Ok(c.query_one("SELECT COUNT(*) FROM dead_letters WHERE pipeline = $1", &[&p])?.get::<_, i64>(0) as u64))
    }

    fn dead_letter_reasons(&self, pipeline: &str, limit: u64) -> Result<Vec<(String, u64)>, StateError> {
        let (p, limit) = (pipeline.to_string(), limit as i64);
        self.call(move |c| {
            let sql = "SELECT reason, COUNT(*) FROM dead_letters WHERE pipeline = $1 GROUP BY reason ORDER BY COUNT(*) DESC, reason LIMIT $2";
            Ok(c.query(sql, &[&p, &limit])?.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect())
        })
    }

    fn remove_dead_letters(&self, pipeline: &str, ids: &[i64]) -> Result<(), StateError> {
        let (p, ids) = (pipeline.to_string(), ids.to_vec());
        self.call(move |c| c.execute("DELETE FROM dead_letters WHERE pipeline = $1 AND id = ANY($2)", &[&p, &ids]).map(|_| ()))
    }

    fn handled_count(&self, pipeline: &str) -> Result<u64, StateError> {
        let p = pipeline.to_string();
        self.call(move |c| Ok(c.query_one("SELECT COUNT(*) FROM id_check WHERE pipeline = $1", &[&p])?.get::<_, i64>(0) as u64))
    }

    fn handled_between(&self, pipeline: &str, from: &str, to: &str) -> Result<u64, StateError> {
        // Byte order (`COLLATE "C"`), as SQLite compares: `~` sorts after a row key's space and `=`.
        let (p, from, to) = (pipeline.to_string(), from.to_string(), format!("{to}~"));
        self.call(move |c| {
            let row = c.query_one(
                "SELECT COUNT(DISTINCT record_id) FROM id_check WHERE pipeline = $1 AND version COLLATE \"C\" >= $2 AND version COLLATE \"C\" <= $3",
                &[&p, &from, &to],
            )?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn forget(&self, pipeline: &str, keys: &[RecordKey]) -> Result<(), StateError> {
        let p = pipeline.to_string();
        let (ids, versions) = keys_columns(keys.iter());
        self.call(move |c| {
            c.execute("DELETE FROM id_check h USING unnest($2::text[], $3::text[]) AS k(id, version) WHERE h.pipeline = $1 AND h.record_id = k.id AND h.version = k.version", &[&p, &ids, &versions])?;
            Ok(())
        })
    }

    fn start_run(&self, pipeline: &str, kind: &str) -> Result<i64, StateError> {
        let (p, k) = (pipeline.to_string(), kind.to_string());
        let owner = super::super::owner::this_process();
        self.call(move |c| {
            Ok(c.query_one(
                "INSERT INTO runs (pipeline, kind, started, status, owner) VALUES ($1, $2, $3, 'running', $4) RETURNING id",
                &[&p, &k, &now(), &owner],
            )?
            .get(0))
        })
    }

    fn sweep_dead_runs(&self) -> Result<u64, StateError> {
        let running: Vec<(i64, String)> = self.call(|c| {
            Ok(c.query("SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL", &[])?.iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        let dead: Vec<i64> = running.into_iter().filter(|(_, o)| super::super::owner::is_dead(o)).map(|(id, _)| id).collect();
        let n = dead.len() as u64;
        if !dead.is_empty() {
            let note = super::super::DEAD_RUN_NOTE;
            self.call(move |c| {
                c.execute(
                    "UPDATE runs SET status = 'interrupted', finished = $2, summary = $3 WHERE id = ANY($1) AND status = 'running'",
                    &[&dead, &now(), &note],
                )
                .map(|_| ())
            })?;
        }
        Ok(n)
    }

    fn finish_run(&self, run: i64, status: &str, summary: &serde_json::Value) -> Result<(), StateError> {
        let (status, summary) = (status.to_string(), summary.to_string());
        self.call(move |c| c.execute("UPDATE runs SET finished = $2, status = $3, summary = $4 WHERE id = $1", &[&run, &now(), &status, &summary]).map(|_| ()))
    }

    fn runs(&self, pipeline: &str, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let (p, limit) = (pipeline.to_string(), limit as i64);
        self.call(move |c| {
            let rows = c.query("SELECT id, kind, started, finished, status, summary FROM runs WHERE pipeline = $1 ORDER BY id DESC LIMIT $2", &[&p, &limit])?;
            Ok(rows
                .iter()
                .map(|r| RunRecord {
                    id: r.get(0),
                    kind: r.get(1),
                    started: r.get(2),
                    finished: r.get(3),
                    status: r.get(4),
                    summary: r.get::<_, Option<&str>>(5).and_then(|s| serde_json::from_str(s).ok()),
                })
                .collect())
        })
    }

    fn shared_budget(&self) -> Option<std::sync::Arc<dyn crate::budget::SharedBudget>> {
        Some(std::sync::Arc::new(super::PgBudget { pool: self.pool.clone() }))
    }

    fn confirmed_record_ids(&self, pipeline: &str, from: &str, to: &str) -> Result<Vec<String>, StateError> {
        let (p, from, to) = (pipeline.to_string(), from.to_string(), to.to_string());
        let entries: Vec<String> = self.call(move |c| {
            let rows = c.query(
                "SELECT entry FROM outbox WHERE pipeline = $1 AND status = 'confirmed' AND confirmed >= $2 AND confirmed <= $3 ORDER BY seq",
                &[&p, &from, &to],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        crate::state::types::kept_record_ids(&entries).map_err(|e| self.err(e))
    }
}
