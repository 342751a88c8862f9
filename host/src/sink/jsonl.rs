//! A local JSONL file: one mapped record per line, tagged with its command
//! (`_ferry_command`). Commands already in the file are not written again,
//! and a torn last line from a crash is cut off at open.

use super::{Delivery, SinkError, SinkStats};
use crate::state::{OutboxEntry, TaskCount};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends to one file.
pub struct JsonlSink {
    path: PathBuf,
    state: Mutex<(std::fs::File, HashSet<String>)>,
    /// Counters.
    pub stats: SinkStats,
}

impl JsonlSink {
    /// Opens (creating) the file and reads which commands it already holds.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let io = |e: std::io::Error| SinkError::Io(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut seen = HashSet::new();
        let mut keep = 0u64;
        if let Ok(f) = std::fs::File::open(path) {
            let mut reader = std::io::BufReader::new(f);
            let mut line = String::new();
            while reader.read_line(&mut line).map_err(io)? > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                keep += line.len() as u64;
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(c) = v.get("_ferry_command").and_then(Value::as_str)
                {
                    seen.insert(c.to_string());
                }
                line.clear();
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        file.set_len(keep).map_err(io)?;
        Ok(JsonlSink { path: path.to_path_buf(), state: Mutex::new((file, seen)), stats: SinkStats::default() })
    }

    /// Appends one batch (once).
    pub fn send(&self, entry: &OutboxEntry) -> Result<Delivery, SinkError> {
        let io = |e: std::io::Error| SinkError::Io(format!("{}: {e}", self.path.display()));
        let body: Value = serde_json::from_str(&entry.body).map_err(|e| SinkError::Io(format!("outbox body: {e}")))?;
        let records = body.get("records").and_then(Value::as_array).cloned().unwrap_or_default();
        let n = records.len() as u64;
        let done = Delivery { count: TaskCount { failed: 0, success: n, total: n }, failed: Vec::new(), succeeded: None, replayed: false };
        let command = entry.command.to_string();
        let mut state = self.state.lock().map_err(|_| SinkError::Io("jsonl lock poisoned".into()))?;
        if state.1.contains(&command) {
            return Ok(Delivery { replayed: true, ..done });
        }
        let mut buf = Vec::new();
        for mut r in records {
            if let Some(m) = r.as_object_mut() {
                m.insert("_ferry_command".into(), Value::String(command.clone()));
            }
            serde_json::to_writer(&mut buf, &r).map_err(|e| SinkError::Io(e.to_string()))?;
            buf.push(b'\n');
        }
        state.0.write_all(&buf).map_err(io)?;
        state.0.sync_data().map_err(io)?;
        state.1.insert(command);
        Ok(done)
    }
}
