//! One rate budget per app_key in PostgreSQL, shared by every process on
//! the database: a GCRA "next free slot" per app_key, moved on atomically
//! by one `UPDATE` on the database's clock (so the workers' clocks don't
//! matter). Each caller reserves the next slot and sleeps until it.

use super::pool::Pool;
use crate::budget::SharedBudget;
use std::sync::Arc;
use std::time::Duration;

/// The budgets kept in one database.
pub struct PgBudget {
    pub(super) pool: Arc<Pool>,
}

impl SharedBudget for PgBudget {
    fn reserve(&self, app_key: &str, interval: Duration) -> Result<Duration, String> {
        let (key, secs) = (app_key.to_string(), interval.as_secs_f64());
        let ahead: f64 = self.pool.call(move |c| {
            c.execute("INSERT INTO rate_budgets (app_key, next_at) VALUES ($1, clock_timestamp()) ON CONFLICT DO NOTHING", &[&key])?;
            let row = c.query_one(
                "WITH t AS (SELECT clock_timestamp() AS now)
                 UPDATE rate_budgets b SET next_at = GREATEST(b.next_at, t.now) + make_interval(secs => $2), granted = b.granted + 1
                 FROM t WHERE b.app_key = $1
                 RETURNING EXTRACT(EPOCH FROM (b.next_at - t.now))::float8",
                &[&key, &secs],
            )?;
            Ok(row.get(0))
        })?;
        // `ahead` is the end of the reserved slot; the call may go at its start.
        Ok(Duration::from_secs_f64((ahead - secs).max(0.0)))
    }
}
