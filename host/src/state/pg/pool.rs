//! A few PostgreSQL connections, each owned by a thread of its own.
//!
//! The `postgres` client drives its connection on a private current-thread
//! runtime, which must not run inside the async runtime that calls the
//! store. So every call is handed to one of these threads as a job and the
//! caller blocks on the answer, as it would on a SQLite write. A connection
//! that broke is opened again by the next job.
//!
//! A database that restarts (or fails over) drops every connection and
//! refuses new ones for a while. A call that fails that way is tried again
//! with backoff for up to the reconnect grace (default 60 s, the serve
//! file's `[postgres] reconnect_grace`), so a run rides the restart out
//! instead of failing; it logs when it starts waiting and how long it
//! waited. Calls are written to be safe to repeat (upserts and
//! compare-and-set), so a transaction whose commit was cut off is decided
//! again by the database, not guessed.

use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long calls wait for a database that dropped its connections, in ms.
static GRACE_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets how long calls wait for an unreachable database (the whole process).
pub fn set_reconnect_grace(grace: Duration) {
    GRACE_MS.store(grace.as_millis() as u64, Ordering::Relaxed);
}

/// Why a call failed: the connection (worth waiting for), or the statement.
enum Failure {
    Connection(String),
    Statement(String),
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One thread's connection, opened on first use and after a failure.
struct Connection {
    url: String,
    client: Option<Client>,
}

impl Connection {
    fn get(&mut self) -> Result<&mut Client, Failure> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(Client::connect(&self.url, NoTls).map_err(|e| Failure::Connection(format!("cannot connect: {}", describe(&e))))?);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }
}

/// The connections of one database URL.
pub struct Pool {
    jobs: mpsc::Sender<Job>,
}

impl Pool {
    /// Starts `size` connection threads for `url` (they connect lazily).
    pub fn new(url: &str, size: usize) -> Pool {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let (rx, url) = (rx.clone(), url.to_string());
            std::thread::Builder::new()
                .name(format!("ferry-pg-{i}"))
                .spawn(move || {
                    let mut conn = Connection { url, client: None };
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut conn),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn a PostgreSQL connection thread");
        }
        Pool { jobs }
    }

    /// Runs `f` on a connection and waits for its answer; while the
    /// database is unreachable (restarting), runs it again with backoff for
    /// up to the reconnect grace.
    pub fn call<T: Send + 'static>(&self, f: impl FnMut(&mut Client) -> Result<T, postgres::Error> + Send + 'static) -> Result<T, String> {
        let f = Arc::new(Mutex::new(f));
        let grace = Duration::from_millis(GRACE_MS.load(Ordering::Relaxed));
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut waiting = false;
        loop {
            match self.once(f.clone()) {
                Ok(v) => {
                    if waiting {
                        tracing::info!(
                            waited_ms = started.elapsed().as_millis() as u64,
                            "PostgreSQL is reachable again after {:.1} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(v);
                }
                Err(Failure::Connection(e)) if started.elapsed() + wait <= grace => {
                    if !waiting {
                        tracing::warn!("PostgreSQL is unreachable ({e}); trying again for up to {} s (restart or failover?)", grace.as_secs());
                        waiting = true;
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(Failure::Connection(e)) if waiting => {
                    return Err(format!("{e} (still, after waiting {:.0} s for the database)", started.elapsed().as_secs_f64()));
                }
                Err(Failure::Connection(e) | Failure::Statement(e)) => return Err(e),
            }
        }
    }

    fn once<T: Send + 'static, F: FnMut(&mut Client) -> Result<T, postgres::Error> + Send + 'static>(&self, f: Arc<Mutex<F>>) -> Result<T, Failure> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let result = conn.get().and_then(|c| {
                let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                f(c).map_err(|e| if lost(&e) { Failure::Connection(describe(&e)) } else { Failure::Statement(describe(&e)) })
            });
            let _ = tx.send(result);
        });
        self.jobs.send(job).map_err(|_| Failure::Statement("the connection threads have stopped".to_string()))?;
        rx.recv().map_err(|_| Failure::Statement("a connection thread stopped during the call".to_string()))?
    }
}

/// Whether `e` is the connection failing (the server shut down, restarts,
/// or the socket broke) rather than the statement.
fn lost(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        // connection_exception; admin_shutdown, crash_shutdown, cannot_connect_now.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => e.is_closed() || std::iter::successors(std::error::Error::source(e), |s| s.source()).any(|s| s.is::<std::io::Error>()),
    }
}

/// A PostgreSQL error with the server's own message and code when it has one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// The URL with its password masked, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((auth, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_masked() {
        assert_eq!(super::redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}
