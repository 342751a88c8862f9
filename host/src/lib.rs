//! Ferry: syncs orders from a rate-limited e-commerce API (Jushuitan) into a
//! target system without losing or doubling one, through mapping plugins
//! that are sandboxed WebAssembly components.
//!
//! # Layout
//! - [`api`]: `ferry serve`: the Command-pattern control API, schedules,
//!   metrics, tenant auth, OpenAPI; sync commands' queue and dispatcher,
//!   in one process or a cluster, under `api::sync`.
//! - [`pipeline`]: the pipeline file, the run loop, run summaries, DLQ replay.
//! - [`state`]: the state store trait, SQLite and PostgreSQL: checkpoints,
//!   outbox, idCheck, dead letters, runs, commands, plugin versions; one
//!   writer per pipeline (a lock beside a SQLite file).
//! - [`cluster`]: several `ferry serve` workers on one PostgreSQL database:
//!   leases (also held by a `ferry run` of a pipeline there), heartbeats.
//! - [`sink`]: Command-pattern, HTTP and JSONL sinks.
//! - [`demo`]: `ferry demo`.
//! - [`plugin`]: the wasm runtime: engine, limits, compiling in a child
//!   process under limits, compile cache, output checks, a fair pool per
//!   tenant, registry with hot swap, file watcher.
//! - [`source`]: the Jushuitan client: signing, metadata templates, window
//!   planning, rate limiting, retries, paging.
//! - [`sim`]: simulators of the Jushuitan API and of a Command-pattern target.
//! - [`budget`]: the rate-budget traits the source draws on and the state
//!   stores implement (so neither imports the other).
//! - [`time`]: Asia/Shanghai times as the API writes them.
//! - [`cli`]: the `ferry` command line.

pub mod api;
pub mod budget;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod fields;
pub mod pipeline;
pub mod plugin;
pub mod sim;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
