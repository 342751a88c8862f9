//! Settings of the Jushuitan simulator.

use jiff::Timestamp;
use std::time::Duration;

/// Probabilities (0..1) of each fault per request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer HTTP 500.
    pub http500: f64,
    /// Answer only after `slow_delay` (past the client's timeout).
    pub slow: f64,
    /// Close the connection mid-answer.
    pub reset: f64,
    /// Answer with the JSON cut in half.
    pub truncated: f64,
    /// How late a slow answer comes.
    pub slow_delay: Duration,
}

/// Changes made after each accepted request, as the real shop keeps selling.
#[derive(Debug, Clone, Default)]
pub struct Mutation {
    /// Expected number of existing orders that get a new `modified`/`ts`
    /// (and sometimes a new qty/price) per accepted request.
    pub changes_per_request: f64,
    /// Expected number of new orders per accepted request.
    pub new_per_request: f64,
    /// Expected number of late orders per accepted request: new, but
    /// modified `late_by` ago, so only a re-read of that past finds them.
    pub late_per_request: f64,
    /// How long before they appear late orders were modified.
    pub late_by: std::time::Duration,
}

/// The whole simulator configuration.
#[derive(Debug, Clone)]
pub struct JushuitanSimConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// How many orders exist at start.
    pub orders: usize,
    /// Their `modified` times spread over `[from, until]`.
    pub from: Timestamp,
    /// See `from`.
    pub until: Timestamp,
    /// The first order's `o_id` (the others follow); merchants of one
    /// simulator process each have their own range.
    pub first_o_id: u64,
    /// The app's key.
    pub app_key: String,
    /// The app's secret (sign prefix).
    pub app_secret: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token issued with it.
    pub refresh_token: String,
    /// How tokens expire and renew; `None`: the access token never expires.
    pub tokens: Option<super::TokenPolicy>,
    /// Calls per second per app_key (code 199 beyond).
    pub per_second: u32,
    /// Calls per minute per app_key (code 200 beyond).
    pub per_minute: u32,
    /// Allowed clock skew of `timestamp`.
    pub clock_tolerance: Duration,
    /// Faults.
    pub faults: Faults,
    /// Mutation while syncing.
    pub mutation: Mutation,
    /// Answers as they really come: spellings and lies (`quirks`).
    pub quirks: Vec<super::QuirkRule>,
}

impl JushuitanSimConfig {
    /// Defaults: 1,000 orders over the last three days, limits 5/s and
    /// 100/min, no faults, no mutation.
    pub fn new(seed: u64) -> Self {
        let now = Timestamp::now();
        JushuitanSimConfig {
            seed,
            orders: 1000,
            from: now - jiff::SignedDuration::from_hours(72),
            until: now - jiff::SignedDuration::from_mins(10),
            first_o_id: 10_000_001,
            app_key: "ferry-demo-app".into(),
            app_secret: "ferry-demo-secret".into(),
            access_token: "ferry-demo-token".into(),
            refresh_token: "ferry-demo-refresh".into(),
            tokens: None,
            per_second: 5,
            per_minute: 100,
            clock_tolerance: Duration::from_secs(600),
            faults: Faults { slow_delay: Duration::from_secs(3), ..Faults::default() },
            mutation: Mutation::default(),
            quirks: Vec::new(),
        }
    }
}
