//! `ferry plugin check` and `ferry plugin test`.

use super::Exit;
use crate::plugin::{Outcome, PluginEngine};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a working plugin skeleton: the mapping, a sample input and a
    /// README with the commands to build, check and test it.
    New {
        /// The plugin's name (lower-case letters, digits, `-`).
        name: String,
        /// Its language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: super::scaffold::Lang,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Load a plugin, check its contract and options, print what it is.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Map records from a JSONL file and print one outcome per line (JSONL).
    /// Exits 1 if any record errored.
    Test {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Input records, one JSON object per line (default with --pipeline:
        /// its `mapping.examples`).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Records per batch.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Every attempt to put a version of a pipeline's plugin live, oldest first.
    History {
        /// The pipeline file.
        pipeline: PathBuf,
        /// One JSON object per swap (JSON Lines) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put back the version that was live before the current one: it passes
    /// the same checks, then replaces the pipeline's plugin file (a running
    /// `ferry serve` picks it up through its file watch).
    Rollback {
        /// The pipeline file.
        pipeline: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct Common {
    /// Options for the plugin: a JSON or TOML file (what a pipeline's
    /// `[mapping.options]` holds).
    #[arg(long, conflicts_with = "pipeline")]
    options: Option<PathBuf>,
    /// Use this pipeline's options (and, for `test` without --input, its
    /// `mapping.examples`).
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Do not use the on-disk compile cache.
    #[arg(long)]
    no_cache: bool,
}

impl Common {
    fn engine(&self) -> anyhow::Result<PluginEngine> {
        let cache_dir = if self.no_cache { None } else { super::default_cache_dir() };
        super::engine_with_cache(cache_dir)
    }

    fn options(&self) -> anyhow::Result<String> {
        if let Some(p) = self.pipeline()? {
            return Ok(p.mapping.options);
        }
        let Some(path) = &self.options else { return Ok("{}".into()) };
        Ok(crate::pipeline::options::read_options(path).map_err(anyhow::Error::msg)?.to_string())
    }

    /// The pipeline named by `--pipeline` (its secrets need not be set).
    fn pipeline(&self) -> anyhow::Result<Option<crate::pipeline::Pipeline>> {
        Ok(self.pipeline.as_deref().map(crate::pipeline::Pipeline::load_state_only).transpose()?)
    }
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<Exit> {
    match cmd {
        PluginCommand::New { name, lang, dir } => super::scaffold::new_plugin(&name, lang, dir),
        PluginCommand::Check { file, json, common } => check(&file, json, &common),
        PluginCommand::Test { file, input, batch_size, common } => test(&file, input.as_deref(), batch_size.max(1), &common),
        PluginCommand::History { pipeline, json } => history(&pipeline, json),
        PluginCommand::Rollback { pipeline } => rollback(&pipeline),
    }
}

fn check(file: &Path, json: bool, common: &Common) -> anyhow::Result<Exit> {
    let engine = common.engine()?;
    let options = common.options()?;
    let plugin = engine.load_file(file)?;
    let limits = common.pipeline()?.map(|p| p.mapping.limits).unwrap_or_default();
    let checked = plugin.check_options(&limits, &options);
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "name": plugin.info.name, "version": plugin.info.version, "description": plugin.info.description,
            "contract": plugin.info.contract, "hostContract": crate::plugin::CONTRACT_VERSION, "digest": plugin.digest,
            "size": plugin.size, "compileMs": plugin.compile_time.as_secs_f64() * 1e3, "fromCache": plugin.from_cache,
            "options": checked.as_ref().err().map(|e| e.to_string()), "pass": checked.is_ok(),
        });
        writeln!(out, "{v}")?;
        return Ok(if checked.is_ok() { Exit::Ok } else { Exit::Partial });
    }
    writeln!(out, "plugin:      {} {}", plugin.info.name, plugin.info.version)?;
    writeln!(out, "description: {}", plugin.info.description)?;
    writeln!(out, "contract:    {} (host speaks {})", plugin.info.contract, crate::plugin::CONTRACT_VERSION)?;
    writeln!(out, "digest:      sha256:{}", plugin.digest)?;
    writeln!(out, "size:        {} bytes", plugin.size)?;
    writeln!(out, "compile:     {:.1} ms{}", plugin.compile_time.as_secs_f64() * 1e3, if plugin.from_cache { " (from disk cache)" } else { "" })?;
    match checked {
        Ok(()) => {
            writeln!(out, "options:     ok")?;
            writeln!(out, "result:      PASS")?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            writeln!(out, "options:     {e}")?;
            writeln!(out, "result:      FAIL")?;
            Ok(Exit::Partial)
        }
    }
}

fn test(file: &Path, input: Option<&Path>, batch_size: usize, common: &Common) -> anyhow::Result<Exit> {
    let engine = common.engine()?;
    let options = common.options()?;
    let plugin = engine.load_file(file)?;
    let limits = common.pipeline()?.map(|p| p.mapping.limits).unwrap_or_default();
    plugin.check_options(&limits, &options)?;
    let mut records = Vec::new();
    match input {
        Some(input) => {
            let reader = std::io::BufReader::new(std::fs::File::open(input).with_context(|| format!("cannot open input {}", input.display()))?);
            for (n, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", input.display(), n + 1))?;
                if !line.trim().is_empty() {
                    records.push(line);
                }
            }
        }
        None => match common.pipeline()? {
            Some(p) if !p.mapping.examples.is_empty() => records = p.mapping.examples,
            Some(p) => bail!("--input: required ({} has no mapping.examples to map)", p.file.display()),
            None => bail!("--input: required (a JSONL file of records), or --pipeline with mapping.examples"),
        },
    }
    let mut out = std::io::stdout().lock();
    let mut errors = 0usize;
    for batch in records.chunks(batch_size) {
        let output = plugin.map_batch(&limits, &options, batch)?;
        for outcome in &output.outcomes {
            if matches!(outcome, Outcome::Error { .. }) {
                errors += 1;
            }
            writeln!(out, "{}", serde_json::to_string(outcome)?)?;
        }
    }
    if errors > 0 {
        eprintln!("{errors} of {} records errored", records.len());
        return Ok(Exit::Partial);
    }
    Ok(Exit::Ok)
}

fn history(path: &Path, json: bool) -> anyhow::Result<Exit> {
    let p = crate::pipeline::Pipeline::load_state_only(path)?;
    let store = p.state.open()?;
    let swaps = store.swaps(&p.name)?;
    let mut out = std::io::stdout().lock();
    for s in &swaps {
        if json {
            writeln!(out, "{}", serde_json::to_string(s)?)?;
            continue;
        }
        let short = |d: &str| d.chars().take(12).collect::<String>();
        let state = if s.accepted { "live    " } else { "REJECTED" };
        let previous = s.previous.as_deref().map(short).unwrap_or_else(|| "-".into());
        writeln!(out, "{}  {state}  {}  from {}  (before: {previous})", s.at, s.label, s.origin)?;
        if let Some(r) = &s.reason {
            writeln!(out, "    reason: {r}")?;
        }
    }
    eprintln!("{} plugin swaps for {}", swaps.len(), p.name);
    Ok(Exit::Ok)
}

fn rollback(path: &Path) -> anyhow::Result<Exit> {
    let p = crate::pipeline::Pipeline::load(path)?;
    let store = p.state.open()?;
    let swaps = store.swaps(&p.name)?;
    let current =
        swaps.iter().rev().find(|s| s.accepted).ok_or_else(|| anyhow::anyhow!("{}: no plugin version has gone live yet; nothing to roll back", p.name))?;
    let previous =
        current.previous.clone().ok_or_else(|| anyhow::anyhow!("{}: {} was the first version; there is nothing before it", p.name, current.label))?;
    let bytes = store.plugin_version(&previous)?.ok_or_else(|| anyhow::anyhow!("{}: version sha256:{previous} is no longer kept in {}", p.name, p.state))?;
    let registry = crate::plugin::Registry::new(super::engine()?);
    registry.set_recorder(crate::pipeline::history::store_recorder(store.clone()));
    registry.register(&p.name, p.mapping.options.clone(), p.mapping.limits.clone(), p.mapping.examples.clone());
    let plugin = registry.install_bytes(&p.name, &bytes, "rollback")?;
    let file = &p.mapping.plugin;
    let tmp = file.with_extension(format!("rollback-{}.tmp", std::process::id()));
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))?;
    println!("{}: {} is live again (was {}); wrote {}", p.name, plugin.label(), current.label, file.display());
    Ok(Exit::Ok)
}
