//! A plugin's options from a file: JSON or TOML (by the extension; any
//! other is tried as JSON, then as TOML), which must hold one object or
//! table. Used by `mapping.options = "file"` and `ferry plugin
//! check|test --options`.

use serde_json::Value;
use std::path::Path;

/// The options in `path` as a JSON object.
pub fn read_options(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read options file {}: {e}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let json = || serde_json::from_str::<Value>(&text).map_err(|e| crate::plain::words(&e.to_string()));
    let toml = || toml::from_str::<toml::Table>(&text).map_err(|e| crate::plain::words(e.to_string().trim())).map(|t| toml_to_json(toml::Value::Table(t)));
    let value = match ext.as_str() {
        "json" => json().map_err(|e| format!("options file {}: not valid JSON: {e}", path.display()))?,
        "toml" => toml().map_err(|e| format!("options file {}: not valid TOML: {e}", path.display()))?,
        _ => json().or_else(|_| toml()).map_err(|e| format!("options file {}: neither JSON nor TOML: {e}", path.display()))?,
    };
    if !value.is_object() {
        return Err(format!("options file {}: expected one JSON object or TOML table, got {value}", path.display()));
    }
    Ok(value)
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::read_options;

    #[test]
    fn json_and_toml_files_give_the_same_object() {
        let dir = tempfile::tempdir().unwrap();
        let (j, t, other) = (dir.path().join("o.json"), dir.path().join("o.toml"), dir.path().join("o.txt"));
        std::fs::write(&j, r#"{"renames": {"a": "b"}, "n": 2}"#).unwrap();
        std::fs::write(&t, "n = 2\n[renames]\na = \"b\"\n").unwrap();
        std::fs::write(&other, "n = 2\n[renames]\na = \"b\"\n").unwrap();
        let want = read_options(&j).unwrap();
        assert_eq!(read_options(&t).unwrap(), want);
        assert_eq!(read_options(&other).unwrap(), want);
        std::fs::write(&j, "[1, 2]").unwrap();
        assert!(read_options(&j).unwrap_err().contains("expected one JSON object or TOML table"));
        std::fs::write(&t, "n = ").unwrap();
        assert!(read_options(&t).unwrap_err().contains("not valid TOML"));
    }
}
