//! The serve file: where to listen, which pipelines (with optional
//! schedules), and which bearer tokens belong to which tenant.

pub use crate::commands::{ClusterConfig, DEFAULT_TENANT, ReconcileSchedule, Served};
use crate::pipeline::Pipeline;
use crate::state::StateLocation;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    listen: String,
    /// The pipelines served.
    pipelines: Vec<RawEntry>,
    /// Bearer tokens, each bound to a tenant.
    #[serde(default)]
    tokens: Vec<RawToken>,
    /// How long command history is kept (e.g. `"30d"`).
    #[serde(default = "thirty_days", with = "humantime_serde")]
    history: Duration,
    /// Several workers on one PostgreSQL database.
    #[serde(default)]
    cluster: Option<RawCluster>,
    /// The listener's bounds.
    #[serde(default)]
    api: RawApi,
    /// `[alerting]`: how alert rules are checked.
    #[serde(default)]
    alerting: RawAlerting,
    /// Alert rules.
    #[serde(default)]
    alerts: Vec<crate::alerts::RawRule>,
    /// `[postgres]`: riding out a database restart.
    #[serde(default)]
    postgres: RawPostgres,
}

/// `[postgres]`: how long calls wait for a database that dropped its
/// connections (a restart, a failover) before a run fails.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    #[serde(default = "sixty_seconds", with = "humantime_serde")]
    reconnect_grace: Duration,
}

impl Default for RawPostgres {
    fn default() -> Self {
        RawPostgres { reconnect_grace: sixty_seconds() }
    }
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

/// `[alerting]`: how often timed alert conditions (lag, success rate,
/// token) are checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerting {
    #[serde(default = "thirty_seconds", with = "humantime_serde")]
    every: Duration,
}

impl Default for RawAlerting {
    fn default() -> Self {
        RawAlerting { every: thirty_seconds() }
    }
}

/// `[api]`: how long a client may take, and how many may be connected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApi {
    max_connections: usize,
    #[serde(with = "humantime_serde")]
    header_timeout: Duration,
    #[serde(with = "humantime_serde")]
    body_timeout: Duration,
    #[serde(with = "humantime_serde")]
    shutdown_grace: Duration,
}

impl Default for RawApi {
    fn default() -> Self {
        let d = super::listen::ListenLimits::default();
        RawApi { max_connections: d.max_connections, header_timeout: d.header_timeout, body_timeout: d.body_timeout, shutdown_grace: d.shutdown_grace }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    /// `postgres://...` (or `${ENV}`): every pipeline's state, the shared
    /// command queue, leases and rate budgets.
    database: String,
    /// This worker's id (default: host name and process id).
    #[serde(default)]
    worker: Option<String>,
    /// How long a lease lasts without renewal; a dead worker's pipelines
    /// are taken over after this long.
    #[serde(default = "fifteen_seconds", with = "humantime_serde")]
    lease: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}

fn thirty_days() -> Duration {
    Duration::from_secs(30 * 86_400)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    /// The pipeline file, relative to the serve file.
    file: PathBuf,
    /// Run every this long (e.g. `"5m"`); never overlaps a running sync.
    #[serde(default, with = "humantime_serde")]
    every: Option<Duration>,
    /// Reconcile on a schedule.
    #[serde(default)]
    reconcile: Option<RawReconcile>,
}

/// `reconcile = { every = "24h", range = "24h", deliver = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    /// How often.
    #[serde(with = "humantime_serde")]
    every: Duration,
    /// How long a range up to the checkpoint (default: `every`).
    #[serde(default, with = "humantime_serde")]
    range: Option<Duration>,
    /// Deliver what is missing (default true).
    #[serde(default)]
    deliver: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    /// The token, as `${ENV}`.
    token: String,
    /// The tenant it acts as.
    tenant: String,
}

fn default_listen() -> String {
    "127.0.0.1:8700".into()
}

/// The resolved serve configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: String,
    /// Pipelines by name.
    pub pipelines: Vec<Served>,
    /// token -> tenant.
    pub tokens: Vec<(String, String)>,
    /// Command history retention.
    pub history: Duration,
    /// Cluster mode, when the serve file has `[cluster]`.
    pub cluster: Option<ClusterConfig>,
    /// The listener's bounds (`[api]`).
    pub api: super::listen::ListenLimits,
    /// `[[alerts]]`, checked.
    pub alerts: Vec<crate::alerts::Rule>,
    /// How often timed alert conditions are checked.
    pub alert_check: Duration,
    /// How long PostgreSQL calls wait for a restarting database.
    pub reconnect_grace: Duration,
}

