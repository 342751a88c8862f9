//! Reading one window completely while orders keep changing, and proving
//! it: a window ends only when every signal of the answers agrees.
//!
//! - `ts` (default): the row-version cursor the API docs recommend:
//!   `start_ts` = the largest `ts` seen, `is_get_total=false`, `>=` compare
//!   (so each page repeats one row, de-duplicated here). A changed order
//!   gets a larger `ts` and is met again, never skipped.
//! - `page`: `page_index` paging with drift detection: when `data_count`
//!   changes between pages, rows have shifted and some may have been
//!   skipped, so the window is read again; after repeated drift it is split
//!   in half.
//!
//! Every page is checked (`check`) before its rows go on: the list must be
//! a list; `has_next` (in any spelling), the page's size, `data_count` /
//! `page_count` and the cursor must agree; every row's `modified` must lie
//! in the window and its `ts` at or past the cursor. A page that
//! contradicts itself is read again (bounded, with backoff); one that keeps
//! contradicting fails the window, naming it, the page or cursor and what
//! disagreed, so the checkpoint stays before it.

use super::answer::{List, Page};
use super::client::JushuitanClient;
use super::metadata::{Request, Vars};
use super::planner::Window;
use super::retry::SourceError;
use super::row::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
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

impl std::fmt::Display for PagingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PagingMode::Ts => "ts",
            PagingMode::Page => "page",
        })
    }
}

/// Reads of a window before it is split.
const MAX_REREADS: u32 = 3;
/// Pages in one pass before the answer is called absurd.
const MAX_PAGES: u32 = 100_000;
/// Reads of one page that contradicts itself, after the first.
pub const FAULT_REREADS: u32 = 5;
/// The first wait before a page is read again; it doubles each time.
const FAULT_BACKOFF: Duration = Duration::from_millis(100);

enum Pass {
    Complete,
    Drift,
}

/// Rows of one page as they go to the run, and where the `ts` cursor stands
/// after them (the `start_ts` of the next call; `None` in page mode or
/// after the last page): once these rows are staged, the window can be
/// read again from there.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The page's rows not sent before (by id + `modified`).
    pub rows: Vec<Row>,
    /// The cursor after them.
    pub cursor: Option<u64>,
}

/// What a checked page says: its rows, whether more follow, and whether
/// its emptiness still needs proof (a `null` list).
struct Checked {
    rows: Vec<Row>,
    more: bool,
    prove_empty: bool,
}

/// What every page of one window is checked against.
struct Bounds {
    begin: String,
    end: String,
    /// Rows are selected by `modified` (date_type 0), so it must lie inside.
    by_modified: bool,
    page_size: usize,
}

impl Bounds {
    /// The bounds of `w`, read once per window: its times as the API
    /// writes them, and whether the query selects rows by `modified`.
    fn new(req: &Request, w: &Window) -> Bounds {
        let (begin, end) = (crate::time::format_in(w.begin, &req.zone), crate::time::format_in(w.end, &req.zone));
        let biz = req.render(&Vars { last_sync_time: &begin, current_time: &end, page: 1 });
        let by_modified = matches!(biz.get("date_type").cloned().map(crate::fields::text).as_deref(), None | Some("0") | Some("null"));
        Bounds { begin, end, by_modified, page_size: req.page_size as usize }
    }

    /// The `biz` of page `page` of the window.
    fn biz(&self, req: &Request, page: u32) -> Value {
        req.render(&Vars { last_sync_time: &self.begin, current_time: &self.end, page })
    }

    /// The first row whose `modified` lies outside the window.
    fn outside<'r>(&self, rows: &'r [Row]) -> Option<&'r Row> {
        if !self.by_modified {
            return None;
        }
        // `yyyy-MM-dd HH:mm:ss[.fff]` sorts as text; milliseconds are cut.
        rows.iter().find(|r| {
            let m = r.version.get(..19).unwrap_or(&r.version);
            !r.version.is_empty() && (m < self.begin.as_str() || m > self.end.as_str())
        })
    }
}

/// The list's rows, or what is wrong with it; `Ok(None)` for `null`.
fn listed(page: &mut Page, req: &Request) -> Result<Option<Vec<Row>>, String> {
    let key = req.list_key.as_str();
    match page.list(key) {
        List::Missing => Err(format!("the answer has no `{key}` list")),
        List::Other(what) => Err(format!("`{key}` is {what}, expected a list of rows")),
        List::Null => Ok(None),
        List::Rows(_) => Ok(Some(page.rows(key, &req.id_field, req.row_key.as_deref()))),
    }
}

