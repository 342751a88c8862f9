//! Reading one window completely while orders keep changing.
//!
//! - `ts` (default): the row-version cursor the API docs recommend:
//!   `start_ts` = the largest `ts` seen, `is_get_total=false`, `>=` compare
//!   (so each page repeats one row, de-duplicated here). A changed order
//!   gets a larger `ts` and is met again, never skipped.
//! - `page`: `page_index` paging with drift detection: when `data_count`
//!   changes between pages, rows have shifted and some may have been
//!   skipped, so the window is read again; after repeated drift it is split
//!   in half.

use super::client::JushuitanClient;
use super::metadata::{Request, Vars};
use super::planner::Window;
use super::retry::{Answer, SourceError};
use super::row::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::Sender;

/// How a window is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagingMode {
    /// The `ts` row-version cursor (default).
    #[default]
    Ts,
    /// `page_index` paging with drift detection and re-reads.
    Page,
}

/// Reads of a window before it is split.
const MAX_REREADS: u32 = 3;
/// Pages in one pass before the answer is called absurd.
const MAX_PAGES: u32 = 100_000;

enum Pass {
    Complete,
    Drift,
}

/// One page's `data`, read with the answer in one pass: the rows stay JSON
/// text; only the paging fields are read.
#[derive(Deserialize)]
struct Page {
    datas: Option<Vec<Box<RawValue>>>,
    has_next: Option<Value>,
    data_count: Option<Value>,
}

impl Answer for Page {
    const SHAPE: &'static str = "`datas` a list of rows";
}

impl Page {
    /// Takes the rows out, reading each one's keys.
    fn rows(&mut self, id_field: &str) -> Vec<Row> {
        self.datas.take().unwrap_or_default().into_iter().map(|raw| Row::new(raw, id_field)).collect()
    }

    fn has_next(&self) -> bool {
        self.has_next.as_ref().and_then(Value::as_bool).unwrap_or(false)
    }
}

impl JushuitanClient {
    /// Sends every row of `window` to `out` once (by id + `modified`).
    /// Returns the number of distinct rows sent.
    pub async fn fetch_window(&self, req: &Request, window: &Window, mode: PagingMode, out: &Sender<Vec<Row>>) -> Result<u64, SourceError> {
        let mut seen = HashSet::new();
        match mode {
            PagingMode::Ts => self.ts_cursor(req, window, out, &mut seen).await?,
            PagingMode::Page => {
                let mut stack = vec![(*window, 0u32)];
                while let Some((w, rereads)) = stack.pop() {
                    if let Pass::Drift = self.page_pass(req, &w, out, &mut seen).await? {
                        self.stats.drift_rereads.fetch_add(1, Ordering::Relaxed);
                        let half = w.end.duration_since(w.begin) / 2;
                        if rereads + 1 < MAX_REREADS {
                            stack.push((w, rereads + 1));
                        } else if half.as_secs() >= 1 {
                            self.stats.window_splits.fetch_add(1, Ordering::Relaxed);
                            let mid = w.begin + half;
                            stack.push((Window { begin: mid, end: w.end }, 0));
                            stack.push((Window { begin: w.begin, end: mid }, 0));
                        } else {
                            tracing::warn!(window = %w, "rows kept shifting in a one-second window; the next run's lookback re-reads it");
                        }
                    }
                }
            }
        }
        Ok(seen.len() as u64)
    }

    async fn emit(&self, rows: Vec<Row>, out: &Sender<Vec<Row>>, seen: &mut HashSet<(String, String)>) -> Result<(), SourceError> {
        let fresh: Vec<Row> = rows.into_iter().filter(|r| seen.insert(r.key())).collect();
        if !fresh.is_empty() {
            out.send(fresh).await.map_err(|_| SourceError::Protocol("the run stopped reading".into()))?;
        }
        Ok(())
    }

    async fn page_pass(&self, req: &Request, w: &Window, out: &Sender<Vec<Row>>, seen: &mut HashSet<(String, String)>) -> Result<Pass, SourceError> {
        let (begin, end) = (crate::time::format(w.begin), crate::time::format(w.end));
        let mut count = None;
        for page in 1..=MAX_PAGES {
            let biz = req.render(&Vars { last_sync_time: &begin, current_time: &end, page });
            let mut data: Page = self.call(&req.path(), &biz).await?;
            let data_count = data.data_count.as_ref().and_then(Value::as_u64);
            match count {
                None => count = Some(data_count),
                Some(c) if c != data_count => return Ok(Pass::Drift),
                Some(_) => {}
            }
            self.emit(data.rows(&req.id_field), out, seen).await?;
            if !data.has_next() {
                return Ok(Pass::Complete);
            }
        }
        Err(SourceError::Protocol(format!("window {w} has more than {MAX_PAGES} pages")))
    }

    async fn ts_cursor(&self, req: &Request, w: &Window, out: &Sender<Vec<Row>>, seen: &mut HashSet<(String, String)>) -> Result<(), SourceError> {
        let (begin, end) = (crate::time::format(w.begin), crate::time::format(w.end));
        let mut start_ts: u64 = 0;
        for _ in 0..MAX_PAGES {
            let mut biz = req.render(&Vars { last_sync_time: &begin, current_time: &end, page: 1 });
            biz["start_ts"] = Value::from(start_ts);
            biz["is_get_total"] = Value::Bool(false);
            let mut data: Page = self.call(&req.path(), &biz).await?;
            let rows = data.rows(&req.id_field);
            let n = rows.len();
            let max_ts = rows.iter().filter_map(|r| r.ts).max();
            self.emit(rows, out, seen).await?;
            let has_next = data.has_next();
            if !has_next || n < req.page_size as usize {
                return Ok(());
            }
            match max_ts {
                Some(m) if m > start_ts => start_ts = m,
                _ => {
                    return Err(SourceError::Protocol(format!(
                        "the ts cursor did not advance past {start_ts} in window {w}: use paging = \"page\" for this source"
                    )));
                }
            }
        }
        Err(SourceError::Protocol(format!("window {w} has more than {MAX_PAGES} pages")))
    }
}