impl ServeConfig {
    /// Reads and validates a serve file (and every pipeline file it names).
    pub fn load(path: &Path) -> Result<Self, String> {
        let file = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
        let raw: RawServe = toml::from_str(&text).map_err(|e| format!("{file}: invalid serve file: {}", crate::plain::words(e.to_string().trim())))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut pipelines = Vec::new();
        for (i, e) in raw.pipelines.iter().enumerate() {
            let pipeline = Pipeline::load(&dir.join(&e.file)).map_err(|e| format!("{file}: pipelines[{i}]: {e}"))?;
            if pipelines.iter().any(|p: &Served| p.pipeline.name == pipeline.name) {
                return Err(format!("{file}: pipelines[{i}]: a pipeline named `{}` is already served", pipeline.name));
            }
            if e.every.is_some_and(|d| d < Duration::from_secs(1)) {
                return Err(format!("{file}: pipelines[{i}].every: expected at least 1s"));
            }
            // One app and merchant keep one token: in one state store, or
            // each store's refresh would use up the other's refresh token.
            if let Some(settings) = &pipeline.source.client.tokens {
                let key = crate::source::jushuitan::token::token_key(&pipeline.source.client, settings);
                let apart = pipelines.iter().find(|p: &&Served| {
                    p.pipeline.source.client.tokens.as_ref().is_some_and(|t| crate::source::jushuitan::token::token_key(&p.pipeline.source.client, t) == key)
                        && p.pipeline.state != pipeline.state
                });
                if let Some(other) = apart {
                    return Err(format!(
                        "{file}: pipelines[{i}]: `{}` and `{}` keep the token of {key} in different state stores ({} and {}); \
                         pipelines of one app and merchant must share one store (one SQLite file or one PostgreSQL database), \
                         or their refreshes use up each other's refresh token",
                        pipeline.name, other.pipeline.name, pipeline.state, other.pipeline.state
                    ));
                }
            }
            let reconcile = match &e.reconcile {
                Some(r) if r.every < Duration::from_secs(1) => return Err(format!("{file}: pipelines[{i}].reconcile.every: expected at least 1s")),
                Some(r) => Some(ReconcileSchedule {
                    every: r.every,
                    range: r.range.unwrap_or(r.every).max(Duration::from_secs(1)),
                    deliver: r.deliver.unwrap_or(true),
                }),
                None => None,
            };
            pipelines.push(Served { pipeline, every: e.every, reconcile });
        }
        let mut tokens = Vec::new();
        for (i, t) in raw.tokens.iter().enumerate() {
            let token = expand(&t.token).map_err(|v| format!("{file}: tokens[{i}].token: environment variable `{v}` is not set"))?;
            if token.len() < 8 {
                return Err(format!("{file}: tokens[{i}].token: expected at least 8 characters"));
            }
            tokens.push((token, t.tenant.clone()));
        }
        if tokens.is_empty() {
            return Err(format!("{file}: tokens: at least one bearer token is required (the API has no anonymous access)"));
        }
        let cluster = match raw.cluster {
            None => None,
            Some(c) => {
                let database = expand(&c.database).map_err(|v| format!("{file}: cluster.database: environment variable `{v}` is not set"))?;
                if !StateLocation::is_postgres_url(&database) {
                    return Err(format!("{file}: cluster.database: expected a `postgres://` URL"));
                }
                if c.lease < Duration::from_secs(1) {
                    return Err(format!("{file}: cluster.lease: expected at least 1s"));
                }
                let worker = c.worker.unwrap_or_else(crate::cluster::default_worker_id);
                if worker.is_empty() || worker.len() > 100 {
                    return Err(format!("{file}: cluster.worker: expected 1 to 100 characters"));
                }
                // Every pipeline keeps its state in the cluster's database, and
                // says so in its own file: a `ferry run` of that file then meets
                // the cluster's lease instead of a SQLite file of its own.
                for served in &pipelines {
                    let p = &served.pipeline;
                    if p.state != StateLocation::Postgres(database.clone()) {
                        return Err(format!(
                            "{file}: pipeline `{}` ({}) keeps its state in {}, not in the cluster's database; a cluster serves only pipelines whose \
                             state is its database, so that a `ferry run` of the same file cannot sync it beside the cluster: set `[state] url = \"${{FERRY_DATABASE}}\"` \
                             (the same URL as cluster.database) in the pipeline file",
                            p.name,
                            p.file.display(),
                            p.state
                        ));
                    }
                }
                Some(ClusterConfig { database, worker, lease: c.lease })
            }
        };
        let a = raw.api;
        if a.max_connections == 0 || a.header_timeout.is_zero() || a.body_timeout.is_zero() {
            return Err(format!("{file}: api: max_connections, header_timeout and body_timeout must be above 0"));
        }
        let api = super::listen::ListenLimits {
            max_connections: a.max_connections,
            header_timeout: a.header_timeout,
            body_timeout: a.body_timeout,
            shutdown_grace: a.shutdown_grace,
        };
        if raw.alerting.every < Duration::from_secs(1) {
            return Err(format!("{file}: alerting.every: expected at least 1s"));
        }
        let names: Vec<String> = pipelines.iter().map(|p| p.pipeline.name.clone()).collect();
        let alerts = crate::alerts::resolve(raw.alerts, &names).map_err(|e| format!("{file}: {e}"))?;
        Ok(ServeConfig {
            listen: raw.listen,
            pipelines,
            tokens,
            history: raw.history,
            cluster,
            api,
            alerts,
            alert_check: raw.alerting.every,
            reconnect_grace: raw.postgres.reconnect_grace,
        })
    }
}

fn expand(text: &str) -> Result<String, String> {
    match text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        Some(var) => std::env::var(var).map_err(|_| var.to_string()),
        None => Ok(text.to_string()),
    }
}
