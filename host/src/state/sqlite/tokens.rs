//! [`TokenVault`] on SQLite: one row per app and merchant, changed only by
//! a compare-and-set on its generation.

use super::SqliteStore;
use crate::credentials::{Obtained, TokenRecord, TokenState, TokenVault};
use rusqlite::{OptionalExtension, params};

const COLUMNS: &str = "key, generation, sealed, expires_at, obtained_at, obtained, seed, state, attempted_at, answer";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(TokenRecord {
        key: r.get(0)?,
        generation: r.get::<_, i64>(1)? as u64,
        sealed: r.get(2)?,
        expires_at: r.get(3)?,
        obtained_at: r.get(4)?,
        obtained: Obtained::parse(&text(5)?).unwrap_or(Obtained::Configured),
        seed: r.get(6)?,
        state: TokenState::parse(&text(7)?).unwrap_or(TokenState::NeedsReauthorization),
        attempted_at: r.get(8)?,
        answer: r.get(9)?,
    })
}

impl TokenVault for SqliteStore {
    fn token(&self, key: &str) -> Result<Option<TokenRecord>, String> {
        self.with(|conn| conn.query_row(&format!("SELECT {COLUMNS} FROM tokens WHERE key = ?1"), [key], row).optional()).map_err(|e| e.to_string())
    }

    fn put_token_if(&self, t: &TokenRecord, expected: u64) -> Result<bool, String> {
        let generation = expected as i64 + 1;
        let values = params![t.key, generation, t.sealed, t.expires_at, t.obtained_at, t.obtained.as_str(), t.seed, t.state.as_str(), t.attempted_at, t.answer];
        self.with(|conn| {
            let changed = if expected == 0 {
                conn.execute(&format!("INSERT INTO tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (key) DO NOTHING"), values)?
            } else {
                conn.execute(
                    "UPDATE tokens SET generation = ?2, sealed = ?3, expires_at = ?4, obtained_at = ?5, obtained = ?6, seed = ?7, state = ?8,
                     attempted_at = ?9, answer = ?10 WHERE key = ?1 AND generation = ?11",
                    params![
                        t.key,
                        generation,
                        t.sealed,
                        t.expires_at,
                        t.obtained_at,
                        t.obtained.as_str(),
                        t.seed,
                        t.state.as_str(),
                        t.attempted_at,
                        t.answer,
                        expected as i64
                    ],
                )?
            };
            Ok(changed == 1)
        })
        .map_err(|e| e.to_string())
    }
}