/// A page as both modes first check it: the list is a list (`None` rows
/// for `null`), `has_next` does not contradict the page's size, and every
/// row lies in the window.
struct Read {
    has_next: Option<bool>,
    rows: Vec<Row>,
    null: bool,
}

fn read(mut page: Page, b: &Bounds, req: &Request) -> Result<Read, String> {
    let has_next = page.has_next();
    let listed = listed(&mut page, req)?;
    let null = listed.is_none();
    let rows = listed.unwrap_or_default();
    let n = rows.len();
    if n == 0 && has_next == Some(true) {
        return Err("an empty page says has_next".into());
    }
    if has_next == Some(true) && n < b.page_size {
        return Err(format!("a page of {n} rows (page_size {}) says has_next", b.page_size));
    }
    if let Some(r) = b.outside(&rows) {
        return Err(format!("row {} was modified at {}, outside the window", r.id, r.version));
    }
    Ok(Read { has_next, rows, null })
}

/// Checks one page of the `ts` cursor read from `start_ts` (`first`: the
/// window's first call).
fn check_ts(page: Page, b: &Bounds, req: &Request, start_ts: u64, first: bool) -> Result<Checked, String> {
    let Read { has_next, rows, null } = read(page, b, req)?;
    let n = rows.len();
    if n == 0 && !first {
        return Err(format!("no rows from start_ts {start_ts}, though the page before said more and the boundary row must come back (>=)"));
    }
    if let Some(r) = rows.iter().find(|r| r.ts.is_some_and(|t| t < start_ts)) {
        return Err(format!("row {} has ts {} below the cursor {start_ts} (a page served again?)", r.id, r.ts.unwrap_or_default()));
    }
    let more = has_next.unwrap_or(n >= b.page_size);
    if more && rows.iter().filter_map(|r| r.ts).max().is_none_or(|m| m <= start_ts) {
        return Err(format!("the ts cursor did not advance past {start_ts}; if this source never advances it, use paging = \"page\""));
    }
    Ok(Checked { rows, more, prove_empty: null && first })
}

/// What page mode knows from the window's first page.
#[derive(Clone, Copy)]
struct Counted {
    data_count: Option<u64>,
    page_count: Option<u64>,
}

/// Checks page `index` of a `page_index` pass.
fn check_page(page: Page, b: &Bounds, req: &Request, index: u32, counted: Counted, seen: &HashSet<(String, String)>) -> Result<Checked, String> {
    let Read { has_next, rows, null } = read(page, b, req)?;
    let (n, size) = (rows.len() as u64, b.page_size as u64);
    if let Some(total) = counted.data_count {
        let expected = total.saturating_sub(u64::from(index - 1) * size).min(size);
        if n != expected {
            return Err(format!("the page has {n} rows where data_count {total} means {expected}"));
        }
    }
    let last = counted.page_count.or(counted.data_count.map(|total| total.div_ceil(size)));
    if let (Some(last), Some(true)) = (last, has_next)
        && u64::from(index) >= last
    {
        return Err(format!("has_next says more past page_count {last}"));
    }
    if index > 1 && n > 0 && rows.iter().all(|r| seen.contains(&r.key())) {
        return Err(format!("page {index} repeats rows already read in this pass (a page served again?)"));
    }
    let more = match (has_next, last) {
        (Some(h), _) => h,
        (None, Some(last)) => u64::from(index) < last,
        (None, None) => n >= size,
    };
    Ok(Checked { rows, more, prove_empty: null && counted.data_count.is_none() && index == 1 })
}

