//! What a run did, counted while it runs and printed at the end.

use crate::state::TaskCount;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Windows fully confirmed.
    pub windows_done: AtomicU64,
    /// Windows the run planned (known once it has planned them).
    pub windows_planned: AtomicU64,
    /// When the run started.
    pub started: Mutex<Option<std::time::Instant>>,
    /// Records received from the source.
    pub fetched: AtomicU64,
    /// Dropped by idCheck (already handled).
    pub skipped_id_check: AtomicU64,
    /// Dropped by the scheme's `condition`.
    pub skipped_condition: AtomicU64,
    /// Input records the plugin mapped.
    pub mapped: AtomicU64,
    /// Output records produced.
    pub outputs: AtomicU64,
    /// Skipped by the plugin.
    pub skipped_plugin: AtomicU64,
    /// Mapping errors and plugin failures (dead letters).
    pub failed_mapping: AtomicU64,
    /// Records the target refused (dead letters).
    pub failed_target: AtomicU64,
    /// Records the target applied.
    pub delivered: AtomicU64,
    /// Commands confirmed.
    pub commands: AtomicU64,
    /// Commands the target had already applied.
    pub replayed: AtomicU64,
    /// Pending outbox commands re-sent at start.
    pub resumed: AtomicU64,
    /// Fuel used by the plugin.
    pub fuel: AtomicU64,
    /// Plugin time, microseconds.
    pub plugin_us: AtomicU64,
    /// Per-command task counts (first 1000).
    pub tasks: Mutex<Vec<(String, TaskCount)>>,
}

impl Counters {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The plugin that mapped a run.
#[derive(Debug, Clone, Serialize)]
pub struct PluginUsed {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// sha256.
    pub digest: String,
}

/// How a run ended (text only in the JSON summary and the runs table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum RunStatus {
    /// Everything went through.
    #[serde(rename = "ok")]
    Ok,
    /// Finished, with dead letters.
    #[serde(rename = "partial")]
    Partial,
    /// Stopped by an error; the checkpoint did not move past it.
    #[serde(rename = "failed")]
    Failed,
    /// Stopped on request; the next run resumes.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// A dry run (nothing written).
    #[serde(rename = "dry-run")]
    DryRun,
}

impl RunStatus {
    /// The text at the edges.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::DryRun => "dry-run",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub pipeline: String,
    /// How it ended.
    pub status: RunStatus,
    pub error: Option<String>,
    pub windows: u64,
    pub windows_done: u64,
    pub checkpoint: Option<String>,
    pub requests: u64,
    pub pages: u64,
    pub rate_limit_waits: u64,
    pub rate_limit_wait_ms: u64,
    pub retries: Vec<(String, u64)>,
    pub drift_rereads: u64,
    /// Pages read again because their answer contradicted itself.
    pub answer_rereads: u64,
    pub fetched: u64,
    pub skipped_id_check: u64,
    /// Dropped by the scheme's `condition` (each logged with its rule).
    pub skipped_condition: u64,
    pub mapped: u64,
    pub outputs: u64,
    pub skipped_plugin: u64,
    pub failed_mapping: u64,
    pub failed_target: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub commands: u64,
    pub commands_replayed: u64,
    pub commands_resumed: u64,
    pub task_count: TaskCount,
    pub command_tasks: Vec<(String, TaskCount)>,
    pub target_requests: u64,
    pub target_retries: u64,
    pub fuel_used: u64,
    pub plugin_ms: u64,
    pub plugin: Option<PluginUsed>,
    pub duration_ms: u64,
}

