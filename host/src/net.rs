//! One HTTP client per timeout for the whole process. A `reqwest::Client`
//! holds a connection pool and a TLS configuration (its root
//! certificates, parsed); a client per run made a host with many
//! pipelines parse and keep them once per pipeline (1000 scheduled
//! pipelines whose first runs overlapped held 170 MB after them), and kept
//! connections to one gateway apart. Clones share the pool.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The process's client with this per-request timeout.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    static ALL: OnceLock<Mutex<HashMap<Duration, reqwest::Client>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().map_err(|_| "the HTTP client registry is poisoned".to_string())?;
    if let Some(c) = all.get(&timeout) {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder().timeout(timeout).build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    all.insert(timeout, c.clone());
    Ok(c)
}
