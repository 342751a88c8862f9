//! The access token a client signs with, kept as state and renewed by
//! itself: ahead of its expiry (a margin before `expires_at`, bounded to
//! the API's refresh window), and once when the gateway says it is invalid
//! (code 100). The pair lives sealed in a [`TokenVault`] shared by every
//! process and worker of the app and merchant; a refresh is
//!
//! 1. **claimed** by a compare-and-set that marks the record `refreshing`
//!    (a second process waits for the first instead of burning the refresh
//!    token again),
//! 2. **called** (`/openWeb/auth/refreshToken`),
//! 3. **stored**: the rotated pair replaces the old one by a second
//!    compare-and-set before the new access token signs any call.
//!
//! A process killed between 2 and 3 leaves the record `refreshing` with a
//! pair whose refresh token the gateway has used up. The next process
//! finds the claim stale, tries that refresh token, and when the gateway
//! refuses it: a self-built app with `init_token = true` gets a new pair
//! from `getInitToken`; otherwise the record says `needs
//! re-authorization` and every run fails at once with the fix (`ferry
//! jushuitan token set`). Service-provider apps (code 150) end there too.

mod call;
mod set;

pub use set::{set_pair, token_key};

use super::client::Secret;
use super::retry::SourceError;
use crate::credentials::{Obtained, Pair, Sealer, TokenRecord, TokenState, TokenVault};
use call::Issued;
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long another process's refresh claim is waited for before it is
/// taken to have died: three of its token calls' timeouts, 5 s to 60 s.
fn claim_stale(timeout: Duration) -> Duration {
    (timeout * 3).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// How a pipeline's token is kept (`[source]`'s token keys).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The merchant the token is for (one app may serve several).
    pub merchant: String,
    /// The refresh token configured with the access token.
    pub refresh_token: Secret,
    /// When the configured access token expires, if known.
    pub expires_at: Option<Timestamp>,
    /// Refresh this long before the expiry; default a tenth of the
    /// lifetime, at most `refresh_window`.
    pub margin: Option<Duration>,
    /// How long before the expiry the API accepts a refresh.
    pub refresh_window: Duration,
    /// A self-built app may get a new pair from `getInitToken`.
    pub init_token: bool,
}

/// The pair in use and its record's generation.
#[derive(Debug, Clone)]
struct Held {
    pair: Pair,
    generation: u64,
    expires_at: Option<Timestamp>,
    obtained_at: Timestamp,
    /// After a refresh that failed for a passing reason, no new attempt
    /// ahead of expiry before this.
    retry_after: Option<Timestamp>,
}

/// A pipeline's token, renewed as it must be.
pub struct TokenKeeper {
    key: String,
    base_url: String,
    app_key: String,
    claim_stale: Duration,
    app_secret: Secret,
    settings: TokenSettings,
    vault: Arc<dyn TokenVault>,
    sealer: Sealer,
    http: reqwest::Client,
    held: Mutex<Held>,
    refreshing: tokio::sync::Mutex<()>,
}

fn sortable(t: Timestamp) -> String {
    crate::time::sortable(t)
}

fn parse(t: &str) -> Option<Timestamp> {
    t.parse().ok()
}

