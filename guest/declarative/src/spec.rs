//! The options schema of the declarative plugin, validated at load.

use crate::format::Format;
use ferry_sdk::{Decimal, FieldError, Value, fields, money};
use serde::Deserialize;

/// A whole mapping.
#[derive(Debug)]
pub struct Declarative {
    pub(crate) explode: Option<String>,
    pub(crate) keep_all: bool,
    pub(crate) drop: Vec<String>,
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    /// One output record per element of this array (QingYiYun `beatFlat`);
    /// `item.x` paths then read the element.
    #[serde(default)]
    explode: Option<String>,
    /// Start each output from a copy of the input record.
    #[serde(default)]
    keep_all: bool,
    /// Top-level output keys to remove at the end.
    #[serde(default)]
    drop: Vec<String>,
    /// The output fields, in order.
    fields: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    to: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    sum: Option<RawSum>,
    /// Several fields' values as text, joined by `separator` (default `-`):
    /// the id of a row named by more than one field (stock: sku and warehouse).
    #[serde(default)]
    join: Option<Vec<String>>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    pick: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<Value>,
}

/// Exact sum over an array of the product of some of its elements' fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSum {
    over: String,
    multiply: Vec<String>,
}

/// Where one output value comes from.
#[derive(Debug)]
pub(crate) enum Source {
    Path(String),
    Const(Value),
    Sum(RawSum),
    Join(Vec<String>, String),
}

/// One output field.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) to: String,
    source: Source,
    format: Option<Format>,
    required: bool,
    default: Option<Value>,
}

pub(crate) fn parse(options: &Value) -> Result<Declarative, String> {
    let raw: RawOptions = serde_json::from_value(options.clone()).map_err(|e| format!("declarative options: {e}"))?;
    if raw.fields.is_empty() {
        return Err("declarative options: `fields` must list at least one output field".into());
    }
    let fields =
        raw.fields.into_iter().enumerate().map(|(i, f)| field(f).map_err(|e| format!("declarative options: fields[{i}]: {e}"))).collect::<Result<_, _>>()?;
    Ok(Declarative { explode: raw.explode, keep_all: raw.keep_all, drop: raw.drop, fields })
}

fn field(raw: RawField) -> Result<Field, String> {
    if raw.to.trim().is_empty() {
        return Err("`to` must name the output field".into());
    }
    let source = match (raw.from, raw.value, raw.sum, raw.join) {
        (Some(p), None, None, None) => Source::Path(p),
        (None, Some(v), None, None) => Source::Const(v),
        (None, None, Some(s), None) if !s.multiply.is_empty() => Source::Sum(s),
        (None, None, Some(_), None) => return Err("`sum.multiply` must list at least one field".into()),
        (None, None, None, Some(j)) if j.len() >= 2 => Source::Join(j, raw.separator.clone().unwrap_or_else(|| "-".into())),
        (None, None, None, Some(_)) => return Err(format!("output `{}`: `join` must list at least two fields", raw.to)),
        _ => return Err(format!("output `{}`: give exactly one of `from`, `value`, `sum`, `join`", raw.to)),
    };
    let format = raw.format.as_deref().map(|f| Format::parse(f, raw.pattern, raw.separator, raw.pick)).transpose()?;
    Ok(Field { to: raw.to, source, format, required: raw.required, default: raw.default })
}

impl Field {
    /// The output value, `None` when the source is absent and not required.
    pub(crate) fn evaluate(&self, record: &Value, element: Option<&Value>) -> Result<Option<Value>, FieldError> {
        let value = match &self.source {
            Source::Const(v) => Some(v.clone()),
            Source::Path(p) => lookup(record, element, p).cloned(),
            Source::Sum(s) => Some(sum(record, element, s)?),
            Source::Join(paths, sep) => join(record, element, paths, sep),
        };
        let value = match value.or_else(|| self.default.clone()) {
            Some(Value::Null) | None if self.required => return Err(FieldError::missing(self.source_name())),
            None => return Ok(None),
            Some(v) => v,
        };
        match &self.format {
            Some(f) => f.apply(&value, &self.source_name()).map(Some),
            None => Ok(Some(value)),
        }
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::Path(p) => p.clone(),
            Source::Const(_) => self.to.clone(),
            Source::Sum(s) => s.over.clone(),
            Source::Join(paths, _) => paths.join("+"),
        }
    }
}

/// Resolves a path: `item.x` reads the exploded element, anything else the record.
fn lookup<'v>(record: &'v Value, element: Option<&'v Value>, path: &str) -> Option<&'v Value> {
    match (element, path.strip_prefix("item.")) {
        (Some(e), Some(rest)) => fields::get(e, rest),
        (Some(e), None) if path == "item" => Some(e),
        _ => fields::get(record, path),
    }
}

/// The fields' values as text, joined; `None` when one is absent or `null`.
fn join(record: &Value, element: Option<&Value>, paths: &[String], sep: &str) -> Option<Value> {
    let mut parts = Vec::with_capacity(paths.len());
    for p in paths {
        match lookup(record, element, p)? {
            Value::Null => return None,
            Value::String(s) => parts.push(s.clone()),
            other => parts.push(other.to_string()),
        }
    }
    Some(Value::String(parts.join(sep)))
}

fn sum(record: &Value, element: Option<&Value>, spec: &RawSum) -> Result<Value, FieldError> {
    let array = lookup(record, element, &spec.over)
        .ok_or_else(|| FieldError::missing(&spec.over))?
        .as_array()
        .ok_or_else(|| FieldError::new(&spec.over, format!("field `{}`: expected an array", spec.over)))?;
    let mut total = Decimal::ZERO;
    for (i, el) in array.iter().enumerate() {
        let mut product = Decimal::ONE;
        for f in &spec.multiply {
            let name = format!("{}[{i}].{f}", spec.over);
            let v = fields::required(el, f).map_err(|_| FieldError::missing(&name))?;
            product *= money::decimal(v, &name)?;
        }
        total += product;
    }
    Ok(money::to_json(total, 28))
}
