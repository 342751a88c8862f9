//! The query string of a listing: `?pipeline=&status=&since=&until=&limit=&offset=`,
//! checked with messages that name the parameter and what was expected.

use super::error::ApiError;
use crate::commands::ListQuery;

/// Parses a listing's query (page size 50 by default, 1 to 500).
pub fn parse_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery { limit: 50, ..ListQuery::default() };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let number = |what: &str| v.parse::<u64>().map_err(|_| ApiError::bad(format!("{what}: expected a whole number, got `{v}`")));
        let time = |what: &str| crate::time::parse(&v).map(crate::time::sortable).map_err(|e| ApiError::bad(format!("{what}: {e}")));
        match k.as_ref() {
            "pipeline" => q.pipeline = Some(v.to_string()),
            "status" => q.status = Some(v.to_string()),
            "since" => q.since = Some(time("since")?),
            "until" => q.until = Some(time("until")?),
            "limit" => q.limit = number("limit")?.clamp(1, 500),
            "offset" => q.offset = number("offset")?,
            _ => {}
        }
    }
    Ok(q)
}
