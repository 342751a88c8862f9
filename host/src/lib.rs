//! Ferry: syncs orders from a rate-limited e-commerce API (Jushuitan) into a
//! target system without losing or doubling one, through mapping plugins
//! that are sandboxed WebAssembly components.
//!
//! # Layout
//! - [`api`]: `ferry serve`'s HTTP layer: parses, authorizes (tenant
//!   tokens) and calls the command engine; pipelines' views, metrics,
//!   health, OpenAPI, the dashboard, the listener's bounds.
//! - [`commands`]: the command engine (seed 001's Command pattern): sync
//!   and plugin commands, their typed states, history, queue, schedules
//!   and executor, in one process or a cluster (leases), behind one set of
//!   methods.
//! - [`pipeline`]: the pipeline file, the run loop, run summaries, DLQ replay.
//! - [`state`]: the state store trait, SQLite and PostgreSQL: checkpoints,
//!   outbox, idCheck, dead letters, runs, commands, plugin versions; one
//!   writer per pipeline (a lock beside a SQLite file).
//! - [`cluster`]: several `ferry serve` workers on one PostgreSQL database:
//!   leases (also held by a `ferry run` of a pipeline there), heartbeats.
//! - [`sink`]: Command-pattern, HTTP and JSONL sinks.
//! - [`plugin`]: the wasm runtime: engine, limits, compiling in a child
//!   process under limits, compile cache, output checks, a fair pool per
//!   tenant, registry with hot swap, file watcher.
//! - [`source`]: the Jushuitan client: signing, metadata templates, window
//!   planning, rate limiting, retries, paging.
//! - [`budget`]: the rate-budget traits the source draws on and the state
//!   stores implement (so neither imports the other).
//! - [`credentials`]: access tokens as state, sealed with a key from the
//!   environment; the vault trait the source draws on and the stores
//!   implement.
//! - [`net`]: one HTTP client per timeout for the process (source and sinks).
//! - [`memory`]: gives freed heap back to the system after runs.
//! - [`plain`]: parser messages in the user's terms (no Rust type names).
//! - [`time`]: Asia/Shanghai times as the API writes them.
//! - [`cli`]: the `ferry` command line's production commands; the binary
//!   (`src/bin/ferry`) adds `ferry demo` and `ferry sim`, which run the
//!   simulators of the `ferry-sim` crate (not part of this library).

pub mod alerts;
pub mod api;
pub mod budget;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod credentials;
pub mod fields;
pub mod memory;
pub mod net;
pub mod pipeline;
pub mod plain;
pub mod plugin;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
