//! The PostgreSQL state store: the same tables as SQLite (times as sortable
//! RFC 3339 text, so both stores answer alike), plus the tables the cluster
//! shares (leases, workers, rate budgets, the live plugin of each
//! pipeline). One store, and one pool of connections, per database URL in
//! a process; every pipeline keys its rows by name.

mod budget;
mod control;
mod lease;
mod pool;
mod store;
mod tokens;

pub use budget::PgBudget;
pub use lease::{LeaseView, WorkerView};
pub use pool::{describe, redact, set_reconnect_grace};

use super::StateError;
use pool::Pool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Schema versions, applied in order under an advisory lock (several
/// workers may start at once); never edit a released one.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE checkpoints (pipeline TEXT PRIMARY KEY, at TEXT NOT NULL, updated TEXT NOT NULL);
     CREATE TABLE id_check (pipeline TEXT NOT NULL, record_id TEXT NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
                            PRIMARY KEY (pipeline, record_id, version));
     CREATE TABLE outbox (command TEXT PRIMARY KEY, pipeline TEXT NOT NULL, seq BIGSERIAL NOT NULL, status TEXT NOT NULL,
                          entry TEXT NOT NULL, plugin TEXT NOT NULL, created TEXT NOT NULL, confirmed TEXT, task_count TEXT);
     CREATE INDEX outbox_by_status ON outbox (pipeline, status, seq);
     CREATE TABLE dead_letters (id BIGSERIAL PRIMARY KEY, pipeline TEXT NOT NULL, record_id TEXT NOT NULL,
                                version TEXT NOT NULL, reason TEXT NOT NULL, plugin TEXT NOT NULL, raw TEXT NOT NULL,
                                command TEXT, created TEXT NOT NULL);
     CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);
     CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, pipeline TEXT NOT NULL, kind TEXT NOT NULL, started TEXT NOT NULL,
                        finished TEXT, status TEXT NOT NULL, summary TEXT);
     CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
     CREATE TABLE commands (id TEXT PRIMARY KEY, kind TEXT NOT NULL, pipeline TEXT NOT NULL, tenant TEXT NOT NULL,
                            created TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL);
     CREATE INDEX commands_by_kind ON commands (kind, created);
     CREATE INDEX commands_by_pipeline_status ON commands (pipeline, status, created);
     CREATE TABLE plugin_versions (digest TEXT PRIMARY KEY, label TEXT NOT NULL, bytes BYTEA NOT NULL, added TEXT NOT NULL);
     CREATE TABLE plugin_swaps (id BIGSERIAL PRIMARY KEY, pipeline TEXT NOT NULL, at TEXT NOT NULL, digest TEXT NOT NULL,
                                label TEXT NOT NULL, origin TEXT NOT NULL, previous TEXT, accepted BOOLEAN NOT NULL, reason TEXT);
     CREATE INDEX plugin_swaps_by_pipeline ON plugin_swaps (pipeline, id);
     CREATE TABLE leases (pipeline TEXT PRIMARY KEY, worker TEXT, expires TIMESTAMPTZ, acquired TIMESTAMPTZ, command TEXT);
     CREATE TABLE workers (id TEXT PRIMARY KEY, address TEXT NOT NULL, started TIMESTAMPTZ NOT NULL, heartbeat TIMESTAMPTZ NOT NULL);
     CREATE TABLE rate_budgets (app_key TEXT PRIMARY KEY, next_at TIMESTAMPTZ NOT NULL, granted BIGINT NOT NULL DEFAULT 0);",
    "ALTER TABLE runs ADD COLUMN owner TEXT;",
    "CREATE TABLE window_progress (pipeline TEXT NOT NULL, begin_at TEXT NOT NULL, end_at TEXT NOT NULL, cursor TEXT NOT NULL,
                                   PRIMARY KEY (pipeline, begin_at, end_at));",
    // Command ids are scoped per tenant: two tenants may choose the same UUID.
    "ALTER TABLE commands DROP CONSTRAINT commands_pkey, ADD PRIMARY KEY (tenant, id);",
    // Access tokens per app and merchant, the pair sealed (see `crate::credentials`).
    "CREATE TABLE tokens (key TEXT PRIMARY KEY, generation BIGINT NOT NULL, sealed BYTEA NOT NULL, expires_at TEXT, obtained_at TEXT NOT NULL,
                          obtained TEXT NOT NULL, seed TEXT NOT NULL, state TEXT NOT NULL, attempted_at TEXT, answer TEXT);",
];

