//! The pipeline file (TOML, or JSON by extension). Raw serde types with
//! `deny_unknown_fields` are validated into [`Pipeline`], the resolved form
//! the rest of Ferry sees. Every error names the file, the key and what was
//! expected. Secrets come from `${ENV}` references and stay [`Secret`]s.

use super::secrets::{Secrets, expand, secret, url};
use crate::plugin::Limits;
use crate::source::jushuitan::metadata::{Metadata, Request};
use crate::source::jushuitan::{ClientConfig, PagingMode, Secret, TokenSettings};
use crate::state::StateLocation;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A pipeline file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The pipeline file.
    pub file: String,
    /// The key and what was expected.
    pub message: String,
}

/// `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    /// Only `jushuitan` for now.
    kind: String,
    /// Gateway base URL, e.g. `https://openapi.jushuitan.com`.
    base_url: String,
    /// App key (`${ENV}` allowed).
    app_key: String,
    /// App secret, as `${ENV}`.
    app_secret: String,
    /// Access token, as `${ENV}`.
    access_token: String,
    /// The refresh token issued with it, as `${ENV}`: Ferry then keeps the
    /// pair as state and renews it (`[source]`'s token keys).
    #[serde(default)]
    refresh_token: Option<String>,
    /// The merchant the token is for (one app may serve several).
    #[serde(default)]
    merchant: Option<String>,
    /// When the configured access token expires.
    #[serde(default)]
    token_expires_at: Option<String>,
    /// Refresh this long before expiry (default a tenth of the lifetime).
    #[serde(default, with = "humantime_serde")]
    token_refresh_margin: Option<Duration>,
    /// How long before expiry the API accepts a refresh (default 12h, the
    /// shortest the sources report).
    #[serde(default, with = "humantime_serde")]
    token_refresh_window: Option<Duration>,
    /// A self-built app may get a new pair from `getInitToken`.
    #[serde(default)]
    init_token: bool,
    /// Where the first run starts (`yyyy-MM-dd HH:mm:ss` Asia/Shanghai or RFC 3339).
    start: String,
    /// The zone of the API's times (IANA; default Asia/Shanghai).
    #[serde(default)]
    time_zone: Option<String>,
    /// Longest query window (≤ 7 days).
    #[serde(default = "one_day", with = "humantime_serde")]
    window: Duration,
    /// Windows end this long before now (orders at "now" may not be visible yet).
    #[serde(default = "two_minutes", with = "humantime_serde")]
    lag: Duration,
    /// Each run re-reads this much before the checkpoint.
    #[serde(default = "ten_minutes", with = "humantime_serde")]
    lookback: Duration,
    /// Per-request timeout.
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    timeout: Duration,
    /// `ts` (row-version cursor; the default where the API has one) or `page`.
    #[serde(default)]
    paging: Option<PagingMode>,
    /// Attempts per call.
    #[serde(default = "eight")]
    max_attempts: u32,
    /// The app's call budget.
    #[serde(default)]
    rate_limit: RawRateLimit,
    /// The seed's QingYiYun metadata block: a table, or the JSON text verbatim.
    metadata: RawMetadata,
}

