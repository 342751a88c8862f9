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

/// Checks a strftime pattern once, when options are loaded: a directive
/// it does not know (`%Q`), or one a date-time without a zone cannot give
/// (`%z`), is an error that names it, instead of text printed as is.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let sample = DateTime::constant(2024, 3, 1, 12, 30, 0, 0);
    jiff::fmt::strtime::format(pattern, sample)
        .map(|_| ())
        .map_err(|e| format!("pattern `{pattern}`: {e} (known: %Y %m %d %H %M %S %f %b %a %j %y %e %p %I, `%%` for a percent sign)"))
}

/// Reformats a date-time field with a strftime pattern, e.g. `%Y%m%d`.
pub fn reformat(value: &Value, field: &str, pattern: &str) -> Result<String, FieldError> {
    let text = value.as_str().ok_or_else(|| FieldError::invalid(field, "a date-time text", value))?;
    let dt = parse(text)
        .ok_or_else(|| FieldError::new(field, format!("field `{field}`: expected a date-time like 2024-03-01 12:30:00, got {}", describe(value))))?;
    jiff::fmt::strtime::format(pattern, dt).map_err(|e| FieldError::new(field, format!("field `{field}`: pattern `{pattern}`: {e}")))
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

    #[test]
    fn unknown_directives_are_errors() {
        assert!(check_pattern("%Y%m%d").is_ok() && check_pattern("%Y-%m-%d %H:%M:%S").is_ok() && check_pattern("100%%").is_ok());
        let err = check_pattern("%Y%Q").unwrap_err();
        assert!(err.contains("pattern `%Y%Q`"), "{err}");
        assert!(check_pattern("%z").is_err(), "a date-time without a zone has no offset");
        assert!(reformat(&json!("2024-03-01 12:30:00"), "d", "%Q").is_err());
    }
}
