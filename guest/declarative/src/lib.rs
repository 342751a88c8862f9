//! A mapping written as data. The options say, field by field, where each
//! output value comes from and how it is formatted (QingYiYun's
//! `formatResponse` vocabulary), so a tenant customizes without a compiler.
//! Bad options are rejected by `check-options`, before the version goes live.
//! See `docs/plugins.md` for the option reference.

mod format;
mod spec;

use ferry_sdk::{FieldError, Map, Mapping, Output, Value, fields};
pub use spec::Declarative;

impl Mapping for Declarative {
    const NAME: &'static str = "declarative";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Mapping from options: rename, copy, constants, formats, StringToArray, explode";

    fn from_options(options: &Value) -> Result<Self, String> {
        spec::parse(options)
    }

    fn map(&self, record: &Value) -> Result<Output, FieldError> {
        let Some(path) = &self.explode else {
            return Ok(Output::one(self.one(record, None)?));
        };
        // The same flattening as the host's scheme-level `beatFlat`; paths
        // outside `item.` still read the whole record (a sum over the array).
        let flat = fields::beat_flat(record, path)?;
        let mut out = Vec::with_capacity(flat.len());
        for copy in &flat {
            out.push(self.one(record, fields::get(copy, path))?);
        }
        Ok(Output::Records(out))
    }
}

impl Declarative {
    /// Builds one output record; `element` is the exploded array element that
    /// `item.` paths refer to.
    fn one(&self, record: &Value, element: Option<&Value>) -> Result<Value, FieldError> {
        let mut out = match (self.keep_all, record) {
            (true, Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if let Some(path) = &self.explode {
            out.remove(path);
        }
        for field in &self.fields {
            if let Some(v) = field.evaluate(record, element)? {
                fields::set(&mut out, &field.to, v);
            }
        }
        for key in &self.drop {
            out.remove(key);
        }
        Ok(Value::Object(out))
    }
}

ferry_sdk::plugin!(Declarative);
