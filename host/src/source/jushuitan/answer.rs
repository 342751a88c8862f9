//! One page's `data` as the API really sends it, and what it proves.
//!
//! The list may be missing, `null` or of the wrong type; `has_next` comes as
//! a bool, 0/1, `"true"`/`"1"` or not at all; counts may be numbers or text.
//! Reading keeps each of these apart (nothing collapses to "empty"), so the
//! paging rules in `paging` can tell an honest end from an answer that
//! contradicts itself or the request.

use super::retry::Answer;
use super::row::Row;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// The page's list of rows, as it came.
#[derive(Debug, Default)]
pub enum List {
    /// The key was absent.
    #[default]
    Missing,
    /// `null`.
    Null,
    /// A JSON array (of anything: each row is checked on its own).
    Rows(Vec<Box<RawValue>>),
    /// Something else: what it was.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of rows")
            }
            fn visit_unit<E>(self) -> Result<List, E> {
                Ok(List::Null)
            }
            fn visit_none<E>(self) -> Result<List, E> {
                Ok(List::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(r) = seq.next_element::<Box<RawValue>>()? {
                    rows.push(r);
                }
                Ok(List::Rows(rows))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List::Other("an object"))
            }
            fn visit_str<E>(self, _: &str) -> Result<List, E> {
                Ok(List::Other("a string"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<List, E> {
                Ok(List::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<List, E> {
                Ok(List::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<List, E> {
                Ok(List::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<List, E> {
                Ok(List::Other("a number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One page's `data`, read with the answer in one pass: the rows stay JSON
/// text; only the paging fields are read. Every other key is kept as a
/// `List`, so the API's list key (`datas`, `orders`, `inventorys`, ...) is
/// chosen when the rows are taken, not when the page is read.
#[derive(Default)]
pub struct Page {
    lists: Vec<(String, List)>,
    has_next: Option<Value>,
    data_count: Option<Value>,
    page_count: Option<Value>,
}

impl<'de> Deserialize<'de> for Page {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Page;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a page object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Page, A::Error> {
                let mut page = Page::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "has_next" => page.has_next = map.next_value()?,
                        "data_count" => page.data_count = map.next_value()?,
                        "page_count" => page.page_count = map.next_value()?,
                        _ => {
                            let list: List = map.next_value()?;
                            page.lists.push((key, list));
                        }
                    }
                }
                Ok(page)
            }
        }
        d.deserialize_map(V)
    }
}

impl Answer for Page {
    const SHAPE: &'static str = "an object with a list of rows";
}

/// `has_next` in any of its spellings: `Some(bool)`, or `None` when absent
/// or unreadable (then a full page means there may be more).
pub fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A count sent as a number or as text.
pub fn count(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Page {
    /// The list under `key` as it came.
    pub fn list(&self, key: &str) -> &List {
        const MISSING: &List = &List::Missing;
        self.lists.iter().find(|(k, _)| k == key).map_or(MISSING, |(_, l)| l)
    }

    /// Takes the rows under `key` out, reading each one's keys (none for a
    /// list that is not one).
    pub fn rows(&mut self, key: &str, id_field: &str, row_key: Option<&str>) -> Vec<Row> {
        let Some((_, list)) = self.lists.iter_mut().find(|(k, _)| k == key) else { return Vec::new() };
        match std::mem::take(list) {
            List::Rows(rows) => rows.into_iter().map(|raw| Row::new(raw, id_field, row_key)).collect(),
            _ => Vec::new(),
        }
    }

    /// `has_next`, read in any spelling.
    pub fn has_next(&self) -> Option<bool> {
        flag(self.has_next.as_ref())
    }

    /// `data_count`, when sent (0 from a cursor query means "not counted").
    pub fn data_count(&self) -> Option<u64> {
        count(self.data_count.as_ref())
    }

    /// `page_count`, when sent.
    pub fn page_count(&self) -> Option<u64> {
        count(self.page_count.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(text: &str) -> Page {
        serde_json::from_str(text).unwrap()
    }

    /// Each shape of the list stays apart; nothing reads as an empty list.
    #[test]
    fn lists_keep_their_shape() {
        assert!(matches!(page(r#"{"has_next":true}"#).list("datas"), List::Missing));
        assert!(matches!(page(r#"{"datas":null}"#).list("datas"), List::Null));
        assert!(matches!(page(r#"{"datas":[]}"#).list("datas"), List::Rows(r) if r.is_empty()));
        assert!(matches!(page(r#"{"datas":[{"o_id":1},2]}"#).list("datas"), List::Rows(r) if r.len() == 2));
        // Another API's list key; the outbound key is then missing.
        let mut stock = page(r#"{"page_size":100,"inventorys":[{"sku_id":"A","wms_co_id":1}],"has_next":false}"#);
        assert!(matches!(stock.list("datas"), List::Missing));
        assert_eq!(stock.rows("inventorys", "sku_id", Some("wms_co_id"))[0].row_key.as_deref(), Some("wms_co_id=1"));
        assert_eq!(stock.has_next(), Some(false));
        for (text, what) in
            [(r#"{"datas":"x"}"#, "a string"), (r#"{"datas":{}}"#, "an object"), (r#"{"datas":3}"#, "a number"), (r#"{"datas":false}"#, "a boolean")]
        {
            assert!(matches!(page(text).list("datas"), List::Other(w) if *w == what), "{text}");
        }
    }

    /// `has_next` and counts in every spelling the API uses.
    #[test]
    fn flags_and_counts_in_every_spelling() {
        for (v, want) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!("true"), Some(true)),
            (json!("1"), Some(true)),
            (json!("False"), Some(false)),
            (json!("0"), Some(false)),
            (json!(null), None),
            (json!(2), None),
            (json!("maybe"), None),
        ] {
            assert_eq!(flag(Some(&v)), want, "{v}");
        }
        assert_eq!(flag(None), None);
        assert_eq!((count(Some(&json!(12))), count(Some(&json!(" 12"))), count(Some(&json!(-1))), count(None)), (Some(12), Some(12), None, None));
    }
}
