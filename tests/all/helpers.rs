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
    ENGINE.get_or_init(|| Arc::new(PluginEngine::new(EngineOptions { cache_dir: Some(cache_dir()), ..EngineOptions::default() }).expect("engine"))).clone()
}

/// Loads a built guest by path.
pub fn load(path: &str) -> Arc<Plugin> {
    engine().load_file(path.as_ref()).unwrap_or_else(|e| panic!("load {path}: {e}"))
}

/// The real `ferry` binary with the shared compile cache.
pub fn ferry_command(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args).env("FERRY_CACHE_DIR", cache_dir());
    cmd
}

/// Runs the real `ferry` binary; prints its output when a test fails.
pub fn ferry(args: &[&str]) -> Output {
    let out = ferry_command(args).output().expect("run ferry");
    eprintln!("ferry {args:?} -> {:?}\n--- stdout\n{}\n--- stderr\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// JSON text of a value, as records travel.
pub fn texts(values: &[serde_json::Value]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// A pipeline file against running simulators, with the seed's metadata.
pub struct PipelineSpec<'a> {
    pub source_url: &'a str,
    pub app_key: &'a str,
    pub target_url: &'a str,
    pub plugin: &'a str,
    pub state: &'a std::path::Path,
    pub start: &'a str,
    pub batch_size: usize,
    pub concurrency: usize,
    pub per_second: u32,
    pub per_minute: u32,
    pub mapping_options: &'a str,
}

impl<'a> PipelineSpec<'a> {
    /// A pipeline whose source and target cannot be reached, for checks
    /// that end before the first call.
    pub fn offline(state: &'a std::path::Path) -> PipelineSpec<'a> {
        PipelineSpec {
            source_url: "http://127.0.0.1:9",
            app_key: "k",
            target_url: "http://127.0.0.1:9",
            plugin: ferry_fixtures::JUSHUITAN_ORDERS,
            state,
            start: "2024-01-01 00:00:00",
            batch_size: 10,
            concurrency: 2,
            per_second: 5,
            per_minute: 100,
            mapping_options: "{}",
        }
    }

    /// The TOML text (the simulators' pipeline-file builder).
    pub fn toml(&self) -> String {
        ferry_sim::PipelineFile {
            name: "it-orders".into(),
            source_url: self.source_url.into(),
            app_key: self.app_key.into(),
            start: self.start.into(),
            source_timeout: "2s".into(),
            rate_limit: Some((self.per_second, self.per_minute)),
            metadata: ferry::source::jushuitan::metadata::SEED_METADATA.into(),
            plugin: self.plugin.into(),
            options: Some(self.mapping_options.into()),
            target_url: self.target_url.into(),
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            target_timeout: Some("2s".into()),
            max_attempts: Some(20),
            state: self.state.into(),
            ..ferry_sim::PipelineFile::default()
        }
        .toml()
    }
}

/// Confirmed orders at the source that the target lacks in their latest version.
pub fn missing_at_target(source: &ferry_sim::jushuitan::Truth, target: &ferry_sim::target::TargetTruth) -> Vec<u64> {
    source
        .orders
        .iter()
        .filter(|o| o.status == "Confirmed")
        .filter(|o| target.records.get(&o.o_id.to_string()).and_then(|r| r.get("modified")).and_then(|m| m.as_str()) != Some(o.modified.as_str()))
        .map(|o| o.o_id)
        .collect()
}

/// A source simulator config with generous limits (tests that are not about the budget).
pub fn source_config(seed: u64, app: &str, orders: usize) -> ferry_sim::jushuitan::JushuitanSimConfig {
    let mut c = ferry_sim::jushuitan::JushuitanSimConfig::new(seed);
    (c.orders, c.app_key, c.per_second, c.per_minute) = (orders, app.into(), 200, 100_000);
    c
}

/// Both simulators, a temp dir with a state path and a pipeline file path.
pub struct Harness {
    pub source: ferry_sim::Running<std::sync::Arc<ferry_sim::jushuitan::SimState>>,
    pub target: ferry_sim::Running<std::sync::Arc<ferry_sim::target::TargetState>>,
    pub dir: tempfile::TempDir,
    pub state: std::path::PathBuf,
    pub file: std::path::PathBuf,
    pub start: String,
    pub app: String,
}

/// Starts both simulators.
pub async fn harness(source: ferry_sim::jushuitan::JushuitanSimConfig, target: ferry_sim::target::TargetSimConfig) -> Harness {
    let start = ferry::time::format(source.from);
    let app = source.app_key.clone();
    let source = ferry_sim::jushuitan::start(source, 0).await.unwrap();
    let target = ferry_sim::target::start(target, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, file) = (dir.path().join("state.db"), dir.path().join("p.toml"));
    Harness { source, target, dir, state, file, start, app }
}

impl Harness {
    /// A pipeline against these simulators with `plugin`.
    pub fn spec<'a>(&'a self, plugin: &'a str) -> PipelineSpec<'a> {
        PipelineSpec {
            source_url: &self.source.url,
            app_key: &self.app,
            target_url: &self.target.url,
            plugin,
            state: &self.state,
            start: &self.start,
            batch_size: 40,
            concurrency: 4,
            per_second: self.source.state.config().per_second,
            per_minute: self.source.state.config().per_minute,
            mapping_options: "{}",
        }
    }

    /// Writes the pipeline file; returns its path as text.
    pub fn write(&self, spec: &PipelineSpec<'_>) -> String {
        std::fs::write(&self.file, spec.toml()).unwrap();
        self.file.to_str().unwrap().to_string()
    }

    /// Confirmed source orders the target lacks in their latest version.
    pub fn missing(&self) -> Vec<u64> {
        missing_at_target(&self.source.state.truth(), &self.target.state.truth())
    }

    /// Waits (at most 30 s) until the target has taken `n` commands: a run
    /// started beside the test is under way.
    pub async fn wait_for_commands(&self, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.target.state.truth().commands < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Whether every record was applied exactly once.
    pub fn each_once(&self) -> bool {
        let t = self.target.state.truth();
        t.doubled().is_empty() && t.deliveries.values().all(|n| *n == 1)
    }
}

/// Runs the real binary off the async runtime.
pub async fn ferry_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || ferry(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

/// Arguments as owned strings.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Waits (off the async runtime) for `child` to exit, at most `within`;
/// kills it and answers `None` past that.
pub async fn wait_exit(mut child: std::process::Child, within: std::time::Duration) -> Option<std::process::ExitStatus> {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
}

/// Sends `signal` (`-TERM`, `-9`, `-STOP`, ...) to process `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
    assert!(sent.success(), "kill {signal} {pid}");
}
