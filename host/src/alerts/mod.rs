//! Alerts: the serve file's `[[alerts]]` rules turned into webhook posts,
//! so an operator is told rather than having to look. The engine reports
//! [`Fact`]s (a run ended, a plugin version was offered, and on a timer a
//! pipeline's checkpoint lag, run record and token); each rule decides
//! whether its condition holds for that pipeline. An alert fires once when
//! its condition starts to hold, posts again at most every `repeat` while
//! it holds, and posts "resolved" when it stops.
//!
//! Posting never waits on the caller: notices go to each rule's bounded
//! queue and a task of its own posts them, retrying with backoff; a full
//! queue drops the notice with a warning and a counter, so a dead webhook
//! never slows a sync. What fires is kept in memory: a restart forgets it,
//! and a condition that still holds fires again.
//!
//! This module knows nothing of the engine (`commands` reports to it).

mod rule;
mod send;

pub use rule::{Condition, Format, RawRule, Rule, resolve};

use crate::pipeline::RunStatus;
use jiff::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the engine reports about a pipeline.
#[derive(Debug, Clone)]
pub enum Fact {
    /// A run ended.
    Run { status: RunStatus, dead_letters: u64, error: Option<String> },
    /// A plugin version was offered (by a command or the watched file).
    Plugin { accepted: bool, digest: String, reason: Option<String> },
    /// A reconciliation ended; `missing` records are still missing.
    Reconciled { missing: u64, range: String },
    /// Read on a timer: how far behind the checkpoint is, and the token.
    Watch { lag: Option<Duration>, token: Option<TokenFact> },
}

/// A token as alerts see it.
#[derive(Debug, Clone, Copy)]
pub struct TokenFact {
    /// Time left before it expires (None: unknown).
    pub left: Option<Duration>,
    /// The merchant must authorize the app again.
    pub needs_reauthorization: bool,
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// The condition started to hold.
    Firing,
    /// It still holds (`repeat` passed).
    Repeat,
    /// It stopped.
    Resolved,
}

impl NoticeState {
    /// As posted.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Firing => "firing",
            NoticeState::Repeat => "repeat",
            NoticeState::Resolved => "resolved",
        }
    }
}

/// One post's content.
#[derive(Debug, Clone)]
pub struct Notice {
    pub rule: String,
    pub condition: &'static str,
    pub state: NoticeState,
    pub pipeline: String,
    pub tenant: String,
    pub message: String,
    /// When the condition started to hold.
    pub since: Timestamp,
    pub at: Timestamp,
}

struct Firing {
    since: Timestamp,
    sent: Instant,
    message: String,
}

/// The rules, what fires now, and the queues to their posters.
pub struct Alerts {
    rules: Vec<Rule>,
    firing: Mutex<HashMap<(usize, String), Firing>>,
    /// Run endings per pipeline (time, did not fail), for `success_rate`.
    runs: Mutex<HashMap<String, VecDeque<(Instant, bool)>>>,
    /// How long run endings are kept: the longest `success_rate` period (none without one).
    keep_runs: Option<Duration>,
    queues: Vec<mpsc::Sender<Notice>>,
    receivers: Mutex<Vec<mpsc::Receiver<Notice>>>,
    /// How often the engine reports [`Fact::Watch`].
    pub every: Duration,
}

/// Notices a rule's queue holds before new ones are dropped.
const QUEUED: usize = 256;

impl Alerts {
    /// Alerts for `rules`; the engine reports a [`Fact::Watch`] every `every`.
    pub fn new(rules: Vec<Rule>, every: Duration) -> Alerts {
        let (queues, receivers) = rules.iter().map(|_| mpsc::channel(QUEUED)).unzip();
        let keep_runs = rules.iter().filter_map(|r| if let Condition::SuccessRate { period, .. } = r.condition { Some(period) } else { None }).max();
        Alerts { rules, firing: Mutex::new(HashMap::new()), runs: Mutex::new(HashMap::new()), keep_runs, queues, receivers: Mutex::new(receivers), every }
    }

