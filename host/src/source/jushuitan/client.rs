//! The HTTP client of the new gateway: signed form requests under the
//! shared rate limiter, with retries and backoff (backon) decided by
//! `retry`. Secrets never reach a log line or an error message.

use super::ratelimit::{Budget, SharedBudget};
use super::retry::{Answer, Cause, SourceError, Verdict, classify_body, classify_status, classify_transport};
use super::sign;
use backon::{BackoffBuilder, ExponentialBuilder};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A secret value: `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How to reach one Jushuitan app.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Gateway base, e.g. `https://openapi.jushuitan.com`.
    pub base_url: String,
    /// The app's key.
    pub app_key: String,
    /// The app's secret.
    pub app_secret: Secret,
    /// The access token.
    pub access_token: Secret,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Calls per second allowed for the app.
    pub per_second: u32,
    /// Calls per minute allowed for the app.
    pub per_minute: u32,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff delay.
    pub min_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// When set, the token is kept as state and renewed (`token`); else
    /// `access_token` is used as it is.
    pub tokens: Option<super::TokenSettings>,
}

/// Counters of the source for the run summary.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// HTTP requests sent.
    pub requests: AtomicU64,
    /// Pages received (code 0).
    pub pages: AtomicU64,
    /// Requests that had to wait for the rate limiter.
    pub rate_waits: AtomicU64,
    /// Total wait for the rate limiter, in milliseconds.
    pub rate_wait_ms: AtomicU64,
    /// Windows read again because rows shifted between pages.
    pub drift_rereads: AtomicU64,
    /// Windows split in half after repeated drift.
    pub window_splits: AtomicU64,
    /// Pages read again because their answer contradicted itself or the
    /// request (a `null` list, a short page that says has_next, rows
    /// outside the window, ...).
    pub answer_rereads: AtomicU64,
    retries: [AtomicU64; 7],
}

