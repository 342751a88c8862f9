//! What differs between the Jushuitan APIs integrators sync
//! (`../shared/jushuitan-api.md`, "The other objects integrators sync"):
//! path, list key, the fields that name one row, the largest page, the
//! row-version cursor (if any), the longest `modified` window and the
//! id-list filters with their limits. Signing, limits and the envelope are
//! the same for all, so one client and one paging engine serve every
//! object; the metadata block's `api` picks the profile and nothing else
//! in the host knows which object it reads.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
