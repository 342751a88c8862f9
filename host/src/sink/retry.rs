//! What is transient at a target is decided here: connection errors,
//! timeouts, 5xx and 429 are retried with the same request (same UUID);
//! everything else is final.

use super::{SinkError, SinkStats};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The verdict on one attempt.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry(String),
    Fail(SinkError),
}

/// Classifies an HTTP status that is not a success.
pub(crate) fn status_verdict<T>(command: uuid::Uuid, status: u16, body: String) -> Attempt<T> {
    match status {
        409 => Attempt::Fail(SinkError::Conflict { command }),
        429 | 500..=599 => Attempt::Retry(format!("HTTP {status}")),
        _ => Attempt::Fail(SinkError::Rejected { command, status, body: body.chars().take(300).collect() }),
    }
}

/// Runs `attempt` until it is done, fails, or the retries run out.
pub(crate) async fn retrying<T, F, Fut>(stats: &SinkStats, command: uuid::Uuid, max_attempts: u32, mut attempt: F) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .with_max_times(max_attempts.saturating_sub(1) as usize)
        .build();
    let mut attempts = 0;
    loop {
        attempts += 1;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match attempt().await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(last) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                let Some(delay) = backoff.next() else { return Err(SinkError::Exhausted { command, attempts, last }) };
                tracing::debug!(%command, attempt = attempts, ?delay, "retrying target write with the same UUID: {last}");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins which target answers are retried.
    #[test]
    fn retry_table() {
        let id = uuid::Uuid::nil();
        for s in [429, 500, 502, 503, 504] {
            assert!(matches!(status_verdict::<()>(id, s, String::new()), Attempt::Retry(_)), "{s}");
        }
        assert!(matches!(status_verdict::<()>(id, 409, String::new()), Attempt::Fail(SinkError::Conflict { .. })));
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(matches!(status_verdict::<()>(id, s, String::new()), Attempt::Fail(SinkError::Rejected { .. })), "{s}");
        }
    }
}
