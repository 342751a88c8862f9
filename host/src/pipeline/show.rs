//! How a pipeline is shown to people: its target in words, its warnings
//! said once per process.

use super::Pipeline;
use super::config::TargetKind;

/// How a target is shown to people: `command PUT http://host/resource/{uuid}`.
impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetKind::Command { base_url, resource } => write!(f, "command (PUT {}/{resource}/{{uuid}})", base_url.trim_end_matches('/')),
            TargetKind::Http { url } => write!(f, "http (POST {url})"),
            TargetKind::Jsonl { path } => write!(f, "jsonl ({})", path.display()),
        }
    }
}

impl Pipeline {
    /// Logs the pipeline's warnings, each once per process (a serve that
    /// builds many runs, or a command that loads the file twice, says a
    /// warning once).
    pub fn say_warnings(&self) {
        for w in &self.warnings {
            say_once(&self.name, w);
        }
    }

    /// Says, once, which wins when `source.start` was moved after the
    /// checkpoint (a backfill's `--since` sets its own range).
    pub fn say_if_start_moved(&self, checkpoint: Option<jiff::Timestamp>, backfill: bool) {
        let start = self.source.start;
        if let Some(c) = checkpoint.filter(|c| !backfill && start > *c) {
            let w = format!(
                "source.start ({}) is after the checkpoint ({}): the checkpoint wins and the run goes on from it; to skip ahead, run a backfill with --since",
                crate::time::rfc3339(start),
                crate::time::rfc3339(c)
            );
            say_once(&self.name, &w);
        }
    }
}

/// Logs `warning` of `pipeline` unless this process already said it.
fn say_once(pipeline: &str, warning: &str) {
    static SAID: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<(String, String)>>> = std::sync::OnceLock::new();
    let mut said = SAID.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if said.insert((pipeline.to_string(), warning.to_string())) {
        tracing::warn!(pipeline, "{warning}");
    }
}
