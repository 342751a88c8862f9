//! Reading and writing JSON fields by path, with errors that name the field.
//!
//! Paths are dotted with optional indexes: `items[2].sku_id`, `receiver.name`.

use serde_json::{Map, Value};
use std::fmt;

/// A record-level error naming the input field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `items[2].qty`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// A field was required and absent (or null).
    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("required field `{field}` is missing");
        FieldError { field, message }
    }

    /// A field was present but not what was expected.
    pub fn invalid(field: impl Into<String>, expected: &str, got: &Value) -> Self {
        let field = field.into();
        let message = format!("field `{field}`: expected {expected}, got {}", describe(got));
        FieldError { field, message }
    }

    /// Any other problem with a field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

/// A short rendering of a value for error messages (long values cut).
pub fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(end) = rest.find(']') {
            match rest[1..end].parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => out.push(Step::Key(&rest[1..end])),
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Looks a path up; `None` when any step is absent.
pub fn get<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if !path.is_empty() && !path.contains(['.', '[']) {
        return value.get(path);
    }
    steps(path).iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(*k),
        Step::Index(i) => v.get(*i),
    })
}

/// Looks a path up; absent and `null` both count as missing.
pub fn required<'v>(value: &'v Value, path: &str) -> Result<&'v Value, FieldError> {
    match get(value, path) {
        None | Some(Value::Null) => Err(FieldError::missing(path)),
        Some(v) => Ok(v),
    }
}

/// A required field as text: strings as they are, numbers and booleans
/// rendered; empty strings count as missing.
pub fn required_text(value: &Value, path: &str) -> Result<String, FieldError> {
    match required(value, path)? {
        Value::String(s) if s.trim().is_empty() => Err(FieldError::missing(path)),
        Value::String(s) => Ok(s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
        other => Err(FieldError::invalid(path, "a string or number", other)),
    }
}

/// For typed records (`#[serde(default, deserialize_with = "fields::present")]`
/// on an `Option<Value>`): a field that is there, `null` included, is
/// `Some`; only a missing one is `None`, as [`Value::get`] tells them apart.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// A value as [`required_text`] reads it: strings that are not blank as
/// they are, numbers and booleans rendered; `None` for anything else.
pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// A required array field.
pub fn required_array<'v>(value: &'v Value, path: &str) -> Result<&'v Vec<Value>, FieldError> {
    let v = required(value, path)?;
    v.as_array().ok_or_else(|| FieldError::invalid(path, "an array", v))
}

/// QingYiYun's `beatFlat`: one copy of `record` per element of the array
/// at `path`, that element in the array's place (so `items.qty` reads the
/// element's `qty`). An empty array gives none; a missing field or one
/// that is not an array is an error naming it. The declarative plugin's
/// `explode` and the host's scheme-level `beatFlat` are this function.
pub fn beat_flat(record: &Value, path: &str) -> Result<Vec<Value>, FieldError> {
    let elements = required_array(record, path)?;
    let Value::Object(base) = record else { return Err(FieldError::invalid(path, "an object record", record)) };
    Ok(elements
        .iter()
        .map(|element| {
            let mut copy = base.clone();
            set(&mut copy, path, element.clone());
            Value::Object(copy)
        })
        .collect())
}

/// Writes `new` at a dotted path, creating objects on the way. Keys may be
/// any text, Chinese labels included.
pub fn set(target: &mut Map<String, Value>, path: &str, new: Value) {
    let mut parts = path.split('.').peekable();
    let mut map = target;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_string(), new);
            return;
        }
        let slot = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        map = slot.as_object_mut().expect("made an object above");
    }
}

/// Moves a top-level key to a new name (no-op when absent).
pub fn rename(target: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = target.remove(from) {
        target.insert(to.to_string(), v);
    }
}

/// Copies the listed top-level fields that are present.
pub fn carry(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        if let Some(v) = from.get(*key) {
            to.insert((*key).to_string(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_with_indexes() {
        let v = json!({"items": [{"sku": "a"}, {"sku": "b"}], "r": {"n": 1}});
        assert_eq!(get(&v, "items[1].sku"), Some(&json!("b")));
        assert_eq!(get(&v, "r.n"), Some(&json!(1)));
        assert_eq!(get(&v, "items[5].sku"), None);
        assert_eq!(required(&v, "x").unwrap_err().field, "x");
    }

    #[test]
    fn set_nested_chinese() {
        let mut m = Map::new();
        set(&mut m, "订单.编号", json!("1"));
        assert_eq!(Value::Object(m), json!({"订单": {"编号": "1"}}));
    }
}
