//! What differs between the Jushuitan APIs integrators sync
//! (`../shared/jushuitan-api.md`, "The other objects integrators sync"):
//! path, list key, the fields that name one row, the largest page, the
//! row-version cursor (if any), the longest `modified` window and the
//! id-list filters with their limits. Signing, limits and the envelope are
//! the same for all, so one client and one paging engine serve every
//! object; the metadata block's `api` picks the profile and nothing else
//! in the host knows which object it reads.

use super::metadata::{Metadata, Request};
use std::time::Duration;

/// The row-version cursor an API takes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// `start_ts` (with `is_get_total=false`), compared with `>=`.
    StartTs,
    /// `ts`, the same cursor under another name (`inventory.query`).
    Ts,
    /// None: the API is read by `modified` window and `page_index` only.
    None,
}

impl Cursor {
    /// The business parameter that carries the cursor.
    pub fn param(self) -> Option<&'static str> {
        match self {
            Cursor::StartTs => Some("start_ts"),
            Cursor::Ts => Some("ts"),
            Cursor::None => None,
        }
    }
}

/// One API's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The API name, as the metadata's `api`.
    pub api: &'static str,
    /// What it lists, for messages and the README.
    pub object: &'static str,
    /// The key of the rows in `data`.
    pub list_key: &'static str,
    /// The id integrators key on by default.
    pub id: &'static str,
    /// The fields that together name one row (the id among them).
    pub unique: &'static [&'static str],
    /// The largest `page_size` it accepts.
    pub max_page: u32,
    /// Its row-version cursor.
    pub cursor: Cursor,
    /// The longest `modified_begin`..`modified_end` it accepts.
    pub max_span: Duration,
    /// Id-list filters and how many ids each takes.
    pub id_filters: &'static [(&'static str, usize)],
}

const DAY: u64 = 24 * 3600;

/// Every API Ferry knows, as the shared facts' table lists them.
pub const PROFILES: &[Profile] = &[
    Profile {
        api: "orders.out.simple.query",
        object: "outbound orders",
        list_key: "datas",
        id: "io_id",
        unique: &["io_id"],
        max_page: 50,
        cursor: Cursor::StartTs,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("so_ids", 50), ("o_ids", 50), ("io_ids", 50)],
    },
    Profile {
        api: "orders.single.query",
        object: "sales orders",
        list_key: "orders",
        id: "o_id",
        unique: &["o_id"],
        max_page: 100,
        cursor: Cursor::StartTs,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("so_ids", 20), ("o_ids", 50)],
    },
    Profile {
        api: "refund.single.query",
        object: "after-sales refunds",
        list_key: "datas",
        id: "as_id",
        unique: &["as_id"],
        max_page: 50,
        cursor: Cursor::StartTs,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("as_ids", 50), ("o_ids", 50), ("so_ids", 50)],
    },
    Profile {
        api: "purchasein.query",
        object: "purchase receipts",
        list_key: "datas",
        id: "io_id",
        unique: &["io_id"],
        max_page: 50,
        cursor: Cursor::StartTs,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("io_ids", 50), ("po_ids", 50)],
    },
    Profile {
        api: "inventory.query",
        object: "stock per sku and warehouse",
        list_key: "inventorys",
        id: "sku_id",
        unique: &["sku_id", "wms_co_id"],
        max_page: 100,
        cursor: Cursor::Ts,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("sku_ids", 100)],
    },
    Profile {
        api: "sku.query",
        object: "items (skus)",
        list_key: "datas",
        id: "sku_id",
        unique: &["sku_id"],
        max_page: 50,
        cursor: Cursor::None,
        // "Short slices": the simulator refuses a window over 12 hours.
        max_span: Duration::from_secs(12 * 3600),
        id_filters: &[("sku_ids", 20)],
    },
    Profile {
        api: "logistic.query",
        object: "shipping (logistics)",
        list_key: "orders",
        id: "o_id",
        unique: &["o_id"],
        max_page: 50,
        cursor: Cursor::None,
        max_span: Duration::from_secs(7 * DAY),
        id_filters: &[("so_ids", 50), ("o_ids", 50)],
    },
];

/// The profile of `api`.
pub fn find(api: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.api == api)
}

/// The known API names, for an error.
pub fn known() -> String {
    PROFILES.iter().map(|p| p.api).collect::<Vec<_>>().join(", ")
}

impl Profile {
    /// The gateway path, e.g. `/open/orders/out/simple/query`.
    pub fn path(&self) -> String {
        path_of(self.api)
    }

    /// The field besides `id` that tells two rows with the same `id` apart
    /// (`io_id` when an outbound order is keyed by `o_id`; `wms_co_id` of a
    /// stock row), when the id alone does not name a row.
    pub fn row_key(&self, id: &str) -> Option<&'static str> {
        match self.unique {
            [only] if *only == id => None,
            [only] => Some(only),
            many => many.iter().find(|f| **f != id).copied(),
        }
    }

    /// The limit of the id-list filter `field`, if it is one.
    pub fn id_filter(&self, field: &str) -> Option<usize> {
        self.id_filters.iter().find(|(f, _)| *f == field).map(|(_, n)| *n)
    }
}

/// The gateway path of an API name.
pub fn path_of(api: &str) -> String {
    format!("/open/{}", api.replace('.', "/"))
}

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
        let profile = find(&self.api);
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
                    known()
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
            return Err(format!(
                "source.window: expected 1s to {} ({}'s limit), got {}",
                humantime::format_duration(self.max_span),
                self.api,
                humantime::format_duration(window)
            ));
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

    /// Every profile's path is the API's name under `/open/`, its id is one
    /// of its unique fields, and names are not repeated.
    #[test]
    fn profiles_are_consistent() {
        for p in PROFILES {
            assert!(p.unique.contains(&p.id), "{}", p.api);
            assert!(p.max_page == 50 || p.max_page == 100, "{}", p.api);
            assert_eq!(PROFILES.iter().filter(|q| q.api == p.api).count(), 1);
        }
        assert_eq!(find("orders.out.simple.query").unwrap().path(), "/open/orders/out/simple/query");
        assert_eq!(find("inventory.query").unwrap().cursor.param(), Some("ts"));
        assert!(find("orders.unknown").is_none());
    }

    /// The row key: none when the id names a row; the other field when not.
    #[test]
    fn row_keys() {
        let out = find("orders.out.simple.query").unwrap();
        assert_eq!((out.row_key("io_id"), out.row_key("o_id")), (None, Some("io_id")));
        let stock = find("inventory.query").unwrap();
        assert_eq!((stock.row_key("sku_id"), stock.row_key("wms_co_id")), (Some("wms_co_id"), Some("sku_id")));
        assert_eq!(find("orders.single.query").unwrap().id_filter("so_ids"), Some(20));
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
        assert!(items.settle(None, day).unwrap_err().contains("source.window: expected 1s to 12h"));
        let (out, _) = compile(json!({"api": "orders.out.simple.query"})).unwrap();
        assert_eq!((out.settle(None, day), out.settle(Some(PagingMode::Page), day)), (Ok(PagingMode::Ts), Ok(PagingMode::Page)));
        assert!(out.settle(None, 8 * day).unwrap_err().contains("7days"));
    }
}