impl TokenKeeper {
    /// The keeper of `app_key`'s token for the settings' merchant: the
    /// stored pair, or the configured one on first use (or when the
    /// configured one changed since: a re-authorization).
    pub fn open(
        config: &super::ClientConfig,
        settings: TokenSettings,
        vault: Arc<dyn TokenVault>,
        sealer: Sealer,
        http: reqwest::Client,
    ) -> Result<TokenKeeper, SourceError> {
        let key = token_key(config, &settings);
        let configured = configured(config, &settings);
        let keeper = |held| TokenKeeper {
            key: key.clone(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            claim_stale: claim_stale(config.timeout),
            app_key: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            settings: settings.clone(),
            vault: vault.clone(),
            sealer: sealer.clone(),
            http: http.clone(),
            held: Mutex::new(held),
            refreshing: tokio::sync::Mutex::new(()),
        };
        for _ in 0..5 {
            let stored = vault.token(&key).map_err(|e| token_error(&key, format!("cannot read the stored token: {e}")))?;
            let expected = match &stored {
                Some(r) if r.seed == configured.fingerprint() && r.state == TokenState::NeedsReauthorization => {
                    return Err(reauthorize(&key, r.answer.as_deref()));
                }
                Some(r) if r.seed == configured.fingerprint() => {
                    let pair = sealer.open(&key, &r.sealed).map_err(|e| token_error(&key, e))?;
                    let held = Held {
                        pair,
                        generation: r.generation,
                        expires_at: r.expires_at.as_deref().and_then(parse),
                        obtained_at: Timestamp::now(),
                        retry_after: None,
                    };
                    return Ok(keeper(held));
                }
                Some(r) => {
                    tracing::info!(token = %key, "the configured token pair changed since it was stored (a re-authorization): it replaces the stored one");
                    r.generation
                }
                None => 0,
            };
            let now = Timestamp::now();
            let record = TokenRecord {
                key: key.clone(),
                generation: expected + 1,
                sealed: sealer.seal(&key, &configured),
                expires_at: settings.expires_at.map(sortable),
                obtained_at: sortable(now),
                obtained: Obtained::Configured,
                seed: configured.fingerprint(),
                state: TokenState::Ok,
                attempted_at: None,
                answer: None,
            };
            if vault.put_token_if(&record, expected).map_err(|e| token_error(&key, format!("cannot store the token: {e}")))? {
                let held = Held { pair: configured.clone(), generation: expected + 1, expires_at: settings.expires_at, obtained_at: now, retry_after: None };
                return Ok(keeper(held));
            }
            // Another process stored it meanwhile: read theirs.
        }
        Err(token_error(&key, "the stored token kept changing while this process read it".into()))
    }

    /// The app and merchant (`app_key/merchant`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The access token to sign with, refreshed first when its expiry is
    /// within the margin; and the generation it came from.
    pub async fn access(&self) -> Result<(Secret, u64), SourceError> {
        let (retry_ok, seen) = {
            let h = self.held.lock().expect("token lock");
            (h.retry_after.is_none_or(|at| Timestamp::now() >= at), h.generation)
        };
        if retry_ok && self.due() {
            // Calls in flight together all find the token due; the first
            // refreshes it, the others find a newer generation and use it.
            self.refresh(Some(seen)).await?;
        }
        let h = self.held.lock().expect("token lock");
        Ok((Secret::new(h.pair.access.clone()), h.generation))
    }

    /// How long until the token is due for a refresh ahead of its expiry
    /// (zero when it is; `None` when its expiry is unknown).
    pub fn until_due(&self) -> Option<Duration> {
        let h = self.held.lock().expect("token lock");
        let due = h.expires_at? - self.margin(&h);
        Some(due.duration_since(Timestamp::now()).try_into().unwrap_or(Duration::ZERO))
    }

    /// Refreshes now, whatever the expiry (`ferry jushuitan token
    /// refresh`), unless another process just did.
    pub async fn refresh_now(&self) -> Result<(), SourceError> {
        self.refresh(None).await
    }

    /// After the gateway refused the token of `generation` (code 100):
    /// renews it once, unless another process already did.
    pub async fn renew(&self, generation: u64) -> Result<(), SourceError> {
        self.refresh(Some(generation)).await
    }

    /// Whether the held token is within the margin of its expiry.
    fn due(&self) -> bool {
        let h = self.held.lock().expect("token lock");
        h.expires_at.is_some_and(|at| Timestamp::now() + self.margin(&h) >= at)
    }

    fn margin(&self, h: &Held) -> SignedDuration {
        let s = &self.settings;
        let lifetime = h.expires_at.map_or(Duration::ZERO, |at| at.duration_since(h.obtained_at).unsigned_abs());
        let margin = s.margin.unwrap_or(lifetime / 10).min(s.refresh_window);
        SignedDuration::try_from(margin).unwrap_or(SignedDuration::ZERO)
    }

    /// Refreshes (see the module doc): `refused` is the generation found
    /// refused by the gateway or due (nothing to do once it is replaced),
    /// `None` for a refresh whatever the expiry.
    async fn refresh(&self, refused: Option<u64>) -> Result<(), SourceError> {
        let _one = self.refreshing.lock().await;
        if refused.is_some_and(|g| g != self.held.lock().expect("token lock").generation) {
            return Ok(()); // renewed since that call was signed
        }
        // Conflicting writes are retried a few times; another process's
        // claim is waited for until it is stale.
        let deadline = std::time::Instant::now() + self.claim_stale * 2;
        let mut conflicts = 0;
        while std::time::Instant::now() < deadline && conflicts < 20 {
            let record = self.vault.token(&self.key).map_err(|e| token_error(&self.key, format!("cannot read the stored token: {e}")))?;
            let Some(record) = record else { return Err(token_error(&self.key, "the stored token is gone".into())) };
            let mine = self.held.lock().expect("token lock").generation;
            if record.state == TokenState::NeedsReauthorization {
                return Err(reauthorize(&self.key, record.answer.as_deref()));
            }
            let claimed_elsewhere = record.state == TokenState::Refreshing
                && record.attempted_at.as_deref().and_then(parse).is_some_and(|at| Timestamp::now().duration_since(at).unsigned_abs() < self.claim_stale);
            if record.generation != mine && record.state == TokenState::Ok {
                // Someone refreshed (or set) it: use theirs.
                self.adopt(&record)?;
                if refused.is_some() || !self.due() {
                    return Ok(());
                }
                conflicts += 1;
                continue;
            }
            if claimed_elsewhere {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            if record.state == TokenState::Refreshing {
                tracing::warn!(token = %self.key, "a refresh of this token was claimed and not finished (its process died?); trying its refresh token");
            }
            // Claim.
            let pair = self.sealer.open(&self.key, &record.sealed).map_err(|e| token_error(&self.key, e))?;
            let now = Timestamp::now();
            let claim = TokenRecord { state: TokenState::Refreshing, attempted_at: Some(sortable(now)), ..record.clone() };
            if !self.vault.put_token_if(&claim, record.generation).map_err(|e| token_error(&self.key, e))? {
                conflicts += 1;
                continue;
            }
            let claimed = record.generation + 1;
            let answer = self.call("/openWeb/auth/refreshToken", &[("grant_type", "refresh_token"), ("refresh_token", &pair.refresh), ("scope", "all")]).await;
            let answer = match answer {
                Err(SourceError::Refused { code: 100, .. }) if self.settings.init_token => {
                    tracing::warn!(token = %self.key, "the refresh token was refused (expired or used up); getting a new pair with getInitToken");
                    let code = format!("{:06}", now.as_millisecond().rem_euclid(1_000_000));
                    self.call("/openWeb/auth/getInitToken", &[("grant_type", "authorization_code"), ("code", &code)]).await.map(|i| (i, Obtained::Initialized))
                }
                other => other.map(|i| (i, Obtained::Refreshed)),
            };
            return self.settle(claim, claimed, answer);
        }
        Err(token_error(&self.key, "could not refresh: the stored token kept changing, or another process's refresh did not end".into()))
    }

    /// Stores what the refresh came to, releasing the claim.
    fn settle(&self, claim: TokenRecord, claimed: u64, answer: Result<(Issued, Obtained), SourceError>) -> Result<(), SourceError> {
        let now = Timestamp::now();
        let (record, result) = match answer {
            Ok((issued, how)) => {
                let pair = Pair { access: issued.access_token, refresh: issued.refresh_token };
                let expires_at = now + SignedDuration::from_secs(issued.expires_in.max(0));
                tracing::info!(token = %self.key, obtained = how.as_str(), expires_at = %expires_at, "access token renewed");
                metrics::counter!("ferry_token_refreshes_total", "outcome" => "renewed").increment(1);
                let r = TokenRecord {
                    sealed: self.sealer.seal(&self.key, &pair),
                    expires_at: Some(sortable(expires_at)),
                    obtained_at: sortable(now),
                    obtained: how,
                    state: TokenState::Ok,
                    answer: Some("renewed".into()),
                    ..claim
                };
                *self.held.lock().expect("token lock") =
                    Held { pair, generation: claimed + 1, expires_at: Some(expires_at), obtained_at: now, retry_after: None };
                (r, Ok(()))
            }
            Err(e) => {
                let code = match &e {
                    SourceError::Refused { code, .. } => Some(*code),
                    _ => None,
                };
                metrics::counter!("ferry_token_refreshes_total", "outcome" => "refused").increment(1);
                let said = e.to_string();
                match code {
                    // 150: a service-provider app; 100: the pair expired or was used up.
                    Some(150 | 100 | 21024) => {
                        let r = TokenRecord { state: TokenState::NeedsReauthorization, answer: Some(said.clone()), ..claim };
                        (r, Err(reauthorize(&self.key, Some(&said))))
                    }
                    // Anything else (too early, the network): the pair stays as it was.
                    _ => {
                        tracing::warn!(token = %self.key, "the token refresh failed; the current token is used while it lasts: {said}");
                        let r = TokenRecord { state: TokenState::Ok, answer: Some(said), ..claim };
                        let mut h = self.held.lock().expect("token lock");
                        let left = h.expires_at.map_or(SignedDuration::from_mins(1), |at| at.duration_since(now));
                        h.retry_after = Some(now + (left / 4).clamp(SignedDuration::from_secs(1), SignedDuration::from_mins(10)));
                        let still = h.expires_at.is_none_or(|at| now < at);
                        (r, if still { Ok(()) } else { Err(e) })
                    }
                }
            }
        };
        record.seconds_left(); // the expiry gauge
        if !self.vault.put_token_if(&record, claimed).map_err(|e| token_error(&self.key, e))? {
            tracing::error!(token = %self.key, "another process took over this token's refresh claim; its record wins");
        } else if record.state == TokenState::Ok {
            self.held.lock().expect("token lock").generation = claimed + 1;
        }
        result
    }

    fn adopt(&self, r: &TokenRecord) -> Result<(), SourceError> {
        let pair = self.sealer.open(&self.key, &r.sealed).map_err(|e| token_error(&self.key, e))?;
        let obtained_at = parse(&r.obtained_at).unwrap_or_else(Timestamp::now);
        *self.held.lock().expect("token lock") =
            Held { pair, generation: r.generation, expires_at: r.expires_at.as_deref().and_then(parse), obtained_at, retry_after: None };
        Ok(())
    }
}

/// The pair the pipeline file's `${ENV}` values give (what a stored record
/// remembers as its seed).
fn configured(config: &super::ClientConfig, settings: &TokenSettings) -> Pair {
    Pair { access: config.access_token.expose().to_string(), refresh: settings.refresh_token.expose().to_string() }
}

fn token_error(key: &str, what: String) -> SourceError {
    SourceError::Token { key: key.to_string(), what, fix: "see `ferry jushuitan token status PIPELINE`".into() }
}

fn reauthorize(key: &str, answer: Option<&str>) -> SourceError {
    SourceError::Token {
        key: key.to_string(),
        what: format!("needs re-authorization (the last refresh was answered: {})", answer.unwrap_or("nothing recorded")),
        fix: "the merchant authorizes the app again in the Jushuitan open platform; then store the new pair with \
              `ferry jushuitan token set PIPELINE` (or, for a self-built app, set `init_token = true` under [source])"
            .into(),
    }
}
