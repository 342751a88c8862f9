//! Compiling is limited: a component over the size limit is refused before
//! anything runs, and a compile bomb (valid WebAssembly that needs far more
//! memory or time to compile than it takes to send) is stopped in the
//! compiler process by the memory or the time limit, with an error naming
//! the limit, while the host's own memory stays small and the next plugin
//! compiles as before.

use crate::helpers::{ferry_command, load};
use ferry::plugin::{CompileLimit, CompileLimits, EngineOptions, Limits, PluginEngine, PluginError};
use std::time::{Duration, Instant};

/// An engine whose cold compiles run in the `ferry` binary under `limits`,
/// with no disk cache (every load compiles).
fn contained(limits: CompileLimits) -> PluginEngine {
    let compile = CompileLimits { helper: Some(env!("CARGO_BIN_EXE_ferry").into()), ..limits };
    PluginEngine::new(EngineOptions { compile, ..EngineOptions::default() }).expect("engine")
}

fn bomb() -> Vec<u8> {
    std::fs::read(ferry_fixtures::COMPILE_BOMB).expect("the compile bomb fixture")
}

/// This process's resident set now, in bytes (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).expect("VmRSS");
    kb * 1024
}

/// A plugin compiled in the helper process loads into the pooled engine
/// and maps like one compiled in process.
#[test]
fn a_plugin_compiled_in_the_helper_runs() {
    let engine = contained(CompileLimits::default());
    let plugin = engine.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("compiled in the helper");
    assert!(!plugin.from_cache);
    let inline = load(ferry_fixtures::JUSHUITAN_ORDERS);
    assert_eq!(plugin.info, inline.info);
    let record =
        serde_json::json!({"o_id": 1, "io_id": 1, "so_id": "S1", "modified": "2024-01-01 00:00:00", "pay_amount": "1.00", "freight": "0", "items": []});
    let out = plugin.map_batch(&Limits::default(), "{}", &[record.to_string()]).expect("maps");
    let again = inline.map_batch(&Limits::default(), "{}", &[record.to_string()]).expect("maps");
    assert_eq!(format!("{:?}", out.outcomes), format!("{:?}", again.outcomes));
}

/// Over the size limit: refused before any compile, naming the limit.
#[test]
fn a_component_over_the_size_limit_is_refused() {
    let engine = contained(CompileLimits { max_component_bytes: 1 << 20, ..CompileLimits::default() });
    let Err(err) = engine.load_bytes(&bomb(), "bomb.wasm") else { panic!("refused") };
    assert!(matches!(err, PluginError::CompileLimit { limit: CompileLimit::Size, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("bomb.wasm") && text.contains("FERRY_COMPILE_MAX_BYTES") && text.contains("1048576"), "{text}");
}

/// The bomb needs about a gigabyte: under a 512 MiB cap the compiler
/// process dies, the error names the memory limit, this process stays
/// small, and the next plugin compiles.
#[test]
fn a_compile_bomb_is_stopped_by_the_memory_limit() {
    let engine = contained(CompileLimits { memory_bytes: 512 << 20, ..CompileLimits::default() });
    let before = rss_bytes();
    let Err(err) = engine.load_bytes(&bomb(), "bomb.wasm") else { panic!("refused") };
    assert!(matches!(err, PluginError::CompileLimit { limit: CompileLimit::Memory, .. }), "{err}");
    assert!(err.to_string().contains("FERRY_COMPILE_MEMORY"), "{err}");
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 128 << 20, "the host grew by {grown} bytes while the bomb compiled elsewhere");
    engine.load_file(ferry_fixtures::JUSHUITAN_ORDERS.as_ref()).expect("the next plugin compiles");
}

/// With memory to spare, the time limit stops the bomb at its deadline.
#[test]
fn a_compile_bomb_is_stopped_by_the_time_limit() {
    let engine = contained(CompileLimits { memory_bytes: 16 << 30, timeout: Duration::from_millis(500), ..CompileLimits::default() });
    let started = Instant::now();
    let Err(err) = engine.load_bytes(&bomb(), "bomb.wasm") else { panic!("refused") };
    assert!(matches!(err, PluginError::CompileLimit { limit: CompileLimit::Time, .. }), "{err}");
    assert!(err.to_string().contains("FERRY_COMPILE_TIMEOUT"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped at the deadline, took {:?}", started.elapsed());
}

/// The binary reads the limits from the environment and says which one a
/// component broke; a bad value is an error naming the variable.
#[test]
fn the_cli_names_the_compile_limit() {
    let out = ferry_command(&["plugin", "check", ferry_fixtures::COMPILE_BOMB, "--no-cache"]).env("FERRY_COMPILE_MEMORY", "512MiB").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("compile memory limit") && stderr.contains("FERRY_COMPILE_MEMORY"), "{stderr}");
    let out = ferry_command(&["plugin", "check", ferry_fixtures::COMPILE_BOMB]).env("FERRY_COMPILE_TIMEOUT", "soon").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FERRY_COMPILE_TIMEOUT=\"soon\""), "{stderr}");
}

/// The same bomb sent again is refused at once, without a second compile.
#[test]
fn a_refused_bomb_is_not_compiled_again() {
    let engine = contained(CompileLimits { memory_bytes: 16 << 30, timeout: Duration::from_millis(500), ..CompileLimits::default() });
    assert!(engine.load_bytes(&bomb(), "bomb.wasm").is_err());
    let Err(err) = engine.load_bytes(&bomb(), "again.wasm") else { panic!("refused again") };
    assert!(matches!(err, PluginError::CompileLimit { limit: CompileLimit::Time, .. }), "{err}");
    assert!(err.to_string().contains("not compiled again") && err.to_string().contains("again.wasm"), "{err}");
}
