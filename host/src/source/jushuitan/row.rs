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
}

impl Row {
    /// Reads the id, `modified` and `ts` of `raw`. A row that is not an
    /// object keeps empty keys, as the plugin will reject it anyway.
    pub fn new(raw: Box<RawValue>, id_field: &str) -> Row {
        let [id, version, ts] = top_level(raw.get(), [id_field, "modified", "ts"]);
        let ts = ts.as_ref().and_then(Value::as_u64);
        Row { raw: Box::<str>::from(raw).into_string(), id: id.map(text).unwrap_or_default(), version: version.map(text).unwrap_or_default(), ts }
    }

    /// The idCheck key: id + `modified`.
    pub fn key(&self) -> (String, String) {
        (self.id.clone(), self.version.clone())
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
        let row = Row::new(RawValue::from_string(text.into()).unwrap(), "o_id");
        assert_eq!(row.raw, text);
        assert_eq!((row.id.as_str(), row.version.as_str(), row.ts), ("17", "2026-01-02 03:04:05", Some(99)));
        let by_string = Row::new(RawValue::from_string(json!({"so_id": "A-1", "ts": -3}).to_string()).unwrap(), "so_id");
        assert_eq!((by_string.id.as_str(), by_string.version.as_str(), by_string.ts), ("A-1", "", None));
        let escaped = Row::new(RawValue::from_string(r#"{"o\u005fid":"x","modified":null}"#.into()).unwrap(), "o_id");
        assert_eq!((escaped.id.as_str(), escaped.version.as_str()), ("x", "null"));
        for odd in ["[1,2]", "\"text\"", "null", "3"] {
            let row = Row::new(RawValue::from_string(odd.into()).unwrap(), "o_id");
            assert_eq!((row.raw.as_str(), row.id.as_str(), row.version.as_str(), row.ts), (odd, "", "", None));
        }
    }
}
