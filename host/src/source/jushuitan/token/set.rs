//! The pair a merchant's re-authorization gave, stored by hand (`ferry
//! jushuitan token set`), and the key a pipeline's token is kept under.

use super::{sortable, token_error};
use crate::credentials::{Obtained, Pair, Sealer, TokenRecord, TokenState, TokenVault};
use crate::source::jushuitan::retry::SourceError;
use crate::source::jushuitan::{ClientConfig, TokenSettings};
use jiff::Timestamp;

/// The key of a pipeline's token: `app_key/merchant`.
pub fn token_key(config: &ClientConfig, settings: &TokenSettings) -> String {
    format!("{}/{}", config.app_key, settings.merchant)
}

/// Stores a pair the merchant's re-authorization gave (`ferry jushuitan
/// token set`): it replaces whatever is stored, whatever its state, by
/// compare-and-set; returns the new generation.
pub fn set_pair(
    config: &ClientConfig,
    settings: &TokenSettings,
    vault: &dyn TokenVault,
    sealer: &Sealer,
    pair: &Pair,
    expires_at: Option<Timestamp>,
) -> Result<u64, SourceError> {
    let key = token_key(config, settings);
    let seed = super::configured(config, settings).fingerprint();
    for _ in 0..5 {
        let expected = vault.token(&key).map_err(|e| token_error(&key, e))?.map_or(0, |r| r.generation);
        let record = TokenRecord {
            key: key.clone(),
            generation: expected + 1,
            sealed: sealer.seal(&key, pair),
            expires_at: expires_at.map(sortable),
            obtained_at: sortable(Timestamp::now()),
            obtained: Obtained::Set,
            seed: seed.clone(),
            state: TokenState::Ok,
            attempted_at: None,
            answer: None,
        };
        if vault.put_token_if(&record, expected).map_err(|e| token_error(&key, e))? {
            return Ok(expected + 1);
        }
    }
    Err(token_error(&key, "the stored token kept changing while it was set".into()))
}
