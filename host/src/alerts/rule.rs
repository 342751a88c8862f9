//! `[[alerts]]` rules as the serve file writes them, checked at load into
//! a [`Rule`]: one [`Condition`] (an enum, its thresholds inside), the
//! pipelines it watches, where it posts and how often it repeats.

use crate::pipeline::secrets;
use serde::Deserialize;
use std::time::Duration;

/// One `[[alerts]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique among the rules (default: the condition's name).
    #[serde(default)]
    name: Option<String>,
    /// The condition: `run_failed`, `dead_letters`, `checkpoint_lag`,
    /// `success_rate`, `token`, `plugin_rejected`, `reconcile_missing`.
    when: String,
    /// `dead_letters`: more than this many in one run.
    #[serde(default)]
    above: Option<u64>,
    /// `checkpoint_lag`: the checkpoint further behind now than this.
    #[serde(default, with = "humantime_serde")]
    over: Option<Duration>,
    /// `success_rate`: under this share (0..1) of runs ending without failure...
    #[serde(default)]
    below: Option<f64>,
    /// ... over this period (default 1h) ...
    #[serde(default, with = "humantime_serde")]
    period: Option<Duration>,
    /// ... once at least this many runs ended in it (default 3).
    #[serde(default)]
    min_runs: Option<u32>,
    /// `token`: expiring within this long (default 3d); needing
    /// re-authorization always fires.
    #[serde(default, with = "humantime_serde")]
    within: Option<Duration>,
    /// The pipelines watched (default: every served one).
    #[serde(default)]
    pipelines: Vec<String>,
    /// Where to post (`${ENV}` expanded): an http(s) URL.
    webhook: String,
    /// The body: `json` (default), `dingtalk`, `wecom`, `feishu`.
    #[serde(default)]
    format: Format,
    /// DingTalk or Feishu robot signing secret (`${ENV}` expanded).
    #[serde(default)]
    secret: Option<String>,
    /// While it holds, post again at most this often (default: once).
    #[serde(default, with = "humantime_serde")]
    repeat: Option<Duration>,
    /// Attempts per post before giving up (default 5).
    #[serde(default)]
    attempts: Option<u32>,
}

/// The body a webhook takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Ferry's own JSON object (for any receiver).
    #[default]
    Json,
    /// DingTalk custom robot (`msgtype: text`; signed when `secret` is set).
    Dingtalk,
    /// WeCom (企业微信) group robot (`msgtype: text`).
    Wecom,
    /// Feishu (飞书) custom bot (`msg_type: text`; signed when `secret` is set).
    Feishu,
}

/// What a rule watches for.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The last run failed (resolved by a run that does not).
    RunFailed,
    /// A run left more than `above` dead letters.
    DeadLetters { above: u64 },
    /// The checkpoint is more than `over` behind now: stuck, or not scheduled.
    CheckpointLag { over: Duration },
    /// Under `below` of the runs ended in `period` did not fail.
    SuccessRate { below: f64, period: Duration, min_runs: u32 },
    /// The token expires within `within`, or needs re-authorization.
    Token { within: Duration },
    /// The last plugin version offered was refused.
    PluginRejected,
    /// The last reconciliation left records missing.
    ReconcileMissing,
}

impl Condition {
    /// Its name in the serve file and in posts.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::RunFailed => "run_failed",
            Condition::DeadLetters { .. } => "dead_letters",
            Condition::CheckpointLag { .. } => "checkpoint_lag",
            Condition::SuccessRate { .. } => "success_rate",
            Condition::Token { .. } => "token",
            Condition::PluginRejected => "plugin_rejected",
            Condition::ReconcileMissing => "reconcile_missing",
        }
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// What it watches for.
    pub condition: Condition,
    /// The pipelines it watches (empty: all).
    pub pipelines: Vec<String>,
    /// Where it posts.
    pub webhook: String,
    /// The body's format.
    pub format: Format,
    /// The robot's signing secret.
    pub secret: Option<String>,
    /// How often it repeats while it holds (None: once).
    pub repeat: Option<Duration>,
    /// Attempts per post.
    pub attempts: u32,
}

impl Rule {
    /// Whether it watches `pipeline`.
    pub fn watches(&self, pipeline: &str) -> bool {
        self.pipelines.is_empty() || self.pipelines.iter().any(|p| p == pipeline)
    }
}

const CONDITIONS: &str = "run_failed, dead_letters, checkpoint_lag, success_rate, token, plugin_rejected, reconcile_missing";

