//! `ferry demo`.

use super::Exit;
use crate::demo::{self, DemoOptions};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

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

pub fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    let plugin = match args.plugin.or_else(demo::find_plugin) {
        Some(p) => p,
        None => anyhow::bail!(
            "the jushuitan-orders plugin is not built: run `./dev demo`, or `cargo build --release --target wasm32-wasip2 -p jushuitan-orders` and pass --plugin"
        ),
    };
    let dir = args.dir.unwrap_or_else(|| std::env::temp_dir().join(format!("ferry-demo-{}", jiff::Timestamp::now().as_millisecond())));
    println!("ferry demo: {} orders, plugin {}, files in {}", args.orders, plugin.display(), dir.display());
    println!("the simulated source allows 5 calls/s and 100 calls/min, like the real API; this takes about half a minute\n");
    let engine = super::engine()?;
    let report = super::runtime()?
        .block_on(demo::run(DemoOptions { orders: args.orders, plugin, seed: args.seed, dir }, engine, |title, s| {
            println!("{title}:\n{}", s.render());
        }))
        .context("demo failed")?;
    println!("pipeline file: {}", report.pipeline_file.display());
    println!("orders changed or created at the source during the first sync: {}", report.changed_during_sync);
    println!("ground truth: {} confirmed orders at the source; missing {}, doubled {}", report.expected, report.missing.len(), report.doubled.len());
    if report.ok() {
        println!("OK: every order delivered in its latest version, none twice");
        Ok(Exit::Ok)
    } else {
        println!("NOT OK: missing {:?}, doubled {:?}", &report.missing[..report.missing.len().min(10)], &report.doubled[..report.doubled.len().min(10)]);
        Ok(Exit::Partial)
    }
}