/// State in a PostgreSQL database.
pub struct PgStore {
    name: String,
    pool: Arc<Pool>,
    /// Pipelines this process runs under a cluster lease, and as which
    /// worker: their writes check the lease in the same transaction.
    fences: Mutex<HashMap<String, String>>,
}

/// Connections per database URL and process.
const CONNECTIONS: usize = 4;

impl PgStore {
    /// The store of `url` (`postgres://...`), shared by every caller in the
    /// process; the first call connects and migrates the schema.
    pub fn connect(url: &str) -> Result<Arc<PgStore>, StateError> {
        static ALL: OnceLock<Mutex<HashMap<String, Arc<PgStore>>>> = OnceLock::new();
        let mut all = ALL.get_or_init(Default::default).lock().map_err(|_| StateError { path: redact(url), message: "store registry poisoned".into() })?;
        if let Some(s) = all.get(url) {
            return Ok(s.clone());
        }
        let store = Arc::new(PgStore { name: redact(url), pool: Arc::new(Pool::new(url, CONNECTIONS)), fences: Mutex::default() });
        store.migrate()?;
        all.insert(url.to_string(), store.clone());
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StateError> {
        self.call(|c| {
            let mut tx = c.transaction()?;
            // One migrator at a time across every worker of the cluster.
            tx.execute("SELECT pg_advisory_xact_lock(7460239184)", &[])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL)")?;
            let version: i32 = match tx.query_opt("SELECT version FROM ferry_schema", &[])? {
                Some(r) => r.get(0),
                None => {
                    tx.execute("INSERT INTO ferry_schema (version) VALUES (0)", &[])?;
                    0
                }
            };
            let mut applied = version;
            for sql in MIGRATIONS.iter().skip(version.max(0) as usize) {
                tx.batch_execute(sql)?;
                applied += 1;
            }
            tx.execute("UPDATE ferry_schema SET version = $1", &[&applied])?;
            tx.commit()?;
            Ok(version)
        })
        .and_then(|version| {
            if version as usize > MIGRATIONS.len() {
                return Err(self.err(format!("schema version {version} is newer than this ferry knows ({}); upgrade ferry", MIGRATIONS.len())));
            }
            Ok(())
        })
    }

    /// From now on, writes that move `pipeline` on (staging, confirming,
    /// the checkpoint) succeed only while `worker` holds its lease: a worker
    /// that lost it to a takeover cannot stage batches beside the new one.
    pub fn fence(&self, pipeline: &str, worker: &str) {
        self.fences.lock().expect("fences lock").insert(pipeline.to_string(), worker.to_string());
    }

    /// Lifts the fence (the lease was given back).
    pub fn unfence(&self, pipeline: &str) {
        self.fences.lock().expect("fences lock").remove(pipeline);
    }

    pub(crate) fn fence_of(&self, pipeline: &str) -> Option<String> {
        self.fences.lock().expect("fences lock").get(pipeline).cloned()
    }

    /// The worker holding a live cluster lease on `pipeline`, if any.
    pub fn lease_holder(&self, pipeline: &str) -> Result<Option<String>, StateError> {
        let p = pipeline.to_string();
        self.call(move |c| {
            Ok(c.query_opt("SELECT worker FROM leases WHERE pipeline = $1 AND worker IS NOT NULL AND expires > clock_timestamp()", &[&p])?.map(|r| r.get(0)))
        })
    }

    /// The URL without its password.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn err(&self, message: impl std::fmt::Display) -> StateError {
        StateError { path: self.name.clone(), message: message.to_string() }
    }

    /// Runs `f` on one of the store's connections.
    pub(crate) fn call<T: Send + 'static>(&self, f: impl FnMut(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static) -> Result<T, StateError> {
        super::blocking(|| self.pool.call(f)).map_err(|m| self.err(m))
    }
}
