//! One source row as the API sent it: its JSON text goes to the plugin and
//! the outbox unchanged, and the host reads only the three fields it needs
//! (the id, `modified`, `ts`) with one pass that skips everything else
//! (`crate::fields`), so no row is ever built into a `serde_json::Value`
//! and printed back.

use crate::fields::{text, top_level};
use serde_json::Value;
use serde_json::value::RawValue;

/// A row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's JSON text, exactly as in the answer.
    pub raw: String,
    /// The id field's value as text (a string as is, anything else as
    /// JSON); empty when absent.
    pub id: String,
    /// `modified` as text; empty when absent.
    pub version: String,
    /// The row version `ts`, when it is a non-negative integer.
    pub ts: Option<u64>,
    /// `name=value` of the API's own row key (`io_id` of an outbound order)
    /// when the configured id is not unique (`o_id`: one order ships as
    /// several outbound orders, in the same second at times).
    pub row_key: Option<String>,
}

impl Row {
    /// Reads the id, `modified`, `ts` and the API's row key (`row_key`,
    /// when the id is not unique) of `raw`. A row that is not an object
    /// keeps empty keys, as the plugin will reject it anyway.
    pub fn new(raw: Box<RawValue>, id_field: &str, row_key: Option<&str>) -> Row {
        let [id, version, ts, unique] = top_level(raw.get(), [id_field, "modified", "ts", row_key.unwrap_or(id_field)]);
        let ts = ts.as_ref().and_then(Value::as_u64);
        let row_key = row_key.map(|name| format!("{name}={}", unique.map(text).unwrap_or_default()));
        Row { raw: Box::<str>::from(raw).into_string(), id: id.map(text).unwrap_or_default(), version: version.map(text).unwrap_or_default(), ts, row_key }
    }

    /// The idCheck key: id + `modified`, and the API's row key when the id
    /// is not unique, so that two shipments of one order modified in the
    /// same second are two records (`2026-01-02 03:04:05 io_id=9000001`).
    pub fn key(&self) -> (String, String) {
        match &self.row_key {
            Some(k) => (self.id.clone(), format!("{} {k}", self.version)),
            None => (self.id.clone(), self.version.clone()),
        }
    }
}

impl Row {
    /// The scheme's `beatFlat`: one row per element of the array at
    /// `path` (`ferry_sdk::fields::beat_flat`, as the declarative plugin's
    /// explode), the id field of each suffixed `-0`, `-1`, ... so each is a
    /// record of its own, here and at the target. A row without such an
    /// array (missing, empty, not a list, not an object) stays as it is:
    /// nothing disappears unseen.
    pub fn beat_flat(self, path: &str, id_field: &str) -> Vec<Row> {
        let Ok(record) = serde_json::from_str::<Value>(&self.raw) else { return vec![self] };
        let copies = match ferry_sdk::fields::beat_flat(&record, path) {
            Ok(c) if !c.is_empty() => c,
            _ => return vec![self],
        };
        copies
            .into_iter()
            .enumerate()
            .map(|(i, mut copy)| {
                let id = format!("{}-{i}", self.id);
                copy[id_field] = Value::String(id.clone());
                Row { raw: copy.to_string(), id, version: self.version.clone(), ts: self.ts, row_key: self.row_key.clone() }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The keys read in one skipping pass equal the ones a full parse gives,
    /// and the text is kept byte for byte.
    #[test]
    fn keys_match_a_full_parse() {
        let text = r#"{"o_id": 17, "modified":"2026-01-02 03:04:05","items":[{"ts":1}],"ts":99,"note":"a \"quoted\" \u00e9"}"#;
        let row = Row::new(RawValue::from_string(text.into()).unwrap(), "o_id", None);
        assert_eq!(row.raw, text);
        assert_eq!((row.id.as_str(), row.version.as_str(), row.ts), ("17", "2026-01-02 03:04:05", Some(99)));
        let by_string = Row::new(RawValue::from_string(json!({"so_id": "A-1", "ts": -3}).to_string()).unwrap(), "so_id", None);
        assert_eq!((by_string.id.as_str(), by_string.version.as_str(), by_string.ts), ("A-1", "", None));
        let escaped = Row::new(RawValue::from_string(r#"{"o\u005fid":"x","modified":null}"#.into()).unwrap(), "o_id", None);
        assert_eq!((escaped.id.as_str(), escaped.version.as_str()), ("x", "null"));
        for odd in ["[1,2]", "\"text\"", "null", "3"] {
            let row = Row::new(RawValue::from_string(odd.into()).unwrap(), "o_id", None);
            assert_eq!((row.raw.as_str(), row.id.as_str(), row.version.as_str(), row.ts), (odd, "", "", None));
        }
    }

    /// beatFlat: a row per element, ids suffixed, the element in the
    /// array's place; a row without the array stays whole.
    #[test]
    fn beat_flat_makes_a_row_per_element() {
        let text = r#"{"io_id":40,"modified":"2026-01-02 03:04:05","ts":9,"items":[{"sku_id":"A"},{"sku_id":"B"}]}"#;
        let rows = Row::new(RawValue::from_string(text.into()).unwrap(), "io_id", None).beat_flat("items", "io_id");
        assert_eq!(
            rows.iter().map(|r| r.key()).collect::<Vec<_>>(),
            [("40-0".to_string(), "2026-01-02 03:04:05".to_string()), ("40-1".into(), "2026-01-02 03:04:05".into())]
        );
        let second: Value = serde_json::from_str(&rows[1].raw).unwrap();
        assert_eq!((&second["io_id"], &second["items"]["sku_id"], rows[1].ts), (&json!("40-1"), &json!("B"), Some(9)));
        for whole in [r#"{"io_id":41,"items":[]}"#, r#"{"io_id":42}"#, r#"{"io_id":43,"items":"x"}"#, "[1]"] {
            let rows = Row::new(RawValue::from_string(whole.into()).unwrap(), "io_id", None).beat_flat("items", "io_id");
            assert_eq!((rows.len(), rows[0].raw.as_str()), (1, whole));
        }
    }

    /// Two shipments of one order in the same second are two keys when
    /// the API's row key is read; without it they would be one.
    #[test]
    fn split_shipments_keep_apart() {
        let a = r#"{"o_id":7,"io_id":9000007,"modified":"2026-01-02 03:04:05"}"#;
        let b = r#"{"o_id":7,"io_id":5000000007,"modified":"2026-01-02 03:04:05"}"#;
        let row = |t: &str, k| Row::new(RawValue::from_string(t.into()).unwrap(), "o_id", k);
        assert_eq!(row(a, Some("io_id")).key(), ("7".to_string(), "2026-01-02 03:04:05 io_id=9000007".to_string()));
        assert_ne!(row(a, Some("io_id")).key(), row(b, Some("io_id")).key());
        assert_eq!(row(a, None).key(), row(b, None).key(), "keyed by o_id alone they collide");
        assert_eq!(row(a, Some("io_id")).version, "2026-01-02 03:04:05", "`modified` stays as it came");
    }
}
