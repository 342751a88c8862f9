//! The Ferry plugin SDK.
//!
//! A mapping plugin implements [`Mapping`] and calls [`plugin!`]; the SDK
//! turns that into the `ferry:mapping@0.1.0` component exports. The same
//! code also compiles for the host, so a mapping can be run natively
//! ([`run_batch`]) for tests and benchmarks.
//!
//! Layout:
//! - [`bindings`]: the generated WIT bindings (`mapper` world);
//! - [`money`]: exact decimal amounts (no floats in sums);
//! - [`time`]: date/time reformatting;
//! - [`fields`]: reading, renaming and writing JSON fields by path, with
//!   errors that name the field;
//! - [`run_batch`]: the batch loop every plugin shares.

pub mod fields;
pub mod money;
pub mod time;

/// Every plugin built with the SDK allocates with Talc instead of dlmalloc
/// (a fresh instance per batch, so fragmentation never builds up).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[allow(unsafe_code, clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "mapper",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_mapper",
        default_bindings_module: "ferry_sdk::bindings",
    });
}

pub use bindings::ferry::mapping::host::Level;
pub use bindings::ferry::mapping::types::{Outcome, PluginInfo, RecordError};
pub use fields::FieldError;
pub use rust_decimal::Decimal;
pub use serde_json::{Map, Value, json};

/// The WIT contract version this SDK builds plugins for.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// What a mapping returns for one record when it does not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Zero or more mapped records.
    Records(Vec<Value>),
    /// Deliberately not delivered, with the reason.
    Skip(String),
}

impl Output {
    /// One mapped record.
    pub fn one(record: Value) -> Self {
        Output::Records(vec![record])
    }
    /// A skip with a reason.
    pub fn skip(reason: impl Into<String>) -> Self {
        Output::Skip(reason.into())
    }
}

/// A mapping: built once per batch from the pipeline's options, then applied
/// to each record.
pub trait Mapping: Sized {
    /// Short machine name, e.g. `jushuitan-orders`.
    const NAME: &'static str;
    /// The plugin's own version.
    const VERSION: &'static str;
    /// One line for humans.
    const DESCRIPTION: &'static str;

    /// Builds the mapping from the options JSON (`{}` when the pipeline has
    /// none). Errors name the option at fault.
    fn from_options(options: &Value) -> Result<Self, String>;

    /// Maps one input record.
    fn map(&self, record: &Value) -> Result<Output, FieldError>;

    /// Maps one record straight from its JSON text, when the mapping has a
    /// faster way than a [`Value`] tree: typed fields, the rest of the
    /// record skipped without being built (see `jushuitan-orders`).
    /// `None` sends the record through [`Mapping::map`], which must give
    /// the same outcome; so a fast path answers only the ordinary case and
    /// returns `None` on anything unusual, and every error comes from
    /// `map`, with its field names. The default has no fast path.
    fn map_fast(&self, _record: &str) -> Option<Outcome> {
        None
    }
}

/// The plugin's `describe` answer.
pub fn describe<M: Mapping>() -> PluginInfo {
    PluginInfo { name: M::NAME.to_string(), version: M::VERSION.to_string(), description: M::DESCRIPTION.to_string(), contract: CONTRACT_VERSION.to_string() }
}

/// Parses the options text into a mapping.
pub fn prepare<M: Mapping>(options: &str) -> Result<M, String> {
    let text = if options.trim().is_empty() { "{}" } else { options };
    let value: Value = serde_json::from_str(text).map_err(|e| format!("options are not valid JSON: {e}"))?;
    M::from_options(&value)
}

/// Maps one record given as JSON text: the mapping's fast path if it
/// answers, else [`map_value`].
pub fn map_one<M: Mapping>(mapping: &M, record: &str) -> Outcome {
    match mapping.map_fast(record) {
        Some(outcome) => outcome,
        None => map_value(mapping, record),
    }
}

/// Maps one record given as JSON text through a [`Value`] tree and
/// [`Mapping::map`] (what a fast path must agree with).
pub fn map_value<M: Mapping>(mapping: &M, record: &str) -> Outcome {
    let value: Value = match serde_json::from_str(record) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(RecordError { field: None, message: format!("input is not valid JSON: {e}") });
        }
    };
    match mapping.map(&value) {
        Ok(Output::Records(records)) => {
            // `to_string` goes through `Display` and a formatter per
            // value; the serializer writes straight into the buffer.
            let text = |r: &Value| serde_json::to_string(r).expect("a Value always serializes");
            Outcome::Mapped(records.iter().map(text).collect())
        }
        Ok(Output::Skip(reason)) => Outcome::Skip(reason),
        Err(e) => Outcome::Error(RecordError { field: Some(e.field), message: e.message }),
    }
}

/// The batch loop: one outcome per input, in order. A bad record yields an
/// error outcome and never fails the batch.
pub fn run_batch<M: Mapping>(options: &str, records: &[String]) -> Result<Vec<Outcome>, String> {
    let mapping = prepare::<M>(options)?;
    Ok(records.iter().map(|r| map_one(&mapping, r)).collect())
}

/// Writes a line to the host's log (stderr when run natively).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::ferry::mapping::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Exports a [`Mapping`] as the plugin's component implementation.
///
/// ```ignore
/// ferry_sdk::plugin!(MyMapping);
/// ```
#[macro_export]
macro_rules! plugin {
    ($mapping:ty) => {
        #[doc(hidden)]
        pub struct __FerryPlugin;

        impl $crate::bindings::exports::ferry::mapping::mapping::Guest for __FerryPlugin {
            fn describe() -> $crate::PluginInfo {
                $crate::describe::<$mapping>()
            }
            fn check_options(options: String) -> Result<(), String> {
                $crate::prepare::<$mapping>(&options).map(|_| ())
            }
            fn map_batch(
                options: String,
                records: Vec<String>,
            ) -> Result<Vec<$crate::Outcome>, String> {
                $crate::run_batch::<$mapping>(&options, &records)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_mapper!(__FerryPlugin with_types_in $crate::bindings);
    };
}