    /// Whether any rule is configured.
    pub fn any(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Spawns one poster per rule; they end with `stop`.
    pub fn start(&self, tasks: &mut tokio::task::JoinSet<()>, stop: tokio::sync::watch::Receiver<bool>) {
        let receivers = std::mem::take(&mut *self.receivers.lock().expect("alert receivers"));
        for (rule, rx) in self.rules.iter().zip(receivers) {
            tasks.spawn(send::poster(rule.clone(), rx, stop.clone()));
        }
    }

    /// Takes a fact about `pipeline` (of `tenant`) and posts what changes.
    pub fn observe(&self, pipeline: &str, tenant: &str, fact: &Fact) {
        if !self.any() {
            return;
        }
        // Run endings are kept only as long as a `success_rate` rule looks back.
        if let (Fact::Run { status, .. }, Some(longest)) = (fact, self.keep_runs)
            && let Some(ok) = counted(*status)
        {
            let mut runs = self.runs.lock().expect("alert runs");
            let window = runs.entry(pipeline.to_string()).or_default();
            window.push_back((Instant::now(), ok));
            while window.front().is_some_and(|(t, _)| t.elapsed() > longest) {
                window.pop_front();
            }
        }
        for (i, rule) in self.rules.iter().enumerate().filter(|(_, r)| r.watches(pipeline)) {
            match self.verdict(&rule.condition, pipeline, fact) {
                Some((holds, message)) => self.decide(i, pipeline, tenant, holds, message),
                None => self.repeat_due(i, pipeline, tenant),
            }
        }
    }

    /// Whether the condition holds for this fact, and what to say; None
    /// when the fact says nothing about it.
    fn verdict(&self, condition: &Condition, pipeline: &str, fact: &Fact) -> Option<(bool, String)> {
        match (condition, fact) {
            (Condition::RunFailed, Fact::Run { status, error, .. }) => match status {
                RunStatus::Failed => Some((true, format!("run failed: {}", error.as_deref().unwrap_or("no reason given")))),
                RunStatus::Ok | RunStatus::Partial => Some((false, "a run finished".into())),
                _ => None,
            },
            (Condition::DeadLetters { above }, Fact::Run { status, dead_letters, .. }) => (!matches!(status, RunStatus::Interrupted | RunStatus::DryRun))
                .then(|| (dead_letters > above, format!("{dead_letters} dead letters in the last run (alert above {above})"))),
            (Condition::CheckpointLag { over }, Fact::Watch { lag: Some(lag), .. }) => {
                Some((lag > over, format!("the checkpoint is {} behind now (alert over {})", human(*lag), human(*over))))
            }
            (Condition::SuccessRate { below, period, min_runs }, Fact::Run { .. } | Fact::Watch { .. }) => {
                let runs = self.runs.lock().expect("alert runs");
                let within: Vec<bool> =
                    runs.get(pipeline).map(|w| w.iter().filter(|(t, _)| t.elapsed() <= *period).map(|(_, ok)| *ok).collect()).unwrap_or_default();
                let ended = within.len() as u32;
                if ended < *min_runs {
                    return None;
                }
                let ok = within.iter().filter(|ok| **ok).count() as f64;
                let rate = ok / f64::from(ended);
                Some((
                    rate < *below,
                    format!("{:.0}% of {ended} runs in the last {} did not fail (alert under {:.0}%)", rate * 100.0, human(*period), below * 100.0),
                ))
            }
            (Condition::Token { within }, Fact::Watch { token: Some(t), .. }) => Some(if t.needs_reauthorization {
                (true, "the app's token needs re-authorization by the merchant (`ferry jushuitan token set`)".into())
            } else {
                match t.left {
                    Some(left) => (left < *within, format!("the token expires in {} (alert within {})", human(left), human(*within))),
                    None => (false, "the token's expiry is not known".into()),
                }
            }),
            (Condition::ReconcileMissing, Fact::Reconciled { missing, range }) => {
                Some((*missing > 0, format!("reconciliation of [{range}]: {missing} records missing (`ferry reconcile --deliver`)")))
            }
            (Condition::PluginRejected, Fact::Plugin { accepted, digest, reason }) => Some(match accepted {
                _ if digest.is_empty() => (true, format!("a plugin could not be read: {}", reason.as_deref().unwrap_or("no reason given"))),
                false => (true, format!("plugin sha256:{} was refused: {}", &digest[..digest.len().min(12)], reason.as_deref().unwrap_or("no reason given"))),
                true => (false, format!("plugin sha256:{} went live", &digest[..digest.len().min(12)])),
            }),
            _ => None,
        }
    }

    fn decide(&self, rule: usize, pipeline: &str, tenant: &str, holds: bool, message: String) {
        let key = (rule, pipeline.to_string());
        let mut firing = self.firing.lock().expect("alerts firing");
        let state = match (holds, firing.get_mut(&key)) {
            (true, None) => {
                let since = Timestamp::now();
                firing.insert(key, Firing { since, sent: Instant::now(), message: message.clone() });
                Some((NoticeState::Firing, since))
            }
            (true, Some(f)) => {
                f.message = message.clone();
                drop(firing);
                return self.repeat_due(rule, pipeline, tenant);
            }
            (false, Some(_)) => firing.remove(&key).map(|f| (NoticeState::Resolved, f.since)),
            (false, None) => None,
        };
        drop(firing);
        if let Some((state, since)) = state {
            self.post(rule, pipeline, tenant, state, message, since);
        }
    }

    /// Posts again when the rule repeats and its interval passed.
    fn repeat_due(&self, rule: usize, pipeline: &str, tenant: &str) {
        let Some(every) = self.rules[rule].repeat else { return };
        let mut firing = self.firing.lock().expect("alerts firing");
        let Some(f) = firing.get_mut(&(rule, pipeline.to_string())).filter(|f| f.sent.elapsed() >= every) else { return };
        f.sent = Instant::now();
        let (message, since) = (f.message.clone(), f.since);
        drop(firing);
        self.post(rule, pipeline, tenant, NoticeState::Repeat, message, since);
    }

    fn post(&self, rule: usize, pipeline: &str, tenant: &str, state: NoticeState, message: String, since: Timestamp) {
        let r = &self.rules[rule];
        let notice = Notice {
            rule: r.name.clone(),
            condition: r.condition.kind(),
            state,
            pipeline: pipeline.to_string(),
            tenant: tenant.to_string(),
            message,
            since,
            at: Timestamp::now(),
        };
        if state == NoticeState::Resolved {
            tracing::info!(alert = %r.name, pipeline, tenant, state = state.as_str(), "alert resolved: {}", notice.message);
        } else {
            tracing::warn!(alert = %r.name, pipeline, tenant, state = state.as_str(), "alert: {}", notice.message);
        }
        metrics::counter!("ferry_alerts_total", "alert" => r.name.clone(), "state" => state.as_str()).increment(1);
        if let Err(e) = self.queues[rule].try_send(notice) {
            tracing::warn!(alert = %r.name, pipeline, "alert not posted: its queue is full ({QUEUED} waiting; the webhook is down or slow): {e}");
            metrics::counter!("ferry_alert_posts_total", "alert" => r.name.clone(), "result" => "dropped").increment(1);
        }
    }
}

/// Whether a run counts for `success_rate`, and whether it did not fail.
fn counted(status: RunStatus) -> Option<bool> {
    match status {
        RunStatus::Ok | RunStatus::Partial => Some(true),
        RunStatus::Failed => Some(false),
        RunStatus::Interrupted | RunStatus::DryRun => None,
    }
}

/// `3h 12m` from a duration, whole seconds.
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, condition: Condition, repeat: Option<Duration>) -> Rule {
        Rule { name: name.into(), condition, pipelines: vec![], webhook: "http://127.0.0.1:9/".into(), format: Format::Json, secret: None, repeat, attempts: 1 }
    }

    fn drained(alerts: &Alerts) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for rx in alerts.receivers.lock().unwrap().iter_mut() {
            while let Ok(n) = rx.try_recv() {
                out.push((n.rule, n.state.as_str()));
            }
        }
        out
    }

    fn run(status: RunStatus, dead_letters: u64) -> Fact {
        Fact::Run { status, dead_letters, error: Some("boom".into()) }
    }

    fn watch(lag_s: Option<u64>, token: Option<TokenFact>) -> Fact {
        Fact::Watch { lag: lag_s.map(Duration::from_secs), token }
    }

    #[test]
    fn an_alert_fires_once_repeats_when_due_and_resolves() {
        let a = Alerts::new(
            vec![rule("f", Condition::RunFailed, Some(Duration::from_millis(1))), rule("once", Condition::RunFailed, None)],
            Duration::from_secs(1),
        );
        a.observe("p", "t", &run(RunStatus::Failed, 0));
        assert_eq!(drained(&a), [("f".into(), "firing"), ("once".into(), "firing")]);
        std::thread::sleep(Duration::from_millis(5));
        a.observe("p", "t", &watch(Some(1), None)); // says nothing of runs: only repeats fall due
        a.observe("p", "t", &run(RunStatus::Interrupted, 0));
        assert_eq!(drained(&a), [("f".into(), "repeat")]);
        a.observe("p", "t", &run(RunStatus::Partial, 3));
        a.observe("p", "t", &run(RunStatus::Ok, 0));
        assert_eq!(drained(&a), [("f".into(), "resolved"), ("once".into(), "resolved")]);
        a.observe("other", "t", &run(RunStatus::Failed, 0));
        assert_eq!(drained(&a).len(), 2, "each pipeline has its own alert");
        assert!(a.runs.lock().unwrap().is_empty(), "without a success_rate rule no run is kept (months of runs would pile up)");
    }

    #[test]
    fn each_condition_holds_and_stops() {
        let token = |left: u64, reauth: bool| Some(TokenFact { left: Some(Duration::from_secs(left)), needs_reauthorization: reauth });
        let rules = vec![
            rule("dead", Condition::DeadLetters { above: 2 }, None),
            rule("lag", Condition::CheckpointLag { over: Duration::from_secs(60) }, None),
            rule("rate", Condition::SuccessRate { below: 0.6, period: Duration::from_secs(3600), min_runs: 3 }, None),
            rule("token", Condition::Token { within: Duration::from_secs(100) }, None),
            rule("plugin", Condition::PluginRejected, None),
        ];
        let a = Alerts::new(rules, Duration::from_secs(1));
        a.observe("p", "t", &run(RunStatus::Partial, 3));
        a.observe("p", "t", &run(RunStatus::Failed, 0));
        assert_eq!(drained(&a), [("dead".into(), "firing"), ("dead".into(), "resolved")]);
        a.observe("p", "t", &run(RunStatus::Failed, 2));
        assert_eq!(drained(&a), [("rate".into(), "firing")], "1 of 3 runs did not fail");
        a.observe("p", "t", &run(RunStatus::Ok, 0));
        a.observe("p", "t", &run(RunStatus::Ok, 0));
        assert_eq!(drained(&a), [("rate".into(), "resolved")], "3 of 5");
        a.observe("p", "t", &watch(Some(61), token(500, false)));
        a.observe("p", "t", &watch(Some(90), token(99, false)));
        a.observe("p", "t", &watch(None, None));
        assert_eq!(drained(&a), [("lag".into(), "firing"), ("token".into(), "firing")]);
        a.observe("p", "t", &watch(Some(5), token(99_999, true)));
        a.observe("p", "t", &watch(Some(5), token(99_999, false)));
        assert_eq!(drained(&a), [("lag".into(), "resolved"), ("token".into(), "resolved")], "re-authorization keeps the token alert");
        a.observe("p", "t", &Fact::Plugin { accepted: false, digest: "ab".into(), reason: Some("no".into()) });
        a.observe("p", "t", &Fact::Plugin { accepted: false, digest: "cd".into(), reason: Some("no".into()) });
        a.observe("p", "t", &Fact::Plugin { accepted: true, digest: "ef".into(), reason: None });
        assert_eq!(drained(&a), [("plugin".into(), "firing"), ("plugin".into(), "resolved")]);
    }

    #[test]
    fn a_full_queue_drops_rather_than_waits() {
        let a = Alerts::new(vec![rule("f", Condition::RunFailed, None)], Duration::from_secs(1));
        for i in 0..(QUEUED + 10) {
            a.observe(&format!("p{i}"), "t", &run(RunStatus::Failed, 0));
        }
        assert_eq!(drained(&a).len(), QUEUED);
    }
}
