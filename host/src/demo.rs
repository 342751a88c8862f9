//! `ferry demo`: both simulators in-process on free loopback ports, a
//! generated pipeline file, a first sync with the default rate limits and
//! orders changing underneath, an incremental second sync, and a check of
//! the target against the source's ground truth.

use crate::pipeline::{Pipeline, RunOptions, RunStatus, Runner, Summary};
use crate::plugin::PluginEngine;
use crate::sim::jushuitan::{self, JushuitanSimConfig, Mutation};
use crate::sim::target::{self, TargetSimConfig};
use crate::source::jushuitan::metadata::SEED_METADATA;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Orders at the source.
    pub orders: usize,
    /// The jushuitan-orders plugin.
    pub plugin: PathBuf,
    /// Seed of the simulators.
    pub seed: u64,
    /// Where the pipeline file and state go.
    pub dir: PathBuf,
}

/// The demo's outcome.
#[derive(Debug)]
pub struct DemoReport {
    /// The pipeline file written.
    pub pipeline_file: PathBuf,
    /// First run.
    pub first: Summary,
    /// Incremental run.
    pub second: Summary,
    /// Confirmed orders at the source at the end.
    pub expected: usize,
    /// Of those, not at the target in their latest version.
    pub missing: Vec<u64>,
    /// Versions applied more than once at the target.
    pub doubled: Vec<String>,
    /// Orders the simulator changed or created during the first run.
    pub changed_during_sync: u64,
}

impl DemoReport {
    /// Whether nothing was lost or doubled and both runs finished.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.doubled.is_empty() && self.first.status == RunStatus::Ok && self.second.status == RunStatus::Ok
    }
}

fn pipeline_text(source: &str, target: &str, plugin: &Path, start: &str) -> String {
    format!(
        r#"# Written by `ferry demo`: the seed's Jushuitan -> Command-target pipeline.
name = "demo-orders"

[source]
kind = "jushuitan"
base_url = "{source}"
# Demo credentials of the simulator. Real pipelines reference the
# environment instead: app_secret = "${{JST_APP_SECRET}}".
app_key = "ferry-demo-app"
app_secret = "ferry-demo-secret"
access_token = "ferry-demo-token"
start = "{start}"
window = "1d"
lag = "2s"
lookback = "10m"
timeout = "5s"
paging = "ts"
# The seed's QingYiYun metadata block, verbatim.
metadata = '''{SEED_METADATA}'''

[mapping]
plugin = "{plugin}"

[target]
kind = "command"
base_url = "{target}"
resource = "order-commands"
concurrency = 10
batch_size = 100

[state]
path = "state.db"
"#,
        plugin = plugin.display()
    )
}

/// Runs the demo.
pub async fn run(opts: DemoOptions, engine: Arc<PluginEngine>, mut on_summary: impl FnMut(&str, &Summary)) -> anyhow::Result<DemoReport> {
    let mut sim_config = JushuitanSimConfig::new(opts.seed);
    sim_config.orders = opts.orders;
    sim_config.mutation = Mutation { changes_per_request: 0.5, new_per_request: 0.3 };
    let start = crate::time::format(sim_config.from - jiff::SignedDuration::from_mins(1));
    let source = jushuitan::start(sim_config, 0).await?;
    let target = target::start(TargetSimConfig::default(), 0).await?;
    std::fs::create_dir_all(&opts.dir)?;
    let file = opts.dir.join("demo-orders.toml");
    let plugin = std::path::absolute(&opts.plugin)?;
    std::fs::write(&file, pipeline_text(&source.url, &target.url, &plugin, &start))?;
    let pipeline = Pipeline::load(&file)?;
    let lag = pipeline.source.lag;

    let first = Runner::new(pipeline.clone(), engine.clone(), false)?.run(RunOptions::incremental()).await;
    on_summary("first sync (orders changing underneath)", &first);
    let stats = source.state.stats();
    let changed_during_sync = stats.orders_changed + stats.orders_created;
    // The shop closes: nothing changes any more, so the ground truth is final.
    source.state.set_mutation(Mutation::default());
    tokio::time::sleep(lag + Duration::from_millis(1200)).await;
    let second = Runner::new(pipeline, engine, false)?.run(RunOptions::incremental()).await;
    on_summary("incremental sync (only what changed)", &second);

    let truth = source.state.truth();
    let landed = target.state.truth();
    let expected: Vec<_> = truth.orders.iter().filter(|o| o.status == "Confirmed").collect();
    let missing = expected
        .iter()
        .filter(|o| landed.records.get(&o.o_id.to_string()).and_then(|r| r.get("modified")).and_then(Value::as_str) != Some(o.modified.as_str()))
        .map(|o| o.o_id)
        .collect();
    let report = DemoReport { pipeline_file: file, first, second, expected: expected.len(), missing, doubled: landed.doubled(), changed_during_sync };
    source.stop().await;
    target.stop().await;
    Ok(report)
}

/// Where the jushuitan-orders plugin usually is after `./dev demo`.
pub fn find_plugin() -> Option<PathBuf> {
    let rel = Path::new("wasm32-wasip2").join("release").join("jushuitan_orders.wasm");
    let mut candidates = vec![PathBuf::from("target").join(&rel)];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(dir.join(&rel));
    }
    candidates.into_iter().find(|p| p.is_file())
}