impl Summary {
    /// Exit code: 0 all delivered, 1 some dead letters, 2 fatal, 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Ok | RunStatus::DryRun => 0,
            RunStatus::Partial => 1,
            RunStatus::Interrupted => 130,
            RunStatus::Failed => 2,
        }
    }

    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<22} {v}\n"));
        line("pipeline", format!("{} ({})", self.pipeline, self.status));
        if let Some(e) = &self.error {
            line("error", e.clone());
        }
        line("windows", format!("{} of {} confirmed; checkpoint {}", self.windows_done, self.windows, self.checkpoint.as_deref().unwrap_or("-")));
        line(
            "requests",
            format!(
                "{} ({} pages, {} drift re-reads, {} pages re-read after a contradiction)",
                self.requests, self.pages, self.drift_rereads, self.answer_rereads
            ),
        );
        line("rate-limit waits", format!("{} ({:.1} s)", self.rate_limit_waits, self.rate_limit_wait_ms as f64 / 1e3));
        let retries: Vec<String> = self.retries.iter().filter(|r| r.1 > 0).map(|(k, v)| format!("{k} {v}")).collect();
        line("retries", if retries.is_empty() { "0".into() } else { retries.join(", ") });
        line("records fetched", self.fetched.to_string());
        line("skipped by idCheck", self.skipped_id_check.to_string());
        if self.skipped_condition > 0 {
            line("dropped by condition", self.skipped_condition.to_string());
        }
        line("mapped", format!("{} -> {} records ({} skipped by the plugin)", self.mapped, self.outputs, self.skipped_plugin));
        line("failed", format!("{} in mapping, {} at the target", self.failed_mapping, self.failed_target));
        line("delivered", self.delivered.to_string());
        line("dead letters", self.dead_lettered.to_string());
        let t = self.task_count;
        line(
            "commands",
            format!(
                "{} (taskCount total {} success {} failed {}; {} replayed, {} resumed from the outbox)",
                self.commands, t.total, t.success, t.failed, self.commands_replayed, self.commands_resumed
            ),
        );
        for (id, c) in self.command_tasks.iter().take(5) {
            line("", format!("{id}: total {} success {} failed {}", c.total, c.success, c.failed));
        }
        if self.command_tasks.len() > 5 {
            line("", format!("... {} more", self.command_tasks.len() - 5));
        }
        line("target requests", format!("{} ({} retries)", self.target_requests, self.target_retries));
        if let Some(p) = &self.plugin {
            line("plugin", format!("{} {} sha256:{}", p.name, p.version, p.digest));
        }
        line("plugin time", format!("{} ms, {} fuel", self.plugin_ms, self.fuel_used));
        line("duration", format!("{:.1} s", self.duration_ms as f64 / 1e3));
        s
    }
}

impl Summary {
    /// One log line for the run's outcome (`ferry run`, and each run of
    /// `ferry serve`, where the command is in the span): what it fetched,
    /// delivered, dead-lettered and skipped, how long it took and where the
    /// checkpoint is. A failure is an error; dead letters or an
    /// interruption a warning.
    pub fn log_outcome(&self, tenant: Option<&str>) {
        let tenant = tenant.unwrap_or("default");
        self.record_metrics(tenant);
        let skipped = self.skipped_id_check + self.skipped_condition + self.skipped_plugin;
        let checkpoint = self.checkpoint.as_deref().unwrap_or("-");
        macro_rules! outcome {
            ($level:ident, $($what:tt)+) => {
                tracing::$level!(
                    pipeline = %self.pipeline, tenant, status = self.status.as_str(), fetched = self.fetched, delivered = self.delivered,
                    dead_letters = self.dead_lettered, skipped, duration_ms = self.duration_ms, checkpoint, $($what)+
                )
            };
        }
        match self.status {
            RunStatus::Failed => outcome!(error, "run failed: {}", self.error.as_deref().unwrap_or("")),
            RunStatus::Interrupted => outcome!(warn, "run interrupted"),
            _ if self.dead_lettered > 0 => outcome!(warn, "run finished with {} dead letters", self.dead_lettered),
            _ => outcome!(info, "run finished"),
        }
    }

    /// The run's metrics, labelled by pipeline and tenant: runs by status,
    /// records by outcome, the run's duration (a histogram), the time of
    /// the last run that finished (ok or partial) and the checkpoint's lag.
    fn record_metrics(&self, tenant: &str) {
        let labels = [("pipeline", self.pipeline.clone()), ("tenant", tenant.to_string())];
        let with = |k: &'static str, v: &'static str| {
            let mut l: Vec<(&'static str, String)> = labels.to_vec();
            l.push((k, v.to_string()));
            l
        };
        if self.status == RunStatus::DryRun {
            return;
        }
        metrics::counter!("ferry_runs_total", &with("status", self.status.as_str())).increment(1);
        for (outcome, n) in [
            ("fetched", self.fetched),
            ("delivered", self.delivered),
            ("dead_lettered", self.dead_lettered),
            ("skipped", self.skipped_id_check + self.skipped_condition + self.skipped_plugin),
        ] {
            metrics::counter!("ferry_run_records_total", &with("outcome", outcome)).increment(n);
        }
        metrics::histogram!("ferry_run_duration_seconds", &labels).record(self.duration_ms as f64 / 1e3);
        if matches!(self.status, RunStatus::Ok | RunStatus::Partial) {
            metrics::gauge!("ferry_last_success_timestamp_seconds", &labels).set(jiff::Timestamp::now().as_second() as f64);
        }
    }
}