/// Checks the rules; `served` are the pipeline names a rule may name.
pub fn resolve(raw: Vec<RawRule>, served: &[String]) -> Result<Vec<Rule>, String> {
    let mut rules: Vec<Rule> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("alerts[{i}].{key}");
        let need = |key: &str, present: bool| if present { Ok(()) } else { Err(format!("{}: required when `when = \"{}\"`", at(key), r.when)) };
        let refuse = |key: &str, present: bool| if present { Err(format!("{}: does not apply to `when = \"{}\"`", at(key), r.when)) } else { Ok(()) };
        let condition = match r.when.as_str() {
            "run_failed" => Condition::RunFailed,
            "dead_letters" => Condition::DeadLetters { above: r.above.unwrap_or(0) },
            "checkpoint_lag" => {
                need("over", r.over.is_some())?;
                Condition::CheckpointLag { over: r.over.unwrap_or_default() }
            }
            "success_rate" => {
                need("below", r.below.is_some())?;
                let below = r.below.unwrap_or_default();
                if !(below > 0.0 && below <= 1.0) {
                    return Err(format!("{}: expected a share above 0 and at most 1 (0.95 = 95%), got {below}", at("below")));
                }
                let period = r.period.unwrap_or(Duration::from_secs(3600));
                Condition::SuccessRate { below, period, min_runs: r.min_runs.unwrap_or(3).max(1) }
            }
            "token" => Condition::Token { within: r.within.unwrap_or(Duration::from_secs(3 * 86_400)) },
            "plugin_rejected" => Condition::PluginRejected,
            "reconcile_missing" => Condition::ReconcileMissing,
            other => return Err(format!("{}: unknown condition `{other}`; expected one of {CONDITIONS}", at("when"))),
        };
        refuse("above", r.above.is_some() && !matches!(condition, Condition::DeadLetters { .. }))?;
        refuse("over", r.over.is_some() && !matches!(condition, Condition::CheckpointLag { .. }))?;
        let rate = matches!(condition, Condition::SuccessRate { .. });
        refuse("below", r.below.is_some() && !rate)?;
        refuse("period", r.period.is_some() && !rate)?;
        refuse("min_runs", r.min_runs.is_some() && !rate)?;
        refuse("within", r.within.is_some() && !matches!(condition, Condition::Token { .. }))?;
        if let Some(p) = r.pipelines.iter().find(|p| !served.contains(p)) {
            return Err(format!("{}: `{p}` is not a served pipeline (served: {})", at("pipelines"), served.join(", ")));
        }
        let webhook = secrets::url(&r.webhook, &at("webhook"))?;
        let secret = r.secret.as_deref().map(|s| secrets::expand(s, &at("secret"))).transpose()?;
        if secret.is_some() && !matches!(r.format, Format::Dingtalk | Format::Feishu) {
            return Err(format!("{}: only DingTalk and Feishu robots sign their posts (format = \"dingtalk\" or \"feishu\")", at("secret")));
        }
        if r.repeat.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(format!("{}: expected at least 1s", at("repeat")));
        }
        let attempts = r.attempts.unwrap_or(5);
        if !(1..=20).contains(&attempts) {
            return Err(format!("{}: expected 1 to 20", at("attempts")));
        }
        let name = r.name.unwrap_or_else(|| condition.kind().to_string());
        if rules.iter().any(|x| x.name == name) {
            return Err(format!("{}: a rule named `{name}` exists already; give each rule its own `name`", at("name")));
        }
        rules.push(Rule { name, condition, pipelines: r.pipelines, webhook, format: r.format, secret, repeat: r.repeat, attempts });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Rule>, String> {
        #[derive(Deserialize)]
        struct File {
            alerts: Vec<RawRule>,
        }
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve(f.alerts, &["orders".to_string()])
    }

    #[test]
    fn rules_are_checked_naming_the_key() {
        let ok =
            parse("[[alerts]]\nwhen = \"success_rate\"\nbelow = 0.9\nwebhook = \"http://127.0.0.1:1/x\"\nformat = \"dingtalk\"\nsecret = \"s\"\n").unwrap();
        assert_eq!(ok[0].condition, Condition::SuccessRate { below: 0.9, period: Duration::from_secs(3600), min_runs: 3 });
        assert_eq!(ok[0].name, "success_rate");
        for (text, says) in [
            ("when = \"lag\"\nwebhook = \"http://a\"", "alerts[0].when: unknown condition `lag`"),
            ("when = \"checkpoint_lag\"\nwebhook = \"http://a\"", "alerts[0].over: required"),
            ("when = \"run_failed\"\nabove = 3\nwebhook = \"http://a\"", "alerts[0].above: does not apply"),
            ("when = \"run_failed\"\nwebhook = \"ftp://a\"", "alerts[0].webhook: expected an http"),
            ("when = \"run_failed\"\nwebhook = \"http://a\"\nsecret = \"x\"", "alerts[0].secret: only DingTalk"),
            ("when = \"run_failed\"\nwebhook = \"http://a\"\npipelines = [\"nope\"]", "`nope` is not a served pipeline"),
            ("when = \"success_rate\"\nbelow = 2.0\nwebhook = \"http://a\"", "alerts[0].below: expected a share"),
        ] {
            let err = parse(&format!("[[alerts]]\n{text}\n")).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        let twice =
            parse("[[alerts]]\nwhen = \"run_failed\"\nwebhook = \"http://a\"\n[[alerts]]\nwhen = \"run_failed\"\nwebhook = \"http://b\"\n").unwrap_err();
        assert!(twice.contains("alerts[1].name"), "{twice}");
    }
}
