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
    pub fn open(&self) -> Result<Arc<dyn StateStore>, StateError> {
        Ok(match self {
            StateLocation::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
            StateLocation::Postgres(url) => PgStore::connect(url)?,
        })
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
