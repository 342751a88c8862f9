//! Mapped output is checked before it leaves the plugin layer: a record
//! must be a JSON object, nested at most `MAX_DEPTH` levels, with no
//! duplicate key in any object and no string that is not valid Unicode
//! (a lone surrogate escape such as `"\ud800"`). A record that fails is a
//! record error (a dead letter naming the check), never a batch the
//! target refuses again and again: a forged duplicate `id`, a record a
//! million levels deep or a broken escape would otherwise jam the
//! pipeline's outbox.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
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
    Checked { depth: 0 }.deserialize(&mut de).and_then(|()| de.end()).map_err(|e| {
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

/// One value at `depth`.
struct Checked {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
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
        while seq.next_element_seed(Checked { depth })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.deeper()?;
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !keys.insert(key.clone()) {
                return Err(A::Error::custom(format!("the key `{}` is given twice in one object", key.chars().take(64).collect::<String>())));
            }
            map.next_value_seed(Checked { depth })?;
        }
        Ok(())
    }
}

impl Checked {
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
        assert!(check_record(r#"{"s":"\ud800"}"#).unwrap_err().contains("surrogate"), "{:?}", check_record(r#"{"s":"\ud800"}"#));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(check_record(&deep).unwrap_err().contains("deeper than 64"), "{:?}", check_record(&deep));
        let very_deep = format!("{{\"a\":{}1{}}}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert!(check_record(&very_deep).is_err(), "a million levels are refused without a stack overflow");
        assert!(check_record("[1]").unwrap_err().contains("not a JSON object"));
        assert!(check_record(r#"{"a":1} {"b":2}"#).is_err(), "one value only");
    }
}
