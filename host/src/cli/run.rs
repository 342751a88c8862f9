//! `ferry run`, `ferry validate`, `ferry state`.

use super::{Exit, LogFormat};
use crate::pipeline::{DryRunItem, Pipeline, RunOptions, Runner, Summary};
use crate::plugin::Registry;
use anyhow::Context;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (TOML, or JSON).
    pipeline: PathBuf,
    /// Backfill from this time (`yyyy-MM-dd HH:mm:ss` Asia/Shanghai, or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Backfill up to this time (default: now minus the lag).
    #[arg(long)]
    until: Option<String>,
    /// Map and print the records (JSONL on stdout); write nothing.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: map the records idCheck would skip as already synced
    /// too, to preview a changed mapping on real data.
    #[arg(long, requires = "dry_run")]
    include_synced: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file.
    pipeline: PathBuf,
}

pub(super) fn load(path: &std::path::Path) -> anyhow::Result<Pipeline> {
    let p = Pipeline::load(path)?;
    p.say_warnings();
    Ok(p)
}

fn time(flag: &str, v: Option<String>) -> anyhow::Result<Option<jiff::Timestamp>> {
    v.map(|t| crate::time::parse(&t).map_err(|e| anyhow::anyhow!("{flag}: {e}"))).transpose()
}

pub fn run(args: RunArgs, format: LogFormat) -> anyhow::Result<Exit> {
    let pipeline = load(&args.pipeline)?;
    let since = time("--since", args.since)?;
    let until = time("--until", args.until)?;
    crate::time::check_range(since, until).map_err(|e| anyhow::anyhow!("--since/--until: {e}"))?;
    // One writer per pipeline, held until this run ends (a dry run writes nothing).
    let _writer = if args.dry_run { None } else { Some(super::sole_writer(&pipeline, "ferry run")?) };
    let rt = super::runtime()?;
    let mut runner = Runner::new(pipeline, super::engine()?, args.dry_run)?.showing(Arc::new(|item| match item {
        DryRunItem::Mapped(r) => println!("{r}"),
        DryRunItem::Dead(d) => eprintln!("dead letter {}@{}: {}", d.key.id, d.key.version, d.reason),
    }));
    if args.include_synced {
        runner = runner.including_synced();
    }
    let runner = Arc::new(runner);
    let summary = rt.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
            let mut stops = 0;
            loop {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => {
                        if r.is_err() {
                            return;
                        }
                    }
                    _ = term.recv() => {}
                }
                stops += 1;
                if stops > 1 {
                    eprintln!("aborted: what was not confirmed stays in the outbox for the next run");
                    std::process::exit(130);
                }
                eprintln!("stopping: in-flight batches finish, the rest stays in the outbox (Ctrl-C again to abort)");
                let _ = tx.send(true);
            }
        });
        let progress = tokio::spawn(progress(runner.clone(), format));
        let summary = runner.run(RunOptions { since, until, dry_run: args.dry_run, stop: Some(rx) }).await;
        progress.abort();
        summary
    });
    // A plugin call still running is bounded by its own deadline; do not wait for it here.
    rt.shutdown_timeout(Duration::from_secs(1));
    print_summary(&summary, format, args.dry_run);
    // A run that failed says why on stderr too (the summary on stdout may be piped away).
    if summary.status == crate::pipeline::RunStatus::Failed {
        eprintln!("error: the run failed: {}", summary.error.as_deref().unwrap_or("see the summary"));
    }
    Ok(Exit::Code(summary.exit_code()))
}

/// Prints a summary: JSON on stdout for machines, text otherwise.
pub fn print_summary(summary: &Summary, format: LogFormat, dry_run: bool) {
    match format {
        LogFormat::Json => println!("{}", serde_json::to_string(summary).unwrap_or_default()),
        LogFormat::Text if dry_run => eprint!("summary:\n{}", summary.render()),
        LogFormat::Text => print!("summary:\n{}", summary.render()),
    }
}

