//! Per-batch limits of a plugin call, configurable per pipeline
//! (`[mapping.limits]`), deny-by-default sandbox otherwise.

use serde::{Deserialize, Serialize};
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
