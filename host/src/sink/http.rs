//! A plain HTTP sink: `POST` of `{"records": [...]}` with an
//! `Idempotency-Key: {uuid}` header; any 2xx confirms the whole batch.

use super::retry::{Attempt, retrying, status_verdict};
use super::{Delivery, SinkError, SinkStats};
use crate::state::{OutboxEntry, TaskCount};
use std::time::Duration;

/// POSTs batches to one URL.
pub struct HttpSink {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    max_attempts: u32,
    /// Counters.
    pub stats: SinkStats,
}

impl HttpSink {
    /// A sink posting to `url`.
    pub fn new(url: &str, token: Option<String>, timeout: Duration, max_attempts: u32) -> Result<Self, SinkError> {
        let http = crate::net::client(timeout).map_err(SinkError::Io)?;
        Ok(HttpSink { http, url: url.to_string(), token, max_attempts, stats: SinkStats::default() })
    }

    /// Posts one batch.
    pub async fn send(&self, entry: &OutboxEntry) -> Result<Delivery, SinkError> {
        let command = entry.command;
        retrying(&self.stats, command, self.max_attempts, || async {
            let mut req = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", command.to_string())
                .body(entry.body.clone());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Err(e) => Attempt::Retry(e.to_string()),
                Ok(r) if r.status().is_success() => Attempt::Done(()),
                Ok(r) => {
                    let status = r.status().as_u16();
                    status_verdict(command, status, r.text().await.unwrap_or_default())
                }
            }
        })
        .await?;
        let n = entry.record_ids.len() as u64;
        Ok(Delivery { count: TaskCount { failed: 0, success: n, total: n }, failed: Vec::new(), succeeded: None, replayed: false })
    }
}
