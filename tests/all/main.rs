//! Ferry's one integration-test binary. Topic modules share the helpers in
//! `helpers`; guests come from the `ferry-fixtures` crate, built from source.

mod helpers;
mod pg;

// Plugins: the shipped mappings, the sandbox limits, hot swap, the CLI.
mod plugin_cli;
mod plugin_compile;
mod plugin_hostile;
mod plugin_languages;
mod plugin_mapping;
mod plugin_new;
mod plugin_sandbox;
mod plugin_swap;

// The Jushuitan source against its simulator.
mod source;

// Answers as they really come: spellings and lies, end to end.
mod answers;

// Access tokens that expire and renew.
mod tokens;
mod tokens_serve;

// Idempotent writes, crash and resume, dead letters.
mod writes;

// What a killed process leaves behind, picked up by the next.
mod pg_restart;
mod restart;

// The binary end to end: run, validate, state, demo, bad pipeline files.
mod cli_habits;
mod cli_run;
mod examples;

// ferry serve: the control API.
mod alerts;
mod objects;
mod reconcile;
mod scheme;
mod serve;
mod serve_ops;

// Two tenants on one host, one of them hostile.
mod tenants;

// Commands as objects: history, queue, undo.
mod commands;

// The state store on SQLite and PostgreSQL: one conformance suite.
mod state_store;

// Scale-out: several `ferry serve` workers on one PostgreSQL database
// (the workers' harness in `fleet`), and one writer per pipeline (`leases`).
mod cluster;
mod fleet;
mod leases;

// The structure: file sizes, no SQL over HTTP, imports one way.
mod structure;
