//! Shared test helpers: one engine with a disk cache per test binary,
//! plugin loading, and running the real `ferry` binary.

use ferry::plugin::{EngineOptions, Plugin, PluginEngine};
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, OnceLock};

/// A compile-cache dir shared by the tests of this run.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ferry-cache")
}

/// One engine for the whole test binary (as in production).
pub fn engine() -> Arc<PluginEngine> {
    static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(PluginEngine::new(EngineOptions { cache_dir: Some(cache_dir()), ..EngineOptions::default() }).expect("engine")))
        .clone()
}

/// Loads a built guest by path.
pub fn load(path: &str) -> Arc<Plugin> {
    engine().load_file(path.as_ref()).unwrap_or_else(|e| panic!("load {path}: {e}"))
}

/// Runs the real `ferry` binary; prints its output when a test fails.
pub fn ferry(args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_CACHE_DIR", cache_dir())
        .output()
        .expect("run ferry");
    eprintln!("ferry {args:?} -> {:?}\n--- stdout\n{}\n--- stderr\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// JSON text of a value, as records travel.
pub fn texts(values: &[serde_json::Value]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}
