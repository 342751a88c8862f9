//! Where a pipeline keeps its state: a SQLite file (the embedded default)
//! or a PostgreSQL database named by a `postgres://` URL.

use super::{PgStore, SqliteStore, StateError, StateStore};
use std::path::PathBuf;
use std::sync::Arc;

/// A pipeline's `[state]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// One SQLite file per pipeline.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL, secrets expanded), shared by every
    /// pipeline and worker that names it.
    Postgres(String),
}

impl StateLocation {
    /// Whether `text` names a PostgreSQL database.
    pub fn is_postgres_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// Opens the store (for PostgreSQL, the process's shared one).
    /// Runs left `running` by a process that died are marked `interrupted`.
    pub fn open(&self) -> Result<Arc<dyn StateStore>, StateError> {
        let store: Arc<dyn StateStore> = match self {
            StateLocation::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
            StateLocation::Postgres(url) => PgStore::connect(url)?,
        };
        match store.sweep_dead_runs() {
            Ok(0) => {}
            Ok(n) => tracing::info!(state = %self, runs = n, "marked runs whose process died as interrupted"),
            Err(e) => tracing::warn!(state = %self, "cannot check for runs whose process died: {e}"),
        }
        Ok(store)
    }
}

impl StateLocation {
    /// Takes the pipeline's writer lock where the store needs one (a SQLite
    /// file; PostgreSQL state is guarded by the cluster's lease): `holder`
    /// says what this process is, for the message a second writer gets.
    pub fn lock_writer(&self, pipeline: &str, holder: &str) -> Result<Option<super::WriterLock>, StateError> {
        match self {
            StateLocation::Sqlite(path) => super::WriterLock::take(path, pipeline, holder).map(Some),
            StateLocation::Postgres(_) => Ok(None),
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StateLocation::Postgres(url) => f.write_str(&super::pg::redact(url)),
        }
    }
}
