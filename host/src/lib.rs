//! Ferry: syncs orders from a rate-limited e-commerce API (Jushuitan) into a
//! target system without losing or doubling one, through mapping plugins
//! that are sandboxed WebAssembly components.
//!
//! # Layout
//! - [`plugin`]: the wasm runtime: engine, limits, compile cache, registry
//!   with hot swap, file watcher.
//! - [`cli`]: the `ferry` command line.

pub mod cli;
pub mod plugin;