/// Live progress: a spinner on a terminal, a log line every 10 s otherwise.
async fn progress(runner: Arc<Runner>, format: LogFormat) {
    let tty = std::io::stderr().is_terminal() && format == LogFormat::Text;
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(if tty { Duration::from_millis(250) } else { Duration::from_secs(10) });
    loop {
        tick.tick().await;
        let c = &runner.counters;
        let s = &runner.client.stats;
        let fetched = c.fetched.load(Ordering::Relaxed);
        let rate = fetched as f64 / started.elapsed().as_secs_f64().max(0.001);
        let p = runner.progress();
        let (done, planned) = (p.windows_done, p.windows_planned);
        let eta = p.eta.map_or_else(String::new, |e| format!(", ETA {}", humantime::format_duration(Duration::from_secs(e.as_secs()))));
        let line = format!(
            "window {} ({done} of {planned} done{eta}) | pages {} | fetched {fetched} ({rate:.0}/s) | delivered {} | dead {} | limiter waits {} | retries {}",
            runner.current_window.lock().map(|w| w.clone()).unwrap_or_default(),
            s.pages.load(Ordering::Relaxed),
            c.delivered.load(Ordering::Relaxed),
            c.failed_mapping.load(Ordering::Relaxed) + c.failed_target.load(Ordering::Relaxed),
            s.rate_waits.load(Ordering::Relaxed),
            s.total_retries(),
        );
        match &bar {
            Some(b) => b.set_message(line),
            None if fetched > 0 => tracing::info!(pipeline = %runner.pipeline.name, "{line}"),
            None => {}
        }
    }
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<Exit> {
    // Its report lists the warnings; they are not logged too.
    let p = Pipeline::load(&args.pipeline)?;
    let registry = Registry::new(super::engine()?);
    registry.register(&p.name, p.mapping.options.clone(), p.mapping.limits.clone(), p.mapping.examples.clone());
    let plugin = registry.install_file(&p.name, &p.mapping.plugin).map_err(|e| anyhow::anyhow!("{}: {e}", args.pipeline.display()))?;
    println!("pipeline {} is valid", p.name);
    println!("  source:   jushuitan {} (page size {}, paging {})", p.source.request.api, p.source.request.page_size, p.source.paging);
    println!("  plugin:   {} (options ok, {} examples mapped)", plugin.label(), p.mapping.examples.len());
    println!("  target:   {}", p.target.kind);
    println!("  state:    {}", p.state);
    for w in &p.warnings {
        println!("  warning:  {w}");
    }
    Ok(Exit::Ok)
}

/// `ferry state`'s arguments.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// One JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// `ferry state`: reads the state only, so the source's secrets need not be set.
pub fn state(args: StateArgs) -> anyhow::Result<Exit> {
    let p = Pipeline::load_state_only(&args.pipeline)?;
    let store = p.state.open().with_context(|| "opening the state store")?;
    let checkpoint = store.checkpoint(&p.name)?;
    if args.json {
        let v = serde_json::json!({
            "pipeline": p.name,
            "state": p.state.to_string(),
            "checkpoint": checkpoint.map(crate::time::rfc3339),
            "outboxPending": store.pending(&p.name)?.len(),
            "idCheck": store.handled_count(&p.name)?,
            "deadLetters": store.dead_letter_count(&p.name)?,
            "runs": store.runs(&p.name, 5)?,
        });
        println!("{v}");
        return Ok(Exit::Ok);
    }
    println!("pipeline:    {}", p.name);
    println!("state:       {}", p.state);
    println!("checkpoint:  {}", checkpoint.map_or("none (the next run starts at source.start)".into(), crate::time::rfc3339));
    println!("outbox:      {} pending commands", store.pending(&p.name)?.len());
    println!("idCheck:     {} record versions handled", store.handled_count(&p.name)?);
    println!("dead letters: {}", store.dead_letter_count(&p.name)?);
    for r in store.runs(&p.name, 5)? {
        let s = r.summary.as_ref();
        let n = |k: &str| s.and_then(|s| s.get(k)).and_then(|v| v.as_u64()).unwrap_or(0);
        println!("run {:>4}:    {} {} {} fetched {} delivered {} dead {}", r.id, r.started, r.kind, r.status, n("fetched"), n("delivered"), n("dead_lettered"));
    }
    Ok(Exit::Ok)
}