impl SourceStats {
    fn retried(&self, cause: Cause) {
        let i = Cause::ALL.iter().position(|c| *c == cause).expect("known cause");
        self.retries[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Retries by cause.
    pub fn retries(&self) -> Vec<(&'static str, u64)> {
        Cause::ALL.iter().zip(&self.retries).map(|(c, n)| (c.name(), n.load(Ordering::Relaxed))).collect()
    }

    /// All retries.
    pub fn total_retries(&self) -> u64 {
        self.retries.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// A client of one app.
pub struct JushuitanClient {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: Budget,
    tokens: Option<Arc<super::TokenKeeper>>,
    /// Counters.
    pub stats: Arc<SourceStats>,
}

impl JushuitanClient {
    /// A client; the rate limiter is shared with every other client of the
    /// same app_key in this process, or, given a `shared` budget, with
    /// every process that draws on it.
    pub fn new(config: ClientConfig, shared: Option<Arc<dyn SharedBudget>>) -> Result<Self, SourceError> {
        let http = crate::net::client(config.timeout).map_err(SourceError::Protocol)?;
        let limiter = Budget::new(&config.app_key, config.per_second, config.per_minute, shared);
        Ok(JushuitanClient { http, config, limiter, tokens: None, stats: Arc::new(SourceStats::default()) })
    }

    /// Keeps the token in `vault` and renews it, when the config asks for
    /// it (`tokens`); the pair is sealed with the key in `FERRY_TOKEN_KEY`,
    /// and without that key this refuses, saying how to set it.
    pub fn with_tokens(mut self, vault: Arc<dyn crate::credentials::TokenVault>) -> Result<Self, SourceError> {
        let Some(settings) = self.config.tokens.clone() else { return Ok(self) };
        let key = format!("{}/{}", self.config.app_key, settings.merchant);
        let sealer = crate::credentials::Sealer::from_env().map_err(|what| SourceError::Token { key, what: "cannot be stored".into(), fix: what })?;
        self.tokens = Some(Arc::new(super::TokenKeeper::open(&self.config, settings, vault, sealer, self.http.clone())?));
        Ok(self)
    }

    /// The token keeper, when the token is kept as state.
    pub fn tokens(&self) -> Option<&Arc<super::TokenKeeper>> {
        self.tokens.as_ref()
    }

    /// Remembers the budget's next call slot in `memory`, so that a process
    /// that restarts does not call before it (see `ratelimit`).
    pub fn with_budget_memory(mut self, memory: Option<Arc<dyn super::ratelimit::BudgetMemory>>) -> Self {
        self.limiter = self.limiter.with_memory(memory);
        self
    }

    /// The system fields plus `biz`, signed with `access_token`.
    pub fn signed_fields(&self, biz: &Value, access_token: &Secret) -> BTreeMap<String, String> {
        let mut fields = BTreeMap::new();
        fields.insert("app_key".to_string(), self.config.app_key.clone());
        fields.insert("access_token".to_string(), access_token.expose().to_string());
        fields.insert("timestamp".to_string(), jiff::Timestamp::now().as_second().to_string());
        fields.insert("charset".to_string(), "utf-8".to_string());
        fields.insert("version".to_string(), "2".to_string());
        fields.insert("biz".to_string(), biz.to_string());
        let s = sign::sign(self.config.app_secret.expose(), &fields);
        fields.insert("sign".to_string(), s);
        fields
    }

    /// Calls `path` with `biz`, retrying transient failures; returns `data`
    /// read as `T`.
    pub async fn call<T: Answer>(&self, path: &str, biz: &Value) -> Result<T, SourceError> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_jitter()
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .build();
        let mut attempts = 0;
        // Code 100 renews the token and tries once more; code 180 tries once
        // more with a new timestamp.
        let (mut renewed, mut reclocked) = (false, false);
        loop {
            attempts += 1;
            // Held until the answer is read: the call counts as in flight till then.
            let (waited, call) = self.limiter.acquire().await;
            if waited > Duration::from_millis(2) {
                metrics::counter!("ferry_rate_limit_waits_total").increment(1);
                metrics::histogram!("ferry_rate_limit_wait_seconds").record(waited.as_secs_f64());
                self.stats.rate_waits.fetch_add(1, Ordering::Relaxed);
                self.stats.rate_wait_ms.fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (token, generation) = match &self.tokens {
                Some(k) => k.access().await?,
                None => (self.config.access_token.clone(), 0),
            };
            let sent_at = std::time::Instant::now();
            let verdict = self.attempt(path, biz, &token).await;
            drop(call);
            metrics::histogram!("ferry_source_request_seconds", "app_key" => self.config.app_key.clone()).record(sent_at.elapsed().as_secs_f64());
            match verdict {
                Verdict::Fail(SourceError::Refused { code: 100, .. }) if !renewed && self.tokens.is_some() => {
                    renewed = true;
                    tracing::info!("the gateway refused the access token (code 100); renewing it and trying once more");
                    self.tokens.as_ref().expect("checked").renew(generation).await?;
                }
                Verdict::Fail(SourceError::Refused { code: 180, .. }) if !reclocked => {
                    reclocked = true;
                    tracing::warn!("the gateway refused the timestamp (code 180); trying once more with a new one");
                }
                Verdict::Ok(data) => {
                    metrics::counter!("ferry_source_requests_total", "outcome" => "ok").increment(1);
                    self.stats.pages.fetch_add(1, Ordering::Relaxed);
                    return Ok(data);
                }
                Verdict::Fail(e) => {
                    metrics::counter!("ferry_source_requests_total", "outcome" => "failed").increment(1);
                    return Err(e);
                }
                Verdict::Retry(cause, last) => {
                    metrics::counter!("ferry_source_requests_total", "outcome" => "retried").increment(1);
                    metrics::counter!("ferry_retries_total", "cause" => cause.name()).increment(1);
                    self.stats.retried(cause);
                    let Some(delay) = backoff.next() else { return Err(SourceError::Exhausted { attempts, cause, last }) };
                    tracing::debug!(cause = cause.name(), attempt = attempts, ?delay, "retrying Jushuitan call: {last}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt<T: Answer>(&self, path: &str, biz: &Value, token: &Secret) -> Verdict<T> {
        let fields = self.signed_fields(biz, token);
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish();
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), path);
        let sent = self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8").body(body).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return classify_transport(&e),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Err(e) => classify_transport(&e),
            Ok(bytes) if status == 200 => classify_body(&bytes),
            Ok(bytes) => classify_status(status, &bytes),
        }
    }
}
