//! A few top-level fields of a JSON object, read without building the rest:
//! one pass that skips every other value and stops as soon as all the
//! wanted fields are found. Used for a row's keys (id, `modified`, `ts`)
//! and a mapped record's `id`, where the rest of the text is carried as is.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The values of `names` in the JSON object `text`, `None` where absent
/// (and everywhere when `text` is not an object). Of a key given twice the
/// first wins: the scan stops once every name has a value.
pub fn top_level<const N: usize>(text: &str, names: [&str; N]) -> [Option<Value>; N] {
    const { assert!(N <= 64, "the names are kept as a 64-bit set") };
    let mut found = [const { None }; N];
    let mut de = serde_json::Deserializer::from_str(text);
    // Stopping early leaves the object unclosed, which serde reports as an
    // error: what was found is kept either way.
    let _ = (&mut de).deserialize_map(Scan { names: &names, found: &mut found });
    found
}

struct Scan<'a, const N: usize> {
    names: &'a [&'a str; N],
    found: &'a mut [Option<Value>; N],
}

impl<'de, const N: usize> Visitor<'de> for Scan<'_, N> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while self.found.iter().any(Option::is_none) {
            let Some(wanted) = map.next_key_seed(Key { names: self.names })? else { break };
            // Every wanted slot this key names (the same name may be asked twice).
            let open = (0..N).filter(|&i| wanted & (1 << i) != 0 && self.found[i].is_none()).fold(0u64, |m, i| m | 1 << i);
            if open == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let v: Value = map.next_value()?;
            for i in (0..N).filter(|&i| open & (1 << i) != 0) {
                self.found[i] = Some(v.clone());
            }
        }
        Ok(())
    }
}

/// A key, as the bit set of the wanted names it equals.
struct Key<'a, const N: usize> {
    names: &'a [&'a str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Key<'_, N> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for Key<'_, N> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E>(self, k: &str) -> Result<u64, E> {
        Ok(self.names.iter().enumerate().filter(|(_, n)| **n == k).fold(0, |m, (i, _)| m | 1 << i))
    }
}

/// A field's value as text: a string as is, anything else as JSON.
pub fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found values equal a full parse's; escaped keys match; a name asked
    /// twice fills both slots; non-objects find nothing.
    #[test]
    fn finds_what_a_full_parse_finds() {
        let row = r#"{"o\u005fid": 17, "items":[{"ts":1,"o_id":2}], "modified":"2026-01-02 03:04:05","ts":99,"note":"a \"quoted\""}"#;
        let full: Value = serde_json::from_str(row).unwrap();
        let [id, modified, ts, absent] = top_level(row, ["o_id", "modified", "ts", "absent"]);
        assert_eq!([id.as_ref(), modified.as_ref(), ts.as_ref()], [full.get("o_id"), full.get("modified"), full.get("ts")]);
        assert_eq!(absent, None);
        assert_eq!(top_level(row, ["ts", "ts"]), [Some(json!(99)), Some(json!(99))]);
        for odd in ["[1,2]", "\"text\"", "null", "3", "", "{\"o_id\":"] {
            assert_eq!(top_level(odd, ["o_id"]), [None], "{odd}");
        }
        assert_eq!((text(json!("A-1")), text(json!(17))), ("A-1".to_string(), "17".to_string()));
    }
}
