//! Access tokens as the gateway issues them (`jushuitan-api.md`, "Access
//! tokens"): a pair with a lifetime (`expires_in`), renewed by
//! `/openWeb/auth/refreshToken` only inside a window before it expires,
//! the refresh token rotated (the old one is refused afterwards), an
//! expired access token answered with code 100 and gone for good. A
//! self-built app gets a new pair from `/openWeb/auth/getInitToken`; a
//! service-provider app gets code 150 on refresh and 21024 on
//! `getInitToken`.
//!
//! Without a [`TokenPolicy`] the configured access token never expires
//! (the simulator's behaviour before tokens were modelled).
//!
//! One thing the facts leave open: the code of a refresh asked for before
//! the window opens. The simulator answers it with [`TOO_EARLY`] and keeps
//! the pair as it was.

use super::server::SimState;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The code of a refresh asked for before the refresh window (the facts do
/// not say which code the real gateway uses).
pub const TOO_EARLY: i64 = 160;

/// How the simulated gateway issues tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPolicy {
    /// Lifetime of an issued access token (its `expires_in`).
    pub lifetime: Duration,
    /// A refresh is accepted only this long before the expiry.
    pub refresh_window: Duration,
    /// A service-provider app: refresh answers 150, `getInitToken` 21024.
    pub provider: bool,
    /// A new pair is answered this long after it was issued (the old one
    /// is already gone): the gap in which a client that dies loses the
    /// pair it was given.
    pub answer_delay: Duration,
}

/// Counters of the token calls.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TokenStats {
    /// Pairs issued by a refresh.
    pub refreshed: u64,
    /// Pairs issued by `getInitToken`.
    pub initialized: u64,
    /// Refreshes refused: an old (rotated) or unknown refresh token.
    pub stale_refresh: u64,
    /// Refreshes refused before the window ([`TOO_EARLY`]).
    pub too_early: u64,
    /// Refreshes refused because the pair had expired.
    pub expired_refresh: u64,
    /// Answers with code 150 (service-provider refresh).
    pub code150: u64,
    /// Answers with code 21024 (service-provider `getInitToken`).
    pub code21024: u64,
}

/// The app's current pair.
#[derive(Debug)]
pub struct Tokens {
    policy: Option<TokenPolicy>,
    seed: u64,
    generation: u64,
    access: String,
    refresh: String,
    expires: Instant,
    pub(crate) stats: TokenStats,
}

/// What a token call answers: `Ok((access, refresh, expires_in))` or a
/// code and message.
pub type Issued = Result<(String, String, u64), (i64, String)>;

impl Tokens {
    /// The configured pair, valid for the policy's lifetime from now.
    pub fn new(policy: Option<TokenPolicy>, seed: u64, access: &str, refresh: &str) -> Tokens {
        let lifetime = policy.as_ref().map_or(Duration::from_secs(10 * 365 * 86_400), |p| p.lifetime);
        Tokens { policy, seed, generation: 0, access: access.into(), refresh: refresh.into(), expires: Instant::now() + lifetime, stats: TokenStats::default() }
    }

    /// Whether `token` is the current access token and has not expired.
    pub fn valid(&self, token: Option<&String>) -> bool {
        token == Some(&self.access) && (self.policy.is_none() || Instant::now() < self.expires)
    }

    fn issue(&mut self) -> (String, String, u64) {
        self.generation += 1;
        let lifetime = self.policy.as_ref().map_or(Duration::from_secs(86_400), |p| p.lifetime);
        self.access = format!("sim-at-{:x}-{}", self.seed, self.generation);
        self.refresh = format!("sim-rt-{:x}-{}", self.seed, self.generation);
        self.expires = Instant::now() + lifetime;
        (self.access.clone(), self.refresh.clone(), lifetime.as_secs())
    }

    /// `/openWeb/auth/refreshToken` with `refresh_token`.
    pub fn refresh(&mut self, refresh_token: Option<&String>) -> Issued {
        let provider = self.policy.as_ref().is_some_and(|p| p.provider);
        if provider {
            self.stats.code150 += 1;
            return Err((150, "需商户重新授权 (the merchant must authorize the app again)".into()));
        }
        if refresh_token != Some(&self.refresh) {
            self.stats.stale_refresh += 1;
            return Err((100, "refresh_token is invalid or already used".into()));
        }
        let now = Instant::now();
        if now >= self.expires {
            self.stats.expired_refresh += 1;
            return Err((100, "the token has expired and can no longer be refreshed; get a new one (getInitToken)".into()));
        }
        let window = self.policy.as_ref().map_or(Duration::MAX, |p| p.refresh_window);
        if self.expires.duration_since(now) > window {
            self.stats.too_early += 1;
            return Err((TOO_EARLY, format!("a refresh is allowed only in the last {}s before the token expires", window.as_secs())));
        }
        self.stats.refreshed += 1;
        Ok(self.issue())
    }

