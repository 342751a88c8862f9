//! One writer per pipeline on a SQLite state file. Two processes syncing
//! one pipeline side by side each read the same checkpoint and send the
//! same windows, kept apart only by the target's idempotency; so whatever
//! writes a pipeline's state (`ferry run`, `ferry dlq replay`, `ferry
//! serve` for each pipeline it serves) first takes an exclusive lock on a
//! file beside the database, holds it until it ends, and a second writer
//! is refused with the holder named. The operating system drops the lock
//! when its process dies, so a crash never leaves it behind. PostgreSQL
//! state is guarded by the cluster's lease row instead.

use super::StateError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of `pipeline` in the SQLite file `db` for
    /// `holder` (what this process is, e.g. `ferry run`); refuses, naming
    /// the process that holds it, if another one does.
    pub fn take(db: &Path, pipeline: &str, holder: &str) -> Result<WriterLock, StateError> {
        let path = lock_path(db, pipeline);
        let fail = |message: String| StateError { path: db.display().to_string(), message };
        let io = |e: std::io::Error| fail(format!("cannot take the writer lock {}: {e}", path.display()));
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                return Err(fail(format!(
                    "pipeline `{pipeline}` is already being written by another process ({}); one writer at a time keeps its checkpoint and outbox whole. Stop that one first, or start this sync through it (lock file {})",
                    if who.is_empty() { "it did not say which" } else { who },
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let note = format!("{holder}, pid {}, since {}", std::process::id(), jiff::Timestamp::now());
        file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(note.as_bytes())).map_err(io)?;
        Ok(WriterLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<db>.<pipeline>.writer` (the pipeline name made safe for a file name).
fn lock_path(db: &Path, pipeline: &str) -> PathBuf {
    let safe: String = pipeline.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{safe}.writer"));
    db.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_naming_the_first_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let first = WriterLock::take(&db, "orders", "ferry run").unwrap();
        let err = WriterLock::take(&db, "orders", "ferry serve").unwrap_err().to_string();
        assert!(err.contains("`orders`") && err.contains("ferry run, pid"), "{err}");
        WriterLock::take(&db, "other pipeline", "ferry run").expect("another pipeline has its own lock");
        drop(first);
        WriterLock::take(&db, "orders", "ferry serve").expect("free again");
    }
}
