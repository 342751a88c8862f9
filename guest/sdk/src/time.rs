//! Date/time reformatting for the `yyyy-MM-dd HH:mm:ss` texts of the
//! Jushuitan API (with or without `.807` milliseconds, or date only).

use crate::fields::{FieldError, describe};
use jiff::civil::DateTime;
use serde_json::Value;

const INPUTS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y/%m/%d %H:%M:%S"];

/// Parses a date-time text in any of the accepted shapes.
pub fn parse(text: &str) -> Option<DateTime> {
    let text = text.trim();
    INPUTS
        .iter()
        .find_map(|f| DateTime::strptime(f, text).ok())
        .or_else(|| jiff::civil::Date::strptime("%Y-%m-%d", text).ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
}

/// Reformats a date-time field with a strftime pattern, e.g. `%Y%m%d`.
pub fn reformat(value: &Value, field: &str, pattern: &str) -> Result<String, FieldError> {
    let text = value.as_str().ok_or_else(|| FieldError::invalid(field, "a date-time text", value))?;
    let dt = parse(text)
        .ok_or_else(|| FieldError::new(field, format!("field `{field}`: expected a date-time like 2024-03-01 12:30:00, got {}", describe(value))))?;
    Ok(dt.strftime(pattern).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        assert_eq!(reformat(&json!("2024-03-01 12:30:00"), "d", "%Y%m%d").unwrap(), "20240301");
        assert_eq!(reformat(&json!("2024-03-01 12:30:00.807"), "d", "%Y%m%d").unwrap(), "20240301");
        assert_eq!(reformat(&json!("2024-03-01"), "d", "%Y-%m-%d %H:%M:%S").unwrap(), "2024-03-01 00:00:00");
        assert_eq!(reformat(&json!("yesterday"), "d", "%Y").unwrap_err().field, "d");
        assert!(reformat(&json!("2024-02-30 00:00:00"), "d", "%Y").is_err());
    }
}
