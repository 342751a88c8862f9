//! Per-batch limits of a plugin call, configurable per pipeline
//! (`[mapping.limits]`), deny-by-default sandbox otherwise; and the
//! host-wide limits on compiling a component (enforced in `contain`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What one batch may use. Hitting any limit fails only that batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Fuel per batch (about one unit per wasm instruction); `0` turns the
    /// fuel limit off (the wall-clock deadline still applies).
    pub fuel: u64,
    /// Wall-clock deadline per batch, e.g. `"10s"` (epoch interruption).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest linear memory a batch may grow to, in bytes.
    pub memory_bytes: u64,
    /// Largest batch input (sum of the records' JSON text), in bytes.
    pub max_input_bytes: u64,
    /// Largest batch output (sum of the mapped records' JSON text), in bytes.
    pub max_output_bytes: u64,
    /// Guest log, stdout and stderr kept per batch, in bytes; the rest is
    /// dropped and counted.
    pub max_log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            max_input_bytes: 16 << 20,
            max_output_bytes: 32 << 20,
            max_log_bytes: 64 << 10,
        }
    }
}

/// Which limit stopped a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Fuel ran out (`fuel`).
    Fuel,
    /// The wall-clock deadline passed (`timeout`).
    Deadline,
    /// Memory growth was refused (`memory_bytes`).
    Memory,
    /// The input was too large (`max_input_bytes`).
    InputBytes,
    /// The output was too large (`max_output_bytes`).
    OutputBytes,
}

impl LimitKind {
    /// The setting's name (`fuel`, `timeout`, ...), as metrics label it.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::Fuel => "fuel",
            LimitKind::Deadline => "timeout",
            LimitKind::Memory => "memory_bytes",
            LimitKind::InputBytes => "max_input_bytes",
            LimitKind::OutputBytes => "max_output_bytes",
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Fuel => "fuel limit",
            LimitKind::Deadline => "wall-clock deadline",
            LimitKind::Memory => "memory limit",
            LimitKind::InputBytes => "input size limit",
            LimitKind::OutputBytes => "output size limit",
        })
    }
}

/// What compiling one component may take (host-wide, from the environment:
/// `FERRY_COMPILE_MAX_BYTES`, `FERRY_COMPILE_TIMEOUT`, `FERRY_COMPILE_MEMORY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileLimits {
    /// Largest component accepted, in bytes.
    pub max_component_bytes: u64,
    /// Wall-clock time one compile may take.
    pub timeout: Duration,
    /// Address space of the compiling process, in bytes.
    pub memory_bytes: u64,
    /// The program run as `<helper> compile-plugin` (the `ferry` binary);
    /// `None` compiles in process, where only the size limit holds.
    pub helper: Option<PathBuf>,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits { max_component_bytes: 64 << 20, timeout: Duration::from_secs(120), memory_bytes: 2 << 30, helper: None }
    }
}

impl CompileLimits {
    /// The defaults, overridden by the environment; compiles run in `helper`.
    pub fn from_env(helper: Option<PathBuf>) -> Result<Self, String> {
        let mut limits = CompileLimits { helper, ..CompileLimits::default() };
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let size = |name: &str, v: String| parse_size::parse_size(v.trim()).map_err(|e| format!("{name}={v:?}: {e}; expected a size such as `64MiB`"));
        if let Some(v) = var("FERRY_COMPILE_MAX_BYTES") {
            limits.max_component_bytes = size("FERRY_COMPILE_MAX_BYTES", v)?;
        }
        if let Some(v) = var("FERRY_COMPILE_MEMORY") {
            limits.memory_bytes = size("FERRY_COMPILE_MEMORY", v)?;
        }
        if let Some(v) = var("FERRY_COMPILE_TIMEOUT") {
            limits.timeout =
                humantime::parse_duration(v.trim()).map_err(|e| format!("FERRY_COMPILE_TIMEOUT={v:?}: {e}; expected a duration such as `120s`"))?;
        }
        Ok(limits)
    }
}

/// Which compile limit refused a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileLimit {
    /// `FERRY_COMPILE_MAX_BYTES`.
    Size,
    /// `FERRY_COMPILE_TIMEOUT`.
    Time,
    /// `FERRY_COMPILE_MEMORY`.
    Memory,
}

impl std::fmt::Display for CompileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompileLimit::Size => "component size limit",
            CompileLimit::Time => "compile time limit",
            CompileLimit::Memory => "compile memory limit",
        })
    }
}