/// The token settings, checked: none without a refresh token.
fn token_settings(t: &RawSource, secrets: Secrets, warnings: &mut Vec<String>) -> Result<Option<TokenSettings>, String> {
    let Some(refresh) = t.refresh_token.as_deref() else {
        let stray = [
            ("merchant", t.merchant.is_some()),
            ("token_expires_at", t.token_expires_at.is_some()),
            ("token_refresh_margin", t.token_refresh_margin.is_some()),
            ("token_refresh_window", t.token_refresh_window.is_some()),
            ("init_token", t.init_token),
        ];
        return match stray.iter().find(|(_, set)| *set) {
            Some((k, _)) => Err(format!("source.{k}: takes effect only with source.refresh_token (the token is renewed only when Ferry keeps the pair)")),
            None => Ok(None),
        };
    };
    let expires_at = t.token_expires_at.as_deref().map(crate::time::parse).transpose().map_err(|e| format!("source.token_expires_at: {e}"))?;
    if expires_at.is_none() {
        warnings.push(
            "source.token_expires_at is not set: until the first refresh Ferry does not know when the configured token expires, and renews it only when the gateway refuses it (code 100), which fails once it has expired".into(),
        );
    }
    Ok(Some(TokenSettings {
        merchant: t.merchant.clone().unwrap_or_else(|| "default".into()),
        refresh_token: secret(refresh, "source.refresh_token", secrets)?,
        expires_at,
        margin: t.token_refresh_margin,
        refresh_window: t.token_refresh_window.unwrap_or(Duration::from_secs(12 * 3600)),
        init_token: t.init_token,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRateLimit {
    per_second: u32,
    per_minute: u32,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit { per_second: 5, per_minute: 100 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMetadata {
    Json(String),
    Table(Box<Metadata>),
}

/// `[mapping]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    /// The plugin component, relative to the pipeline file.
    plugin: PathBuf,
    /// `[mapping.options]`, passed to the plugin as JSON: a table, or the
    /// path of a JSON or TOML file.
    #[serde(default)]
    options: Option<Value>,
    /// Example input records (JSONL) the plugin must map before going live.
    #[serde(default)]
    examples: Option<PathBuf>,
    /// Per-batch limits.
    #[serde(default)]
    limits: Limits,
}

/// `[target]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    /// `command`, `http` or `jsonl`.
    kind: String,
    /// Command target base URL.
    #[serde(default)]
    base_url: Option<String>,
    /// Command target resource, e.g. `order-commands`.
    #[serde(default)]
    resource: Option<String>,
    /// HTTP target URL.
    #[serde(default)]
    url: Option<String>,
    /// JSONL file, relative to the pipeline file.
    #[serde(default)]
    path: Option<PathBuf>,
    /// Bearer token (`${ENV}`).
    #[serde(default)]
    token: Option<String>,
    /// Commands in flight at once.
    #[serde(default = "ten")]
    concurrency: usize,
    /// Input records per batch (one command per batch).
    #[serde(default = "hundred")]
    batch_size: usize,
    /// Per-request timeout.
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    timeout: Duration,
    /// Attempts per request.
    #[serde(default = "eight")]
    max_attempts: u32,
    /// How long to wait for `completedAt`.
    #[serde(default = "five_minutes", with = "humantime_serde")]
    completion_timeout: Duration,
    /// A URL with `{id}`: 200 when the target holds the record, 404 when not.
    #[serde(default)]
    lookup: Option<String>,
}

/// `[state]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    /// SQLite file, relative to the pipeline file (default `.ferry/{name}.db`).
    #[serde(default)]
    path: Option<PathBuf>,
    /// A PostgreSQL database instead (`postgres://...`, or `${ENV}`).
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    source: RawSource,
    mapping: RawMapping,
    target: RawTarget,
    #[serde(default)]
    state: RawState,
}

fn one_day() -> Duration {
    Duration::from_secs(86_400)
}
fn two_minutes() -> Duration {
    Duration::from_secs(120)
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn eight() -> u32 {
    8
}
fn ten() -> usize {
    10
}
fn hundred() -> usize {
    100
}

/// The source, resolved.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// How to reach the API.
    pub client: ClientConfig,
    /// The compiled metadata.
    pub request: Request,
    /// First run's start.
    pub start: Timestamp,
    /// Longest window.
    pub window: Duration,
    /// Safety lag.
    pub lag: Duration,
    /// Lookback overlap.
    pub lookback: Duration,
    /// Paging mode.
    pub paging: PagingMode,
}

/// The mapping, resolved.
#[derive(Debug, Clone)]
pub struct MappingSettings {
    /// The component file.
    pub plugin: PathBuf,
    /// Options as JSON text.
    pub options: String,
    /// Limits per batch.
    pub limits: Limits,
    /// Example records for the swap check.
    pub examples: Vec<String>,
}

/// Where records go.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// Command-pattern target.
    Command {
        /// Base URL.
        base_url: String,
        /// Resource.
        resource: String,
    },
    /// Plain HTTP.
    Http {
        /// URL.
        url: String,
    },
    /// Local file.
    Jsonl {
        /// File.
        path: PathBuf,
    },
}

impl TargetKind {
    /// Whether the target confirms each record by its `id` (so a mapped
    /// record without one could never be confirmed).
    pub fn confirms_by_id(&self) -> bool {
        matches!(self, TargetKind::Command { .. })
    }
}

/// The target, resolved.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// Kind and address.
    pub kind: TargetKind,
    /// Bearer token.
    pub token: Option<Secret>,
    /// Commands in flight.
    pub concurrency: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts per request.
    pub max_attempts: u32,
    /// Wait for completion.
    pub completion_timeout: Duration,
    /// Where reconciliation asks whether the target holds a record (`{id}`).
    pub lookup: Option<String>,
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Unique name.
    pub name: String,
    /// Owner tenant.
    pub tenant: Option<String>,
    /// The file it came from.
    pub file: PathBuf,
    /// Source.
    pub source: SourceSettings,
    /// Mapping.
    pub mapping: MappingSettings,
    /// Target.
    pub target: TargetSettings,
    /// Where the state lives.
    pub state: StateLocation,
    /// Things worth saying that are not errors (e.g. the page-size clamp).
    pub warnings: Vec<String>,
}

impl Pipeline {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        Self::load_with(path, Secrets::Required)
    }

    /// Reads and validates a pipeline file for a command that only reads
    /// the pipeline's state (`ferry state`, `dlq list`, `plugin history`,
    /// `jushuitan token status`): the source's and the target's secrets
    /// need not be set (unset ones stay empty and are never used).
    pub fn load_state_only(path: &Path) -> Result<Pipeline, ConfigError> {
        Self::load_with(path, Secrets::Deferred)
    }

    fn load_with(path: &Path, secrets: Secrets) -> Result<Pipeline, ConfigError> {
        let file = path.display().to_string();
        let fail = |message: String| ConfigError { file: file.clone(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let raw: RawPipeline = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| fail(format!("invalid pipeline: {}", crate::plain::words(&e.to_string()))))?
        } else {
            toml::from_str(&text).map_err(|e| fail(format!("invalid pipeline: {}", crate::plain::words(e.to_string().trim()))))?
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::resolve(raw, &dir, path, secrets).map_err(fail)
    }

    fn resolve(raw: RawPipeline, dir: &Path, file: &Path, secrets: Secrets) -> Result<Pipeline, String> {
        let ok_name = !raw.name.is_empty() && raw.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name {
            return Err(format!("name: expected letters, digits, `-`, `_` or `.`, got `{}`", raw.name));
        }
        let s = raw.source;
        if s.kind != "jushuitan" {
            return Err(format!("source.kind: expected `jushuitan`, got `{}`", s.kind));
        }
        let mut token_warnings = Vec::new();
        let tokens = token_settings(&s, secrets, &mut token_warnings)?;
        let metadata = match s.metadata {
            RawMetadata::Table(m) => *m,
            RawMetadata::Json(text) => serde_json::from_str(&text).map_err(|e| format!("source.metadata: not a valid metadata block: {e}"))?,
        };
        let (mut request, mut warnings) = metadata.compile().map_err(|e| format!("source.{e}"))?;
        request.zone = crate::time::zone(s.time_zone.as_deref()).map_err(|e| format!("source.time_zone: {e}"))?;
        warnings.extend(token_warnings);
        let paging = request.settle(s.paging, s.window)?;
        if s.rate_limit.per_second == 0 || s.rate_limit.per_minute == 0 {
            return Err("source.rate_limit: per_second and per_minute must be at least 1".into());
        }
        if s.max_attempts == 0 {
            return Err("source.max_attempts: expected at least 1".into());
        }
        let start = crate::time::parse_or_ago_in(&s.start, &request.zone).map_err(|e| format!("source.start: {e}"))?;
        let client = ClientConfig {
            base_url: url(&s.base_url, "source.base_url")?,
            app_key: expand(&s.app_key, "source.app_key")?,
            app_secret: secret(&s.app_secret, "source.app_secret", secrets)?,
            access_token: secret(&s.access_token, "source.access_token", secrets)?,
            timeout: s.timeout,
            per_second: s.rate_limit.per_second,
            per_minute: s.rate_limit.per_minute,
            max_attempts: s.max_attempts,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            tokens,
        };
        let source = SourceSettings { client, request, start, window: s.window, lag: s.lag, lookback: s.lookback, paging };

        let m = raw.mapping;
        let options = match m.options {
            None => "{}".to_string(),
            Some(v @ Value::Object(_)) => v.to_string(),
            // A file beside the pipeline's, JSON or TOML.
            Some(Value::String(path)) => super::options::read_options(&dir.join(&path)).map_err(|e| format!("mapping.options: {e}"))?.to_string(),
            Some(other) => return Err(format!("mapping.options: expected a table, or the path of a JSON or TOML file, got {other}")),
        };
        let examples = match &m.examples {
            None => Vec::new(),
            Some(p) => {
                let p = dir.join(p);
                let text = std::fs::read_to_string(&p).map_err(|e| format!("mapping.examples: cannot read {}: {e}", p.display()))?;
                text.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect()
            }
        };
        if m.limits.timeout.is_zero() || m.limits.memory_bytes < (1 << 20) {
            return Err("mapping.limits: timeout must be above 0 and memory_bytes at least 1048576".into());
        }
        let mapping = MappingSettings { plugin: dir.join(&m.plugin), options, limits: m.limits, examples };

        let t = raw.target;
        let need = |v: &Option<String>, key: &str| v.clone().ok_or_else(|| format!("target.{key}: required for kind `{}`", t.kind));
        // Each kind takes its own keys only: a key of another kind is a
        // mistake (a `url` on a command target would be silently ignored).
        let given = [("base_url", t.base_url.is_some()), ("resource", t.resource.is_some()), ("url", t.url.is_some()), ("path", t.path.is_some())];
        let own: &[&str] = match t.kind.as_str() {
            "command" => &["base_url", "resource"],
            "http" => &["url"],
            "jsonl" => &["path"],
            _ => &[],
        };
        if let Some((key, _)) = given.iter().find(|(key, set)| *set && !own.is_empty() && !own.contains(key)) {
            return Err(format!(
                "target.{key}: not a setting of kind `{}` (its settings: {}, token, concurrency, batch_size, timeout, max_attempts, completion_timeout)",
                t.kind,
                own.join(", ")
            ));
        }
        let kind = match t.kind.as_str() {
            "command" => TargetKind::Command { base_url: url(&need(&t.base_url, "base_url")?, "target.base_url")?, resource: need(&t.resource, "resource")? },
            "http" => TargetKind::Http { url: url(&need(&t.url, "url")?, "target.url")? },
            "jsonl" => TargetKind::Jsonl { path: dir.join(t.path.clone().ok_or("target.path: required for kind `jsonl`")?) },
            other => return Err(format!("target.kind: expected `command`, `http` or `jsonl`, got `{other}`")),
        };
        if !(1..=256).contains(&t.concurrency) {
            return Err(format!("target.concurrency: expected 1 to 256, got {}", t.concurrency));
        }
        if !(1..=10_000).contains(&t.batch_size) {
            return Err(format!("target.batch_size: expected 1 to 10000, got {}", t.batch_size));
        }
        let token = t.token.as_deref().map(|v| secret(v, "target.token", secrets)).transpose()?;
        let lookup = t.lookup.as_deref().map(|v| url(v, "target.lookup")).transpose()?;
        if lookup.as_ref().is_some_and(|l| !l.contains("{id}")) {
            return Err("target.lookup: expected `{id}` in the URL, where the record's id goes".into());
        }
        let target = TargetSettings {
            kind,
            token,
            concurrency: t.concurrency,
            batch_size: t.batch_size,
            timeout: t.timeout,
            max_attempts: t.max_attempts.max(1),
            completion_timeout: t.completion_timeout,
            lookup,
        };
        let state = match (raw.state.path, raw.state.url) {
            (Some(_), Some(_)) => return Err("state: expected `path` (SQLite) or `url` (PostgreSQL), not both".into()),
            (path, None) => StateLocation::Sqlite(dir.join(path.unwrap_or_else(|| PathBuf::from(format!(".ferry/{}.db", raw.name))))),
            (None, Some(url)) => {
                let url = expand(&url, "state.url")?;
                if !StateLocation::is_postgres_url(&url) {
                    return Err("state.url: expected a `postgres://` URL".into());
                }
                StateLocation::Postgres(url)
            }
        };
        if source.lookback.is_zero() {
            warnings.push("source.lookback is 0: orders changed right at a window's end rely on the lag alone".into());
        }
        Ok(Pipeline { name: raw.name, tenant: raw.tenant, file: file.to_path_buf(), source, mapping, target, state, warnings })
    }
}
