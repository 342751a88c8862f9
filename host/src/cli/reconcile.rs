//! `ferry reconcile`: a closed range checked against the source's own count
//! and, where they differ (or the target has a lookup), id by id; a table
//! (or JSON) of what is missing, delivered with `--deliver`.

use super::Exit;
use crate::pipeline::Runner;
use crate::pipeline::reconcile::{Missing, ReconcileReport};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// From (a time, or a duration before now like `2d`; default: a day before --until).
    #[arg(long)]
    since: Option<String>,
    /// Up to (default: the checkpoint; it may not be later).
    #[arg(long)]
    until: Option<String>,
    /// Deliver what is missing (through idCheck, the outbox and the target, as a run does).
    #[arg(long)]
    deliver: bool,
    /// The report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<Exit> {
    let pipeline = super::run::load(&args.pipeline)?;
    let at = |flag: &str, v: &Option<String>| v.as_deref().map(crate::time::parse_or_ago).transpose().map_err(|e| anyhow::anyhow!("{flag}: {e}"));
    let (since, until) = (at("--since", &args.since)?, at("--until", &args.until)?);
    crate::time::check_range(since, until).map_err(|e| anyhow::anyhow!("--since/--until: {e}"))?;
    // Delivering writes: one writer per pipeline, as for `ferry run`.
    let _writer = if args.deliver { Some(super::sole_writer(&pipeline, "ferry reconcile")?) } else { None };
    let rt = super::runtime()?;
    let runner = Runner::new(pipeline, super::engine()?, !args.deliver)?;
    let report = rt.block_on(runner.reconcile(since, until, args.deliver));
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    let report = report.map_err(|e| anyhow::anyhow!("{}: {e}", args.pipeline.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.complete() { Exit::Ok } else { Exit::Partial })
}

/// The report as a table.
pub fn render(r: &ReconcileReport) -> String {
    let mut out = format!("reconcile {} [{} .. {}]\n", r.pipeline, r.since, r.until);
    out += &format!("{:<54} {:>8} {:>8}  {}\n", "window", "source", "ferry", "checked");
    for w in &r.windows {
        let how = if w.listed { "id by id" } else { "counts agree" };
        out += &format!("{:<54} {:>8} {:>8}  {how}\n", format!("{} .. {}", w.begin, w.end), w.source, w.ferry);
    }
    out += &format!("{:<54} {:>8} {:>8}\n", "total", r.source_count, r.ferry_count);
    if r.checked_at_target > 0 {
        out += &format!("asked the target about {} delivered records\n", r.checked_at_target);
    }
    if r.dead_letters > 0 {
        out += &format!("dead letters in the range: {} (known, not missing: `ferry dlq list`)\n", r.dead_letters);
    }
    out += &missing("missing", &r.missing);
    if let (Some(n), Some(still)) = (r.delivered, &r.still_missing) {
        out += &format!("delivered: {n}\n");
        out += &missing("still missing", still);
    }
    out
}

fn missing(label: &str, m: &[Missing]) -> String {
    if m.is_empty() {
        return format!("{label}: 0\n");
    }
    let mut out = format!("{label}: {}\n", m.len());
    for x in m.iter().take(50) {
        out += &format!("  {:<20} {:<40} {}\n", x.id, x.version, x.why.as_str());
    }
    if m.len() > 50 {
        out += &format!("  ... {} more (--json lists all)\n", m.len() - 50);
    }
    out
}
