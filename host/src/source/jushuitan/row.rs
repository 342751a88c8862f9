//! One source row as the API sent it: its JSON text goes to the plugin and
//! the outbox unchanged, and the host reads only the three fields it needs
//! (the id, `modified`, `ts`) with one pass that skips everything else, so
//! no row is ever built into a `serde_json::Value` and printed back.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

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
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let keys = KeysSeed { id_field }.deserialize(&mut de).unwrap_or_default();
        Row { raw: Box::<str>::from(raw).into_string(), id: keys.id, version: keys.version, ts: keys.ts }
    }

    /// A row from a `Value` (tests and tools; the run reads raw pages).
    pub fn from_value(v: &Value, id_field: &str) -> Row {
        let raw = RawValue::from_string(v.to_string()).expect("a Value prints as valid JSON");
        Row::new(raw, id_field)
    }

    /// The idCheck key: id + `modified`.
    pub fn key(&self) -> (String, String) {
        (self.id.clone(), self.version.clone())
    }
}

#[derive(Default)]
struct Keys {
    id: String,
    version: String,
    ts: Option<u64>,
}

fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        v => v.to_string(),
    }
}

struct KeysSeed<'a> {
    id_field: &'a str,
}

impl<'de> DeserializeSeed<'de> for KeysSeed<'_> {
    type Value = Keys;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Keys, D::Error> {
        d.deserialize_map(self)
    }
}

/// Which field a key names.
enum Field {
    Id,
    Modified,
    Ts,
    Other,
}

struct FieldSeed<'a> {
    id_field: &'a str,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, k: &str) -> Result<Field, E> {
        // The id field is checked first: it may itself be `ts` or `modified`.
        Ok(if k == self.id_field {
            Field::Id
        } else if k == "modified" {
            Field::Modified
        } else if k == "ts" {
            Field::Ts
        } else {
            Field::Other
        })
    }
}

impl<'de> Visitor<'de> for KeysSeed<'_> {
    type Value = Keys;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
        let mut keys = Keys::default();
        let mut ts = None;
        while let Some(field) = map.next_key_seed(FieldSeed { id_field: self.id_field })? {
            match field {
                Field::Id => keys.id = text(map.next_value()?),
                Field::Modified => keys.version = text(map.next_value()?),
                Field::Ts => ts = Some(map.next_value::<Value>()?),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        keys.ts = ts.as_ref().and_then(Value::as_u64);
        Ok(keys)
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
        let by_string = Row::from_value(&json!({"so_id": "A-1", "ts": -3}), "so_id");
        assert_eq!((by_string.id.as_str(), by_string.version.as_str(), by_string.ts), ("A-1", "", None));
        let escaped = Row::new(RawValue::from_string(r#"{"o\u005fid":"x","modified":null}"#.into()).unwrap(), "o_id");
        assert_eq!((escaped.id.as_str(), escaped.version.as_str()), ("x", "null"));
        for odd in ["[1,2]", "\"text\"", "null", "3"] {
            let row = Row::new(RawValue::from_string(odd.into()).unwrap(), "o_id");
            assert_eq!((row.raw.as_str(), row.id.as_str(), row.version.as_str(), row.ts), (odd, "", "", None));
        }
    }
}
