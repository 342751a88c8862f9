//! A SQLite connection that closes itself when idle and opens again when
//! used. A host serving a thousand pipelines keeps a thousand state files;
//! each open connection costs about 100 KB of SQLite's own memory (its
//! lookaside, parsed schema and statement cache) even after it gives its
//! cached pages back. One process-wide thread closes the connections idle
//! for a minute; the next use reopens (about a millisecond). The file, its
//! WAL and the writer lock (`WriterLock`, a separate file) are unaffected.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How long a connection stays open unused.
const IDLE: Duration = Duration::from_secs(60);
/// How often the closer looks.
const LOOK: Duration = Duration::from_secs(15);

/// A connection, open while in use.
pub(super) struct Conn {
    path: PathBuf,
    open: Mutex<Option<(Connection, Instant)>>,
}

/// Opens `path` with the per-connection settings (the schema is already
/// migrated: `SqliteStore::open` did it once).
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

impl Conn {
    /// Holds `conn` (open now) for `path`, and lets the closer see it.
    pub(super) fn new(path: &Path, conn: Connection) -> Arc<Conn> {
        let c = Arc::new(Conn { path: path.to_path_buf(), open: Mutex::new(Some((conn, Instant::now()))) });
        watched().lock().expect("idle list").push(Arc::downgrade(&c));
        c
    }

    /// Runs `f` on the connection, opening it first if it was closed.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        let mut open = self.open.lock().map_err(|_| "connection lock poisoned".to_string())?;
        if open.is_none() {
            *open = Some((connect(&self.path).map_err(|e| format!("cannot open it again: {e}"))?, Instant::now()));
        }
        let (conn, used) = open.as_mut().expect("opened above");
        *used = Instant::now();
        f(conn).map_err(|e| e.to_string())
    }

    /// Closes the connection if unused for `idle`; whether it did.
    fn close_if_idle(&self, idle: Duration) -> bool {
        let Ok(mut open) = self.open.try_lock() else { return false };
        if open.as_ref().is_some_and(|(_, used)| used.elapsed() >= idle) {
            *open = None;
            return true;
        }
        false
    }

    /// Closes it now (when no call holds it); the next use opens it again.
    pub(super) fn close(&self) {
        self.close_if_idle(Duration::ZERO);
    }

    /// Whether it is open now.
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.open.lock().expect("conn lock").is_some()
    }
}

/// Every connection made, for the closer (started with the first).
fn watched() -> &'static Mutex<Vec<Weak<Conn>>> {
    static ALL: OnceLock<Mutex<Vec<Weak<Conn>>>> = OnceLock::new();
    ALL.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("ferry-sqlite-idle".into()).spawn(|| {
            loop {
                std::thread::sleep(LOOK);
                sweep(IDLE);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("idle state connections stay open: cannot start their closer: {e}");
        }
        Mutex::new(Vec::new())
    })
}

/// Closes what has been idle for `idle` and forgets the dropped; how many it closed.
fn sweep(idle: Duration) -> usize {
    let live: Vec<Arc<Conn>> = {
        let mut all = watched().lock().expect("idle list");
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    live.iter().filter(|c| c.close_if_idle(idle)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection is closed and opens again on the next use, with
    /// the data where it was.
    #[test]
    fn closes_when_idle_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let c = Conn::new(&path, connect(&path).unwrap());
        c.with(|c| c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")).unwrap();
        assert!(sweep(Duration::from_secs(3600)) == 0 && c.is_open(), "used just now: stays open");
        assert!(sweep(Duration::ZERO) >= 1 && !c.is_open(), "idle: closed");
        assert_eq!(c.with(|c| c.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0))).unwrap(), 7);
        assert!(c.is_open());
    }
}
