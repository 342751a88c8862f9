//! Access tokens as state, and the seam between the source that renews
//! them and the stores that keep them: the source (in `source`) draws on
//! [`TokenVault`], the state stores (in `state`) implement it, and neither
//! layer imports the other.
//!
//! A token pair is kept **sealed**: encrypted and authenticated with
//! ChaCha20-Poly1305 under a key from the environment
//! (`FERRY_TOKEN_KEY`, 32 bytes in base64). The store sees only the sealed
//! bytes and what is not secret (expiry, when and how the pair was
//! obtained, the last refresh attempt and its answer). Without the key
//! Ferry refuses to store tokens and says how to make one.
//!
//! Every change is a compare-and-set on the record's `generation`, so of
//! two processes that race to refresh, one wins and the other reads the
//! winner's pair instead of burning the refresh token a second time.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

/// The environment variable that holds the sealing key.
pub const KEY_ENV: &str = "FERRY_TOKEN_KEY";

/// How a stored pair was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Obtained {
    /// From the pipeline's `${ENV}` values.
    Configured,
    /// From `/openWeb/auth/refreshToken`.
    Refreshed,
    /// From `/openWeb/auth/getInitToken` (a self-built app).
    Initialized,
    /// By `ferry jushuitan token set` (after a merchant re-authorized).
    Set,
}

impl Obtained {
    /// The text kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Obtained::Configured => "configured",
            Obtained::Refreshed => "refreshed",
            Obtained::Initialized => "initialized",
            Obtained::Set => "set",
        }
    }

    /// The way the store's text names.
    pub fn parse(s: &str) -> Option<Obtained> {
        [Obtained::Configured, Obtained::Refreshed, Obtained::Initialized, Obtained::Set].into_iter().find(|o| o.as_str() == s)
    }
}

/// Where a stored pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Usable (and renewable, as far as Ferry knows).
    Ok,
    /// A process is refreshing it (claimed at the record's `attempted_at`).
    Refreshing,
    /// Cannot be renewed without the merchant: a service-provider app was
    /// refused (code 150), or the pair expired or was burnt.
    NeedsReauthorization,
}

impl TokenState {
    /// The text kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Ok => "ok",
            TokenState::Refreshing => "refreshing",
            TokenState::NeedsReauthorization => "needs_reauthorization",
        }
    }

    /// The state the store's text names.
    pub fn parse(s: &str) -> Option<TokenState> {
        [TokenState::Ok, TokenState::Refreshing, TokenState::NeedsReauthorization].into_iter().find(|t| t.as_str() == s)
    }
}

/// A token record as the store keeps it: the pair sealed, the rest plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// `app_key/merchant`.
    pub key: String,
    /// Bumped by every change; the compare-and-set compares it.
    pub generation: u64,
    /// The sealed pair (nonce, then ciphertext).
    pub sealed: Vec<u8>,
    /// When the access token expires (RFC 3339), if known.
    pub expires_at: Option<String>,
    /// When the pair was obtained (RFC 3339).
    pub obtained_at: String,
    /// How.
    pub obtained: Obtained,
    /// sha256 of the configured pair it was seeded from, so a changed
    /// `${ENV}` value (a re-authorization) is noticed.
    pub seed: String,
    /// Where it stands.
    pub state: TokenState,
    /// The last refresh attempt (RFC 3339) and its answer, never a token.
    pub attempted_at: Option<String>,
    pub answer: Option<String>,
}

/// Where token records are kept (the state stores).
pub trait TokenVault: Send + Sync {
    /// The record of `key`, if any.
    fn token(&self, key: &str) -> Result<Option<TokenRecord>, String>;
    /// Stores `record` as generation `expected + 1` if the stored
    /// generation is `expected` (0: none is stored yet); whether it did.
    fn put_token_if(&self, record: &TokenRecord, expected: u64) -> Result<bool, String>;
}

