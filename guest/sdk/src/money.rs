//! Exact decimal money: sums never touch floating point.
//!
//! Input numbers are read through their shortest decimal text (`0.1` is
//! exactly one tenth), summed as [`Decimal`], and rounded half-up (away from
//! zero) to the wanted places.

use crate::fields::{FieldError, describe};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Number, Value};
use std::str::FromStr;

/// Reads a JSON number or numeric string as an exact decimal.
pub fn decimal(value: &Value, field: &str) -> Result<Decimal, FieldError> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(FieldError::invalid(field, "a number", other)),
    };
    parse(&text).ok_or_else(|| FieldError::new(field, format!("field `{field}`: expected a number, got {}", describe(value))))
}

/// Parses decimal text, with or without an exponent.
pub fn parse(text: &str) -> Option<Decimal> {
    Decimal::from_str(text).ok().or_else(|| Decimal::from_scientific(text).ok())
}

/// Rounds half-up (away from zero) to `places` decimals.
pub fn round(d: Decimal, places: u32) -> Decimal {
    d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero)
}

/// Renders a decimal as a JSON number, rounded half-up to `places`.
pub fn to_json(d: Decimal, places: u32) -> Value {
    let text = round(d, places).normalize().to_string();
    match serde_json::from_str::<Number>(&text) {
        Ok(n) => Value::Number(n),
        Err(_) => Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_sums() {
        let a = decimal(&json!(0.1), "a").unwrap();
        let b = decimal(&json!(0.2), "b").unwrap();
        assert_eq!(to_json(a + b, 2), json!(0.3));
        let c = decimal(&json!("33.33"), "c").unwrap();
        assert_eq!(to_json(c * Decimal::from(3), 2), json!(99.99));
        assert_eq!(to_json(decimal(&json!(0.005), "d").unwrap(), 2), json!(0.01));
        assert_eq!(to_json(decimal(&json!(-0.005), "d").unwrap(), 2), json!(-0.01));
        assert!(decimal(&json!("abc"), "x").is_err());
        assert!(decimal(&json!(true), "x").is_err());
        assert_eq!(decimal(&json!(1e-7), "e").unwrap(), parse("0.0000001").unwrap());
    }
}
