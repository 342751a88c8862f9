//! The metadata block fitted to its API's profile: which profile the
//! block's `api` picks (or the one it describes itself), and the paging
//! mode and window a pipeline may ask of it. Errors name the key.

use super::metadata::{Metadata, Request};
use super::profile::{self, Cursor, Profile};
use std::time::Duration;

impl Metadata {
    /// The API's profile, with the block's list key and cursor where it
    /// gives them; an API with no profile needs at least `list`.
    pub(super) fn profile(&self) -> Result<(Profile, String, Cursor), String> {
        let cursor = match self.cursor.as_deref() {
            None => None,
            Some("start_ts") => Some(Cursor::StartTs),
            Some("ts") => Some(Cursor::Ts),
            Some("none") => Some(Cursor::None),
            Some(other) => return Err(format!("metadata.cursor: expected start_ts, ts or none, got `{other}`")),
        };
        let profile = profile::find(&self.api);
        let base = match (profile, &self.list) {
            (Some(p), _) => *p,
            (None, Some(_)) => Profile {
                api: "",
                object: "records",
                list_key: "",
                id: "id",
                unique: &[],
                max_page: super::metadata::MAX_PAGE_SIZE,
                cursor: Cursor::None,
                max_span: super::planner::MAX_WINDOW,
                id_filters: &[],
            },
            (None, None) => {
                return Err(format!(
                    "metadata.api: Ferry has no profile of `{}` (known: {}); give its list key as metadata.list (and its id as metadata.id) to read it anyway",
                    self.api,
                    profile::known()
                ));
            }
        };
        if let (Some(p), Some(c)) = (profile, cursor)
            && c != p.cursor
            && c != Cursor::None
        {
            return Err(format!("metadata.cursor: {} has no `{}` cursor ({})", p.api, c.param().unwrap_or("none"), p.cursor.param().unwrap_or("it has none")));
        }
        let list = self.list.clone().unwrap_or_else(|| base.list_key.to_string());
        if profile.is_none() && self.id.is_none() {
            return Err(format!("metadata.id: required for `{}`, which Ferry has no profile of", self.api));
        }
        Ok((base, list, cursor.unwrap_or(base.cursor)))
    }
}

impl Request {
    /// The paging mode and window a pipeline asks for, as this API can
    /// honour them: a cursor on an API without one is refused, the default
    /// follows the API (`ts` where it has a cursor, else `page`), and a
    /// window longer than the API takes is refused. Errors name the key.
    pub fn settle(&self, paging: Option<super::PagingMode>, window: Duration) -> Result<super::PagingMode, String> {
        use super::PagingMode;
        let mode = match (paging, self.cursor) {
            (Some(PagingMode::Ts), Cursor::None) => {
                return Err(format!("source.paging: {} has no row-version cursor; use paging = \"page\" (the default for it)", self.api));
            }
            (Some(m), _) => m,
            (None, Cursor::None) => PagingMode::Page,
            (None, _) => PagingMode::Ts,
        };
        if window > self.max_span || window < Duration::from_secs(1) {
            let span = self.max_span.as_secs();
            let limit = match span {
                s if s % 86_400 == 0 => format!("{} days", s / 86_400),
                s if s % 3600 == 0 => format!("{} hours", s / 3600),
                _ => humantime::format_duration(self.max_span).to_string(),
            };
            return Err(format!("source.window: expected 1s to {limit} ({}'s limit), got {}", self.api, humantime::format_duration(window)));
        }
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn compile(meta: Value) -> Result<(Request, Vec<String>), String> {
        serde_json::from_value::<Metadata>(meta).map_err(|e| e.to_string())?.compile()
    }

    /// The `api` picks the profile: its list key, id, cursor and page
    /// limit; what the profile cannot honour is clamped or refused, naming
    /// the key; an API with no profile needs its list key and id.
    #[test]
    fn the_api_picks_its_profile() {
        let (stock, warnings) = compile(json!({"api": "inventory.query", "pagination": {"pageSize": 200}})).unwrap();
        assert_eq!(
            (stock.list_key.as_str(), stock.id_field.as_str(), stock.row_key.as_deref(), stock.page_size),
            ("inventorys", "sku_id", Some("wms_co_id"), 100)
        );
        assert_eq!(stock.cursor, Cursor::Ts);
        assert!(warnings.iter().any(|w| w.contains("pageSize = 200") && w.contains("inventory.query")), "{warnings:?}");
        let (sales, _) = compile(json!({"api": "orders.single.query", "id": "so_id"})).unwrap();
        assert_eq!((sales.list_key.as_str(), sales.id_field.as_str(), sales.page_size), ("orders", "so_id", 50));
        let (out, _) = compile(json!({"api": "orders.out.simple.query"})).unwrap();
        assert_eq!((out.id_field.as_str(), out.row_key.as_deref()), ("o_id", Some("io_id")), "the seed's id by default");
        let unknown = compile(json!({"api": "orders.secret.query"})).unwrap_err();
        assert!(unknown.contains("metadata.api") && unknown.contains("sku.query") && unknown.contains("metadata.list"), "{unknown}");
        assert!(compile(json!({"api": "orders.secret.query", "list": "rows"})).unwrap_err().contains("metadata.id"));
        let (own, _) = compile(json!({"api": "orders.secret.query", "list": "rows", "id": "rid", "cursor": "start_ts"})).unwrap();
        assert_eq!((own.list_key.as_str(), own.cursor, own.path()), ("rows", Cursor::StartTs, "/open/orders/secret/query".to_string()));
        let cursor = compile(json!({"api": "sku.query", "cursor": "start_ts"})).unwrap_err();
        assert!(cursor.contains("metadata.cursor") && cursor.contains("sku.query"), "{cursor}");
        let ids = "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21";
        let many =
            compile(json!({"api": "orders.single.query", "request": [{"field": "so_ids", "value": ids, "parser": {"name": "StringToArray"}}]})).unwrap_err();
        assert!(many.contains("so_ids") && many.contains("at most 20") && many.contains("21"), "{many}");
    }

    /// Paging and window follow the API: no cursor means page mode (and
    /// `ts` is refused); a window longer than the API takes is refused.
    #[test]
    fn paging_and_window_follow_the_api() {
        use super::super::PagingMode;
        let day = Duration::from_secs(86_400);
        let (items, _) = compile(json!({"api": "sku.query"})).unwrap();
        assert_eq!(items.settle(None, Duration::from_secs(3600)), Ok(PagingMode::Page));
        assert!(items.settle(Some(PagingMode::Ts), Duration::from_secs(3600)).unwrap_err().contains("source.paging"));
        assert!(items.settle(None, day).unwrap_err().contains("source.window: expected 1s to 12 hours"));
        let (out, _) = compile(json!({"api": "orders.out.simple.query"})).unwrap();
        assert_eq!((out.settle(None, day), out.settle(Some(PagingMode::Page), day)), (Ok(PagingMode::Ts), Ok(PagingMode::Page)));
        assert!(out.settle(None, 8 * day).unwrap_err().contains("7 days"));
    }
}