impl JushuitanClient {
    /// Sends every row of `window` to `out` once (by id + `modified`),
    /// in `ts` mode from the cursor `from_ts` on (0: the whole window).
    /// Returns the number of distinct rows sent.
    pub async fn fetch_window(&self, req: &Request, window: &Window, mode: PagingMode, from_ts: u64, out: &Sender<Fetched>) -> Result<u64, SourceError> {
        let mut seen = HashSet::new();
        match mode {
            PagingMode::Ts => self.ts_cursor(req, window, from_ts, out, &mut seen).await?,
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

    async fn emit(&self, rows: Vec<Row>, cursor: Option<u64>, out: &Sender<Fetched>, seen: &mut HashSet<(String, String)>) -> Result<(), SourceError> {
        let fresh: Vec<Row> = rows.into_iter().filter(|r| seen.insert(r.key())).collect();
        if !fresh.is_empty() || cursor.is_some() {
            out.send(Fetched { rows: fresh, cursor }).await.map_err(|_| SourceError::Protocol("the run stopped reading".into()))?;
        }
        Ok(())
    }

    /// Calls for one page until its answer passes `check` (a `null` list
    /// also needs a count of 0 from the same query), reading it again on
    /// a contradiction; fails naming `at` and what disagreed.
    async fn checked<F>(&self, req: &Request, biz: &Value, w: &Window, at: &str, mut check: F) -> Result<Checked, SourceError>
    where
        F: FnMut(Page) -> Result<Checked, String>,
    {
        let mut wait = FAULT_BACKOFF;
        for attempt in 0..=FAULT_REREADS {
            let page: Page = self.call(&req.path(), biz).await?;
            let verdict = match check(page) {
                Ok(c) if c.prove_empty => self.count_is_zero(req, biz).await?.map(|()| c),
                other => other,
            };
            match verdict {
                Ok(c) => return Ok(c),
                Err(what) if attempt == FAULT_REREADS => {
                    return Err(SourceError::Inconsistent { at: at.to_string(), what, reads: attempt + 1 });
                }
                Err(what) => {
                    self.stats.answer_rereads.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("ferry_source_rereads_total").increment(1);
                    tracing::warn!(window = %w, at, "the answer contradicts itself ({what}); reading it again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// A `null` list proves nothing: the same query with a total must count
    /// no rows.
    async fn count_is_zero(&self, req: &Request, biz: &Value) -> Result<Result<(), String>, SourceError> {
        let mut ask = biz.clone();
        ask["is_get_total"] = Value::Bool(true);
        ask["page_index"] = Value::from(1);
        let page: Page = self.call(&req.path(), &ask).await?;
        Ok(match page.data_count() {
            Some(0) => Ok(()),
            Some(n) => Err(format!("`{}` is null where the same query counts {n} rows", req.list_key)),
            None => Err(format!("`{}` is null and the answer gives no data_count to prove the window empty", req.list_key)),
        })
    }

    async fn page_pass(&self, req: &Request, w: &Window, out: &Sender<Fetched>, seen: &mut HashSet<(String, String)>) -> Result<Pass, SourceError> {
        let bounds = Bounds::new(req, w);
        let mut counted: Option<Counted> = None;
        let mut pass_seen: HashSet<(String, String)> = HashSet::new();
        for index in 1..=MAX_PAGES {
            let biz = bounds.biz(req, index);
            let mut drift = false;
            let at = format!("page {index}");
            let checked = self
                .checked(req, &biz, w, &at, |page| {
                    let now = Counted { data_count: page.data_count(), page_count: page.page_count() };
                    let first = *counted.get_or_insert(now);
                    if first.data_count != now.data_count {
                        drift = true;
                        return Ok(Checked { rows: Vec::new(), more: false, prove_empty: false });
                    }
                    check_page(page, &bounds, req, index, first, &pass_seen)
                })
                .await?;
            if drift {
                return Ok(Pass::Drift);
            }
            pass_seen.extend(checked.rows.iter().map(Row::key));
            self.emit(checked.rows, None, out, seen).await?;
            if !checked.more {
                return Ok(Pass::Complete);
            }
        }
        Err(SourceError::Protocol(format!("window {w} has more than {MAX_PAGES} pages")))
    }

    async fn ts_cursor(&self, req: &Request, w: &Window, from_ts: u64, out: &Sender<Fetched>, seen: &mut HashSet<(String, String)>) -> Result<(), SourceError> {
        let bounds = Bounds::new(req, w);
        // A resumed cursor's first call is judged as a window's first: its
        // boundary row may have changed since.
        let mut start_ts: u64 = from_ts;
        for call in 0..MAX_PAGES {
            let mut biz = bounds.biz(req, 1);
            let param =
                req.cursor.param().ok_or_else(|| SourceError::Protocol(format!("{} has no row-version cursor; page it (paging = \"page\")", req.api)))?;
            biz[param] = Value::from(start_ts);
            biz["is_get_total"] = Value::Bool(false);
            let at = format!("start_ts {start_ts}");
            let checked = self.checked(req, &biz, w, &at, |page| check_ts(page, &bounds, req, start_ts, call == 0)).await?;
            let max_ts = checked.rows.iter().filter_map(|r| r.ts).max();
            let next = checked.more.then(|| max_ts.unwrap_or(start_ts));
            self.emit(checked.rows, next, out, seen).await?;
            let Some(next) = next else { return Ok(()) };
            start_ts = next;
        }
        Err(SourceError::Protocol(format!("window {w} has more than {MAX_PAGES} pages")))
    }
}
