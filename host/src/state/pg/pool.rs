//! A few PostgreSQL connections, each owned by a thread of its own.
//!
//! The `postgres` client drives its connection on a private current-thread
//! runtime, which must not run inside the async runtime that calls the
//! store. So every call is handed to one of these threads as a job and the
//! caller blocks on the answer, as it would on a SQLite write. A connection
//! that broke is opened again by the next job.

use postgres::{Client, NoTls};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One thread's connection, opened on first use and after a failure.
struct Connection {
    url: String,
    client: Option<Client>,
}

impl Connection {
    fn get(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(Client::connect(&self.url, NoTls).map_err(|e| format!("cannot connect: {}", describe(&e)))?);
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

    /// Runs `f` on a connection and waits for its answer.
    pub fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static) -> Result<T, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let result = conn.get().and_then(|c| f(c).map_err(|e| describe(&e)));
            let _ = tx.send(result);
        });
        self.jobs.send(job).map_err(|_| "the connection threads have stopped".to_string())?;
        rx.recv().map_err(|_| "a connection thread stopped during the call".to_string())?
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
