//! What a restarted process reads back from a SQLite state: how far each
//! window's staged rows reach, the calls an app_key made in the last minute,
//! and which runs were left `running` by a process that died.

use super::{SqliteStore, now};
use crate::budget::BudgetMemory;
use crate::state::{StateError, WindowProgress};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The calls of the last minute of each app_key, for the next process
/// (unix ms; `next_at` keeps the last call, as older versions read it).
pub(super) struct SlotMemory(pub(super) Arc<super::idle::Conn>);

impl BudgetMemory for SlotMemory {
    fn recent_calls(&self, app_key: &str) -> Vec<SystemTime> {
        let text: Option<Option<String>> =
            self.0.with(|conn| conn.query_row("SELECT calls FROM rate_slots WHERE app_key = ?1", [app_key], |r| r.get(0)).optional()).ok().flatten();
        let ms: Vec<u64> = text.flatten().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        ms.into_iter().map(|m| UNIX_EPOCH + std::time::Duration::from_millis(m)).collect()
    }

    fn remember_calls(&self, app_key: &str, calls: &[SystemTime]) {
        let ms: Vec<u64> = calls.iter().map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)).collect();
        let (last, text) = (ms.last().copied().unwrap_or(0) as i64, serde_json::to_string(&ms).unwrap_or_default());
        let written = self.0.with(|c| {
            c.prepare_cached(
                "INSERT INTO rate_slots (app_key, next_at, calls) VALUES (?1, ?2, ?3) ON CONFLICT (app_key) DO UPDATE SET next_at = excluded.next_at, calls = excluded.calls",
            )
            .and_then(|mut s| s.execute(params![app_key, last, text]))
        });
        if let Err(e) = written {
            tracing::warn!(app_key, "cannot remember the calls of the last minute: {e}");
        }
    }
}

impl SqliteStore {
    pub(super) fn progress_rows(&self, pipeline: &str) -> Result<Vec<WindowProgress>, StateError> {
        let rows: Vec<(String, String, String)> = self.with(|c| {
            let mut stmt = c.prepare("SELECT begin_at, end_at, cursor FROM window_progress WHERE pipeline = ?1 ORDER BY begin_at")?;
            stmt.query_map([pipeline], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })?;
        rows.iter().map(|(b, e, c)| super::super::types::progress_from_text(b, e, c).map_err(|m| self.err(m))).collect()
    }

    pub(super) fn write_progress(&self, pipeline: &str, progress: Option<&WindowProgress>) -> Result<(), StateError> {
        self.with(|c| match progress {
            None => c.execute("DELETE FROM window_progress WHERE pipeline = ?1", [pipeline]).map(|_| ()),
            Some(p) => c
                .prepare_cached(
                    "INSERT INTO window_progress (pipeline, begin_at, end_at, cursor) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (pipeline, begin_at, end_at) DO UPDATE SET cursor = excluded.cursor",
                )?
                .execute(params![pipeline, crate::time::sortable(p.begin), crate::time::sortable(p.end), p.cursor.to_string()])
                .map(|_| ()),
        })
    }

    /// Marks `interrupted` the running runs whose owner `dead` says is gone.
    pub(super) fn sweep(&self, dead: impl Fn(&str) -> bool) -> Result<u64, StateError> {
        let running: Vec<(i64, String)> = self.with(|c| {
            let mut stmt = c.prepare("SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        let dead: Vec<i64> = running.into_iter().filter(|(_, o)| dead(o)).map(|(id, _)| id).collect();
        for id in &dead {
            self.with(|c| {
                c.execute(
                    "UPDATE runs SET status = 'interrupted', finished = ?2, summary = ?3 WHERE id = ?1 AND status = 'running'",
                    params![id, now(), super::super::DEAD_RUN_NOTE],
                )
            })?;
        }
        Ok(dead.len() as u64)
    }
}