    /// `/openWeb/auth/getInitToken` (a self-built app's new pair).
    pub fn init(&mut self, code: Option<&String>) -> Issued {
        if self.policy.as_ref().is_some_and(|p| p.provider) {
            self.stats.code21024 += 1;
            return Err((21024, "getInitToken is for self-built apps; a service-provider app needs the merchant's authorization".into()));
        }
        if code.is_none_or(|c| c.chars().count() != 6) {
            return Err((140, "code: expected a 6-character string".into()));
        }
        self.stats.initialized += 1;
        Ok(self.issue())
    }
}

/// `POST /openWeb/auth/{refreshToken|getInitToken|accessToken}`: the
/// gateway's envelope, `data: {access_token, expires_in, refresh_token,
/// scope}` when a pair is issued.
pub async fn handle(State(st): State<Arc<SimState>>, Path(op): Path<String>, body: axum::body::Bytes) -> axum::Json<Value> {
    let fields: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let grant = fields.get("grant_type").map(String::as_str);
    let issued = st.token_call(&fields, |t| match (op.as_str(), grant) {
        ("refreshToken", Some("refresh_token")) => t.refresh(fields.get("refresh_token")),
        ("getInitToken", Some("authorization_code")) => t.init(fields.get("code")),
        // The merchant's authorization page is not simulated: its code is the init code.
        ("accessToken", Some("authorization_code")) => Err((140, "the merchant's authorization page is not simulated".into())),
        (_, g) => Err((140, format!("unknown token call `{op}` with grant_type {g:?}"))),
    });
    if issued.is_ok() {
        let delay = st.config().tokens.as_ref().map_or(Duration::ZERO, |p| p.answer_delay);
        tokio::time::sleep(delay).await;
    }
    axum::Json(match issued {
        Ok((access, refresh, expires_in)) => json!({"code": 0, "msg": "执行成功", "data": {
            "access_token": access, "expires_in": expires_in, "refresh_token": refresh, "scope": "all"}}),
        Err((code, msg)) => json!({"code": code, "msg": msg, "data": null}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(provider: bool) -> Option<TokenPolicy> {
        Some(TokenPolicy { lifetime: Duration::from_millis(400), refresh_window: Duration::from_millis(200), provider, answer_delay: Duration::ZERO })
    }

    #[test]
    fn refresh_only_in_the_window_and_the_old_refresh_token_is_burnt() {
        let mut t = Tokens::new(policy(false), 7, "at0", "rt0");
        assert!(t.valid(Some(&"at0".to_string())));
        assert_eq!(t.refresh(Some(&"rt0".into())).unwrap_err().0, TOO_EARLY);
        std::thread::sleep(Duration::from_millis(250));
        let (at, rt, expires_in) = t.refresh(Some(&"rt0".into())).unwrap();
        assert_eq!((expires_in, t.valid(Some(&at)), t.valid(Some(&"at0".into()))), (0, true, false), "the new token works, the old one not");
        assert_eq!(t.refresh(Some(&"rt0".into())).unwrap_err().0, 100, "a rotated refresh token is refused");
        std::thread::sleep(Duration::from_millis(450));
        assert!(!t.valid(Some(&at)), "expired");
        assert_eq!(t.refresh(Some(&rt)).unwrap_err().0, 100, "an expired pair cannot be refreshed");
        let (at2, _, _) = t.init(Some(&"abcdef".into())).unwrap();
        assert!(t.valid(Some(&at2)));
        assert_eq!(t.stats.stale_refresh + t.stats.expired_refresh + t.stats.too_early, 3);
    }

    #[test]
    fn a_service_provider_app_cannot_refresh_or_init() {
        let mut t = Tokens::new(policy(true), 7, "at0", "rt0");
        assert_eq!(t.refresh(Some(&"rt0".into())).unwrap_err().0, 150);
        assert_eq!(t.init(Some(&"abcdef".into())).unwrap_err().0, 21024);
    }
}