impl TokenRecord {
    /// Seconds until the access token expires (negative once expired), if
    /// the expiry is known; also kept in the gauge
    /// `ferry_token_expires_in_seconds{token}`.
    pub fn seconds_left(&self) -> Option<i64> {
        let expires = self.expires_at.as_deref()?.parse::<jiff::Timestamp>().ok()?;
        let left = expires.duration_since(jiff::Timestamp::now()).as_secs();
        metrics::gauge!("ferry_token_expires_in_seconds", "token" => self.key.clone()).set(left as f64);
        Some(left)
    }
}

/// A pair in the clear (only in memory; `Debug` shows no token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pair { access: ***, refresh: *** }")
    }
}

impl Pair {
    /// sha256 of the pair, hex: what a record remembers of its seed.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(format!("{}\n{}", self.access, self.refresh)))
    }
}

/// Seals and opens pairs with the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

const NONCE_BYTES: usize = 12;

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// The sealer of the key in `FERRY_TOKEN_KEY`; without it, an error
    /// that says how to set it.
    pub fn from_env() -> Result<Sealer, String> {
        match std::env::var(KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => Sealer::from_base64(&v),
            _ => Err(format!(
                "{KEY_ENV} is not set: Ferry keeps renewed access tokens encrypted and needs a key for it; \
                 make one with `openssl rand -base64 32` (or `head -c 32 /dev/urandom | base64`), keep it like the app secret, \
                 and set {KEY_ENV} for every process that runs this pipeline"
            )),
        }
    }

    /// The sealer of a base64 key of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Sealer, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| format!("{KEY_ENV}: expected 32 bytes in base64 (e.g. from `openssl rand -base64 32`), got text that is not base64"))?;
        if bytes.len() != 32 {
            return Err(format!("{KEY_ENV}: expected 32 bytes in base64, got {} bytes", bytes.len()));
        }
        Ok(Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)) })
    }

    /// The pair, encrypted under a fresh nonce (bound to `key`, so a
    /// record cannot be moved to another app).
    pub fn seal(&self, key: &str, pair: &Pair) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(pair).expect("a pair serializes");
        let payload = chacha20poly1305::aead::Payload { msg: &plain, aad: key.as_bytes() };
        let mut out = nonce.to_vec();
        out.extend(self.cipher.encrypt(&nonce, payload).expect("encryption of a small message does not fail"));
        out
    }

    /// The pair sealed in `sealed` for `key`; an error when the key is not
    /// the one it was sealed with (or the bytes were changed).
    pub fn open(&self, key: &str, sealed: &[u8]) -> Result<Pair, String> {
        let wrong =
            || format!("the stored token of {key} cannot be decrypted with {KEY_ENV}: the key is not the one it was stored with (or the record was changed)");
        if sealed.len() <= NONCE_BYTES {
            return Err(wrong());
        }
        let (nonce, text) = sealed.split_at(NONCE_BYTES);
        let payload = chacha20poly1305::aead::Payload { msg: text, aad: key.as_bytes() };
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), payload).map_err(|_| wrong())?;
        serde_json::from_slice(&plain).map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_pairs_open_only_with_their_key_and_app() {
        let s = Sealer::from_base64(KEY).unwrap();
        let pair = Pair { access: "at-secret".into(), refresh: "rt-secret".into() };
        let sealed = s.seal("app/m", &pair);
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"), "no token in the clear");
        assert_eq!(s.open("app/m", &sealed).unwrap(), pair);
        assert!(s.open("other/m", &sealed).is_err(), "bound to its key");
        let other = Sealer::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
        let err = other.open("app/m", &sealed).unwrap_err();
        assert!(err.contains("cannot be decrypted") && !err.contains("secret"), "{err}");
        assert_ne!(s.seal("app/m", &pair), sealed, "a fresh nonce each time");
        assert_eq!(format!("{pair:?}"), "Pair { access: ***, refresh: *** }");
    }

    #[test]
    fn bad_keys_say_what_is_expected() {
        assert!(Sealer::from_base64("not base64!").unwrap_err().contains("32 bytes in base64"));
        assert!(Sealer::from_base64("AAAA").unwrap_err().contains("got 3 bytes"));
    }
}
