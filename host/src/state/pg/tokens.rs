//! [`TokenVault`] on PostgreSQL: one row per app and merchant, shared by
//! every process and worker on the database, changed only by a
//! compare-and-set on its generation (one refresh wins a race).

use super::PgStore;
use crate::credentials::{Obtained, TokenRecord, TokenState, TokenVault};

const COLUMNS: &str = "key, generation, sealed, expires_at, obtained_at, obtained, seed, state, attempted_at, answer";

fn row(r: &postgres::Row) -> TokenRecord {
    TokenRecord {
        key: r.get(0),
        generation: r.get::<_, i64>(1) as u64,
        sealed: r.get(2),
        expires_at: r.get(3),
        obtained_at: r.get(4),
        obtained: Obtained::parse(r.get(5)).unwrap_or(Obtained::Configured),
        seed: r.get(6),
        state: TokenState::parse(r.get(7)).unwrap_or(TokenState::NeedsReauthorization),
        attempted_at: r.get(8),
        answer: r.get(9),
    }
}

impl TokenVault for PgStore {
    fn token(&self, key: &str) -> Result<Option<TokenRecord>, String> {
        let key = key.to_string();
        self.call(move |c| Ok(c.query_opt(&format!("SELECT {COLUMNS} FROM tokens WHERE key = $1"), &[&key])?.map(|r| row(&r)))).map_err(|e| e.to_string())
    }

    fn put_token_if(&self, t: &TokenRecord, expected: u64) -> Result<bool, String> {
        let t = t.clone();
        let (generation, expected) = (expected as i64 + 1, expected as i64);
        self.call(move |c| {
            let (obtained, state) = (t.obtained.as_str(), t.state.as_str());
            let changed = if expected == 0 {
                c.execute(
                    &format!("INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (key) DO NOTHING"),
                    &[&t.key, &generation, &t.sealed, &t.expires_at, &t.obtained_at, &obtained, &t.seed, &state, &t.attempted_at, &t.answer],
                )?
            } else {
                c.execute(
                    "UPDATE tokens SET generation = $2, sealed = $3, expires_at = $4, obtained_at = $5, obtained = $6, seed = $7, state = $8,
                     attempted_at = $9, answer = $10 WHERE key = $1 AND generation = $11",
                    &[&t.key, &generation, &t.sealed, &t.expires_at, &t.obtained_at, &obtained, &t.seed, &state, &t.attempted_at, &t.answer, &expected],
                )?
            };
            Ok(changed == 1)
        })
        .map_err(|e| e.to_string())
    }
}
