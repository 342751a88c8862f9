//! Value formats, named as in QingYiYun's `formatResponse`.

use ferry_sdk::{FieldError, Value, fields::describe, money, time};
use serde_json::Number;

#[derive(Debug, Clone)]
pub(crate) enum Format {
    /// Any scalar as text.
    String,
    /// A date-time reformatted; `pattern` defaults to `%Y-%m-%d`.
    Date(String),
    /// A date-time reformatted; `pattern` defaults to `%Y-%m-%d %H:%M:%S`.
    DateTime(String),
    /// Exact decimal rounded half-up to 2 places, as a number.
    Amount,
    /// Exact decimal rounded half-up to n places, as a number.
    Round(u32),
    /// Integer part (toward zero), as a number.
    Intval,
    /// An exact decimal number, unrounded.
    Number,
    /// An array joined with `separator` (default `,`); `pick` takes one field of each element.
    Implode { separator: String, pick: Option<String> },
    /// A text split on `separator` (default `,`), trimmed, empties dropped.
    StringToArray(String),
}

const KNOWN: &str = "string, date, dateTime, amount, round(n), intval, number, implode, StringToArray";

impl Format {
    pub(crate) fn parse(name: &str, pattern: Option<String>, separator: Option<String>, pick: Option<String>) -> Result<Self, String> {
        let sep = separator.unwrap_or_else(|| ",".to_string());
        let format = match name {
            "string" => Format::String,
            "date" => Format::Date(pattern.clone().unwrap_or_else(|| "%Y-%m-%d".into())),
            "dateTime" => Format::DateTime(pattern.clone().unwrap_or_else(|| "%Y-%m-%d %H:%M:%S".into())),
            "amount" => Format::Amount,
            "intval" => Format::Intval,
            "number" => Format::Number,
            "implode" => Format::Implode { separator: sep, pick },
            "StringToArray" => Format::StringToArray(sep),
            other => match other.strip_prefix("round(").and_then(|r| r.strip_suffix(')')) {
                Some(n) => {
                    Format::Round(n.trim().parse().ok().filter(|n| *n <= 20).ok_or_else(|| format!("format `{other}`: expected round(n) with n from 0 to 20"))?)
                }
                None => return Err(format!("unknown format `{other}` (known: {KNOWN})")),
            },
        };
        if pattern.is_some() && !matches!(format, Format::Date(_) | Format::DateTime(_)) {
            return Err(format!("`pattern` only goes with date or dateTime, not `{name}`"));
        }
        if let Format::Date(p) | Format::DateTime(p) = &format {
            time::check_pattern(p)?;
        }
        Ok(format)
    }

    pub(crate) fn apply(&self, v: &Value, field: &str) -> Result<Value, FieldError> {
        Ok(match self {
            Format::String => Value::String(text(v, field)?),
            Format::Date(p) | Format::DateTime(p) => Value::String(time::reformat(v, field, p)?),
            Format::Amount => money::to_json(money::decimal(v, field)?, 2),
            Format::Round(n) => money::to_json(money::decimal(v, field)?, *n),
            Format::Number => money::to_json(money::decimal(v, field)?, 28),
            Format::Intval => {
                let d = money::decimal(v, field)?.trunc();
                Value::Number(Number::from(
                    i64::try_from(d.mantissa() / 10i128.pow(d.scale()))
                        .map_err(|_| FieldError::new(field, format!("field `{field}`: {d} does not fit an integer")))?,
                ))
            }
            Format::Implode { separator, pick } => {
                let items = v.as_array().ok_or_else(|| FieldError::invalid(field, "an array", v))?;
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, el)| {
                        let name = format!("{field}[{i}]");
                        match pick {
                            Some(p) => el.get(p).ok_or_else(|| FieldError::missing(format!("{name}.{p}"))).and_then(|x| text(x, &name)),
                            None => text(el, &name),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Value::String(parts.join(separator))
            }
            Format::StringToArray(sep) => match v {
                Value::Array(_) => v.clone(),
                _ => Value::Array(text(v, field)?.split(sep.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect()),
            },
        })
    }
}

fn text(v: &Value, field: &str) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(FieldError::new(field, format!("field `{field}`: expected text or a number, got {}", describe(other)))),
    }
}
