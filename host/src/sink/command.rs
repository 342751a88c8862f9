//! The Command-pattern sink: `PUT {base}/{resource}/{uuid}`, retried with
//! the same UUID; `GET` until `completedAt`; failed tasks from `/tasks`.

use super::retry::{Attempt, retrying, status_verdict};
use super::{Delivery, FailedTask, SinkError, SinkStats};
use crate::state::{OutboxEntry, TaskCount};
use serde::Deserialize;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Polls of a completed command whose `taskCount` does not add up, before
/// its tasks are read record by record.
const SETTLE_POLLS: u32 = 3;

/// A command's `taskCount`, if it reads as one.
fn task_count(resource: &Value) -> Option<TaskCount> {
    resource.get("taskCount").and_then(|c| TaskCount::deserialize(c).ok())
}

/// Whether a command's `taskCount` adds up for the `sent` records.
fn adds_up(resource: &Value, sent: u64) -> bool {
    task_count(resource).is_some_and(|c| c.adds_up(sent))
}

/// Writes to a Command-pattern target.
pub struct CommandSink {
    http: reqwest::Client,
    base_url: String,
    resource: String,
    token: Option<String>,
    max_attempts: u32,
    completion_timeout: Duration,
    /// Counters.
    pub stats: SinkStats,
}

impl CommandSink {
    /// A sink for `{base_url}/{resource}/{uuid}`.
    pub fn new(
        base_url: &str,
        resource: &str,
        token: Option<String>,
        timeout: Duration,
        max_attempts: u32,
        completion_timeout: Duration,
    ) -> Result<Self, SinkError> {
        let http = crate::net::client(timeout).map_err(SinkError::Io)?;
        Ok(CommandSink {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            resource: resource.trim_matches('/').to_string(),
            token,
            max_attempts,
            completion_timeout,
            stats: SinkStats::default(),
        })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn get_json(&self, command: uuid::Uuid, url: &str) -> Result<Value, SinkError> {
        retrying(&self.stats, command, self.max_attempts, || async {
            match self.auth(self.http.get(url)).send().await {
                Err(e) => Attempt::Retry(e.to_string()),
                Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                    Ok(v) => Attempt::Done(v),
                    Err(e) => Attempt::Retry(format!("unreadable answer: {e}")),
                },
                Ok(r) => {
                    let status = r.status().as_u16();
                    status_verdict(command, status, r.text().await.unwrap_or_default())
                }
            }
        })
        .await
    }

    /// Sends (or re-sends) one command and waits for its outcome.
    pub async fn send(&self, entry: &OutboxEntry) -> Result<Delivery, SinkError> {
        let command = entry.command;
        let url = format!("{}/{}/{}", self.base_url, self.resource, command);
        let (status, mut resource) = retrying(&self.stats, command, self.max_attempts, || async {
            let req = self.auth(self.http.put(&url)).header(reqwest::header::CONTENT_TYPE, "application/json").body(entry.body.clone());
            match req.send().await {
                Err(e) => Attempt::Retry(e.to_string()),
                Ok(r) if r.status().is_success() => {
                    let status = r.status().as_u16();
                    match r.json::<Value>().await {
                        Ok(v) => Attempt::Done((status, v)),
                        Err(e) => Attempt::Retry(format!("unreadable answer: {e}")),
                    }
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    status_verdict(command, status, r.text().await.unwrap_or_default())
                }
            }
        })
        .await?;
        let replayed = status == 200;
        if replayed {
            self.stats.replays.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut poll = Duration::from_millis(20);
        let sent = entry.record_ids.len() as u64;
        let mut settling = SETTLE_POLLS;
        loop {
            let done = resource.get("completedAt").is_some_and(|v| !v.is_null());
            // A count that does not add up may still be settling: ask again
            // a few times before reading the tasks record by record.
            if done && (adds_up(&resource, sent) || settling == 0) {
                break;
            }
            if done {
                settling -= 1;
            }
            if started.elapsed() > self.completion_timeout {
                return Err(SinkError::Exhausted { command, attempts: 0, last: format!("not completed within {:?}", self.completion_timeout) });
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(Duration::from_secs(1));
            resource = self.get_json(command, &url).await?;
        }
        let count: TaskCount = TaskCount::deserialize(resource.get("taskCount").unwrap_or(&Value::Null)).map_err(|e| SinkError::Rejected {
            command,
            status,
            body: format!("taskCount unreadable: {e}"),
        })?;
        let (mut failed, mut succeeded) = (Vec::new(), None);
        if count.failed > 0 || !count.adds_up(sent) {
            let tasks = self.get_json(command, &format!("{url}/tasks")).await?;
            let mut ok = Vec::new();
            for t in tasks.get("tasks").and_then(Value::as_array).into_iter().flatten() {
                // `recordId` comes as text or as a number.
                let record_id = t.get("recordId").filter(|v| !v.is_null()).cloned().map(crate::fields::text);
                match t.get("status").and_then(Value::as_str) {
                    Some("FAILED") => failed.push(FailedTask {
                        record_id,
                        message: match t.get("message") {
                            Some(Value::String(m)) => m.clone(),
                            None | Some(Value::Null) => "failed without a message".to_string(),
                            Some(other) => other.to_string(),
                        },
                    }),
                    Some("SUCCESS") => ok.extend(record_id),
                    _ => {}
                }
            }
            succeeded = Some(ok);
        }
        Ok(Delivery { count, failed, succeeded, replayed })
    }
}
