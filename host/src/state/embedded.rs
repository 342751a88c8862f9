//! JSON text kept inside a stored JSON document as JSON, not as an escaped
//! string: an outbox entry's body and raw records are written once per
//! batch and read back on confirm, and escaping every quote of them was a
//! visible share of a run's CPU. Entries stored as strings (older Ferry, or
//! text that is not a single JSON value) still read back the same.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Writes `text` as embedded JSON when it is exactly one JSON value that is
/// not itself a string (so reading it back cannot be mistaken for the
/// string form); otherwise as a string.
pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if !text.starts_with('"')
        && let Ok(raw) = serde_json::from_str::<&RawValue>(text)
        && raw.get().len() == text.len()
    {
        return raw.serialize(s);
    }
    s.serialize_str(text)
}

/// Reads either form back to the exact text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    if raw.get().starts_with('"') { serde_json::from_str(raw.get()).map_err(D::Error::custom) } else { Ok(Box::<str>::from(raw).into_string()) }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Doc {
        #[serde(with = "super")]
        text: String,
    }

    /// Every text comes back byte for byte; JSON objects are stored
    /// unescaped; the older string form still reads.
    #[test]
    fn round_trips_and_reads_the_string_form() {
        let texts = [r#"{"records":[{"id":"1","名":"张伟","a":[1, 2.50]}]}"#, r#""a string""#, "not json", " {\"padded\":1} ", "[1,2]", "7", ""];
        for text in texts {
            let stored = serde_json::to_string(&Doc { text: text.into() }).unwrap();
            assert_eq!(serde_json::from_str::<Doc>(&stored).unwrap().text, text, "stored as {stored}");
            let legacy = serde_json::to_string(&serde_json::json!({ "text": text })).unwrap();
            assert_eq!(serde_json::from_str::<Doc>(&legacy).unwrap().text, text, "legacy {legacy}");
        }
        let stored = serde_json::to_string(&Doc { text: r#"{"a":"b"}"#.into() }).unwrap();
        assert_eq!(stored, r#"{"text":{"a":"b"}}"#);
    }
}
