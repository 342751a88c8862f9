//! Mapped output is checked before it leaves the plugin layer: a record
//! must be a JSON object, nested at most `MAX_DEPTH` levels, with no
//! duplicate key in any object and no string that is not valid Unicode
//! (a lone surrogate escape such as `"\ud800"`). A record that fails is a
//! record error (a dead letter naming the check), never a batch the
//! target refuses again and again: a forged duplicate `id`, a record a
//! million levels deep or a broken escape would otherwise jam the
//! pipeline's outbox.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// How deep a mapped record may nest (serde_json stops at 128 anyway).
pub const MAX_DEPTH: usize = 64;

/// The longest text a plugin may give for a record error, a field name, a
/// skip reason, a refused batch or refused options; the rest is cut.
pub const MAX_TEXT: usize = 4096;
/// The longest name or version from `describe`.
pub const MAX_NAME: usize = 128;

/// `text` cut to at most `max` bytes (at a character boundary) with a
/// visible marker saying how much was cut.
pub fn cut(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…cut, {} bytes", &text[..end], text.len())
}

/// Checks one mapped record's JSON text; the error says what is wrong.
pub fn check_record(text: &str) -> Result<(), String> {
    if !text.trim_start().starts_with('{') {
        return Err("is not a JSON object".into());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let mut keys = Vec::new();
    Checked { depth: 0, keys: &mut keys }.deserialize(&mut de).and_then(|()| de.end()).map_err(|e| {
        let m = e.to_string();
        if m.contains("recursion limit") {
            format!("nests deeper than {MAX_DEPTH} levels")
        } else if m.contains("surrogate") || m.contains("hex escape") {
            format!("has an invalid Unicode escape (a lone surrogate): {m}")
        } else {
            format!("is not valid: {m}")
        }
    })
}

/// Objects with at most this many keys are checked for a duplicate by
/// comparing with each key before (no hashing, no allocation per object:
/// mapped records are small); a larger one switches to a hash set, so a
/// forged object with a million keys stays linear.
const SCAN_KEYS: usize = 32;

/// One value at `depth`. `keys` is one stack shared by the whole record:
/// each open object's keys sit above its parents' and are dropped when it
/// closes.
struct Checked<'k, 'de> {
    depth: usize,
    keys: &'k mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for Checked<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    // Strings arrive decoded: serde_json refuses a lone surrogate escape.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.deeper()?;
        while seq.next_element_seed(Checked { depth, keys: &mut *self.keys })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.deeper()?;
        let start = self.keys.len();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let twice = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None if self.keys.len() - start < SCAN_KEYS => {
                    let twice = self.keys[start..].contains(&key);
                    self.keys.push(key.clone());
                    twice
                }
                None => {
                    let mut set: HashSet<Cow<'de, str>> = self.keys.drain(start..).collect();
                    let twice = !set.insert(key.clone());
                    many = Some(set);
                    twice
                }
            };
            if twice {
                return Err(A::Error::custom(format!("the key `{}` is given twice in one object", key.chars().take(64).collect::<String>())));
            }
            map.next_value_seed(Checked { depth, keys: &mut *self.keys })?;
        }
        self.keys.truncate(start);
        Ok(())
    }
}

impl Checked<'_, '_> {
    fn deeper<E: serde::de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(self.depth + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_with_a_marker() {
        assert_eq!(cut("short".into(), 10), "short");
        assert_eq!(cut("茶茶茶".into(), 7), "茶茶…cut, 9 bytes");
        assert!(cut("x".repeat(2 << 20), MAX_TEXT).len() < MAX_TEXT + 32);
    }

    #[test]
    fn good_records_pass_and_forged_ones_are_named() {
        assert_eq!(check_record(r#"{"id":"1","items":[{"q":1.5,"n":null,"s":"茶 \u00e9 \ud83d\ude00"}],"ok":true}"#), Ok(()));
        let err = check_record(r#"{"id":"1","x":1,"id":"2"}"#).unwrap_err();
        assert!(err.contains("`id` is given twice"), "{err}");
        assert!(check_record(r#"{"a":{"b":1,"b":2}}"#).unwrap_err().contains("`b` is given twice"));
        // Keys of sibling and nested objects do not clash; an escaped key is the same key.
        assert_eq!(check_record(r#"{"a":{"x":1},"b":{"x":2,"a":{"x":3}},"x":[{"x":1},{"x":2}]}"#), Ok(()));
        assert!(check_record(r#"{"a":{"x":1,"b":{"y":2},"y":3,"x":4}}"#).unwrap_err().contains("`x` is given twice"));
        assert!(check_record(r#"{"id":1,"\u0069d":2}"#).unwrap_err().contains("`id` is given twice"));
        assert!(check_record(r#"{"s":"\ud800"}"#).unwrap_err().contains("surrogate"), "{:?}", check_record(r#"{"s":"\ud800"}"#));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(check_record(&deep).unwrap_err().contains("deeper than 64"), "{:?}", check_record(&deep));
        let very_deep = format!("{{\"a\":{}1{}}}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert!(check_record(&very_deep).is_err(), "a million levels are refused without a stack overflow");
        // Past the scanned few, a large object is checked with a set, both ways.
        let wide = |dup: &str| format!("{{{}{dup}}}", (0..40_000).map(|i| format!("\"k{i}\":{i},")).collect::<String>());
        assert_eq!(check_record(&wide(r#""end":0"#)), Ok(()));
        assert!(check_record(&wide(r#""k7":0"#)).unwrap_err().contains("`k7` is given twice"));
        assert!(check_record(&wide(r#""k39999":0"#)).unwrap_err().contains("`k39999` is given twice"));
        assert!(check_record("[1]").unwrap_err().contains("not a JSON object"));
        assert!(check_record(r#"{"a":1} {"b":2}"#).is_err(), "one value only");
    }
}
