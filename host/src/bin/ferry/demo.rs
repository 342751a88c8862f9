//! `ferry demo`: both simulators in-process on free loopback ports, a
//! generated pipeline file (the simulators' builder), a first sync with the default rate limits and
//! orders changing underneath, an incremental second sync, and a check of
//! the target against the source's ground truth.

use anyhow::Context;
use clap::Args;
use ferry::cli::Exit;
use ferry::pipeline::{Pipeline, RunOptions, RunStatus, Runner, Summary};
use ferry::plugin::PluginEngine;
use ferry::source::jushuitan::metadata::SEED_METADATA;
use ferry_sim::PipelineFile;
use ferry_sim::jushuitan::{self, JushuitanSimConfig, Mutation};
use ferry_sim::target::{self, TargetSimConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Demo settings.
#[derive(Debug, Clone)]
struct DemoOptions {
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
struct DemoReport {
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
    /// Access tokens renewed, when the demo kept its token (a key was set).
    pub token_refreshes: Option<u64>,
}

impl DemoReport {
    /// Whether nothing was lost or doubled and both runs finished.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.doubled.is_empty() && self.first.status == RunStatus::Ok && self.second.status == RunStatus::Ok
    }
}

/// The demo's pipeline file: the seed's Jushuitan -> Command-target
/// pipeline against the two simulators, with the default rate limits.
fn pipeline_file(source: &str, target: &str, plugin: &Path, start: &str, tokens: bool) -> PipelineFile {
    // With a sealing key, Ferry keeps the short-lived token and renews it.
    let source_extra = if tokens {
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::try_from(TOKEN_LIFETIME).expect("a short lifetime");
        vec![
            "refresh_token = \"ferry-demo-refresh\"".into(),
            format!("token_expires_at = \"{}\"", ferry::time::rfc3339(expires)),
            format!("token_refresh_window = \"{}s\"", TOKEN_LIFETIME.as_secs() / 2),
        ]
    } else {
        Vec::new()
    };
    PipelineFile {
        source_extra,
        name: "demo-orders".into(),
        comment: Some(
            "Written by `ferry demo`: the seed's Jushuitan -> Command-target pipeline.\n\
             Demo credentials of the simulator; real pipelines reference the\n\
             environment instead: app_secret = \"${JST_APP_SECRET}\"."
                .into(),
        ),
        source_url: source.into(),
        start: start.into(),
        lag: "2s".into(),
        paging: Some("ts".into()),
        metadata: SEED_METADATA.into(),
        plugin: plugin.into(),
        target_url: target.into(),
        ..PipelineFile::default()
    }
}

/// The simulated access token's lifetime: shorter than the demo, so that
/// Ferry renews it during the first sync.
const TOKEN_LIFETIME: Duration = Duration::from_secs(16);

/// Runs the demo.
async fn demo(opts: DemoOptions, engine: Arc<PluginEngine>, mut on_summary: impl FnMut(&str, &Summary)) -> anyhow::Result<DemoReport> {
    let mut sim_config = JushuitanSimConfig::new(opts.seed);
    sim_config.orders = opts.orders;
    sim_config.mutation = Mutation { changes_per_request: 0.5, new_per_request: 0.3, ..Mutation::default() };
    let tokens = std::env::var_os(ferry::credentials::KEY_ENV).is_some();
    if tokens {
        sim_config.tokens =
            Some(jushuitan::TokenPolicy { lifetime: TOKEN_LIFETIME, refresh_window: TOKEN_LIFETIME / 2, provider: false, answer_delay: Duration::ZERO });
    }
    let start = ferry::time::format(sim_config.from - jiff::SignedDuration::from_mins(1));
    let source = jushuitan::start(sim_config, 0).await?;
    let target = target::start(TargetSimConfig::default(), 0).await?;
    std::fs::create_dir_all(&opts.dir)?;
    let file = opts.dir.join("demo-orders.toml");
    let plugin = std::path::absolute(&opts.plugin)?;
    std::fs::write(&file, pipeline_file(&source.url, &target.url, &plugin, &start, tokens).toml())?;
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
    let token_refreshes = tokens.then_some(truth.stats.tokens.refreshed);
    let report =
        DemoReport { pipeline_file: file, first, second, expected: expected.len(), missing, doubled: landed.doubled(), changed_during_sync, token_refreshes };
    source.stop().await;
    target.stop().await;
    Ok(report)
}

/// Where the jushuitan-orders plugin usually is: after `./dev demo`, or
/// beside the binary in a release archive (`bin/ferry`, `plugins/`).
fn find_plugin() -> Option<PathBuf> {
    let rel = Path::new("wasm32-wasip2").join("release").join("jushuitan_orders.wasm");
    let mut candidates = vec![PathBuf::from("target").join(&rel)];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(dir.join(&rel));
        candidates.push(dir.join("plugins").join("jushuitan_orders.wasm"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// `ferry demo`'s flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Orders at the simulated source.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// The jushuitan-orders plugin (default: the one `./dev demo` builds).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Seed of the simulators.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the pipeline file and its state (default: a new temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `ferry demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let plugin = match args.plugin.or_else(find_plugin) {
        Some(p) => p,
        None => anyhow::bail!(
            "the jushuitan-orders plugin is not built: run `./dev demo`, or `cargo build --release --target wasm32-wasip2 -p jushuitan-orders` and pass --plugin"
        ),
    };
    let dir = args.dir.unwrap_or_else(|| std::env::temp_dir().join(format!("ferry-demo-{}", jiff::Timestamp::now().as_millisecond())));
    println!("ferry demo: {} orders, plugin {}, files in {}", args.orders, plugin.display(), dir.display());
    println!("the simulated source allows 5 calls/s and 100 calls/min, like the real API; this takes about half a minute\n");
    let engine = ferry::cli::engine()?;
    let report = ferry::cli::runtime()?
        .block_on(demo(DemoOptions { orders: args.orders, plugin, seed: args.seed, dir }, engine, |title, s| {
            println!("{title}:\n{}", s.render());
        }))
        .context("demo failed")?;
    println!("pipeline file: {}", report.pipeline_file.display());
    println!("orders changed or created at the source during the first sync: {}", report.changed_during_sync);
    match report.token_refreshes {
        Some(n) => println!("access token: lived {}s, renewed {n} times ahead of its expiry, stored encrypted", TOKEN_LIFETIME.as_secs()),
        None => println!("access token: fixed (set {} to see Ferry keep and renew a short-lived one)", ferry::credentials::KEY_ENV),
    }
    println!("ground truth: {} confirmed orders at the source; missing {}, doubled {}", report.expected, report.missing.len(), report.doubled.len());
    if report.ok() {
        println!("OK: every order delivered in its latest version, none twice");
        Ok(Exit::Ok)
    } else {
        println!("NOT OK: missing {:?}, doubled {:?}", &report.missing[..report.missing.len().min(10)], &report.doubled[..report.doubled.len().min(10)]);
        Ok(Exit::Partial)
    }
}
