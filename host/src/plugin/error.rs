//! Errors of the plugin runtime. Each names the plugin (file or digest) and
//! what was expected.

use super::limits::CompileLimit;
use super::limits::LimitKind;

/// What went wrong loading or running a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("{origin} is not a WebAssembly component: {reason}")]
    NotComponent {
        /// File or digest.
        origin: String,
        /// What was found instead.
        reason: String,
    },
    /// The component failed to compile.
    #[error("{origin} failed to compile: {reason}")]
    Compile {
        /// File or digest.
        origin: String,
        /// The compiler's reason.
        reason: String,
    },
    /// A compile limit refused the component; it did not go live.
    #[error("{origin} was not compiled: the {limit} refused it: {detail}")]
    CompileLimit {
        /// File or digest.
        origin: String,
        /// Which limit.
        limit: CompileLimit,
        /// The configured value and what was seen.
        detail: String,
    },
    /// The component does not implement the `ferry:mapping` `mapper` world.
    #[error("{origin} is not a ferry mapping plugin (world `ferry:mapping/mapper@0.1.x`): {reason}")]
    WrongWorld {
        /// File or digest.
        origin: String,
        /// The missing import or export.
        reason: String,
    },
    /// The plugin was built for a contract this host does not speak.
    #[error("plugin {plugin} was built for contract {found}, this host speaks {expected}")]
    Contract {
        /// name@version (digest).
        plugin: String,
        /// The plugin's contract version.
        found: String,
        /// The host's.
        expected: String,
    },
    /// The plugin rejected the pipeline's options.
    #[error("plugin {plugin} rejected the options: {reason}")]
    Options {
        /// name@version (digest).
        plugin: String,
        /// The plugin's reason.
        reason: String,
    },
    /// A batch hit one of the limits.
    #[error("plugin {plugin} stopped by the {limit}: {detail}")]
    Limit {
        /// name@version (digest).
        plugin: String,
        /// Which limit.
        limit: LimitKind,
        /// The configured value and what was seen.
        detail: String,
    },
    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error("plugin {plugin} trapped: {message}{}", stderr_tail(.stderr))]
    Trap {
        /// name@version (digest).
        plugin: String,
        /// The trap.
        message: String,
        /// The tail of the guest's stderr, if any.
        stderr: String,
    },
    /// The plugin refused the whole batch, or broke the contract (wrong
    /// number of outcomes).
    #[error("plugin {plugin} failed the batch: {reason}")]
    Batch {
        /// name@version (digest).
        plugin: String,
        /// Why.
        reason: String,
    },
    /// A new version failed its checks and did not go live (or, when
    /// nothing was live yet, the pipeline's plugin could not be loaded).
    #[error("{}", rejected(pipeline, live, reason))]
    Rejected {
        /// The pipeline.
        pipeline: String,
        /// What stays live (or `nothing`).
        live: String,
        /// The failed check.
        reason: Box<PluginError>,
    },
    /// No plugin is live for the pipeline.
    #[error("no plugin is live for pipeline `{0}`")]
    NoPlugin(String),
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

impl PluginError {
    /// What stopped a batch, for the `ferry_plugin_traps_total` label: the
    /// limit's setting (`fuel`, `timeout`, `memory_bytes`, ...), `trap`,
    /// `batch` (refused or broke the contract), or `error`.
    pub fn stopped_by(&self) -> &'static str {
        match self {
            PluginError::Limit { limit, .. } => limit.key(),
            PluginError::Trap { .. } => "trap",
            PluginError::Batch { .. } => "batch",
            _ => "error",
        }
    }
}

fn stderr_tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let tail: String = s.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect();
    format!(" (guest stderr: {tail})")
}

fn rejected(pipeline: &str, live: &str, reason: &PluginError) -> String {
    match (live, reason) {
        ("nothing", PluginError::Io { .. }) => format!("pipeline `{pipeline}`'s plugin: {reason} (check mapping.plugin)"),
        ("nothing", _) => format!("pipeline `{pipeline}`'s plugin could not be loaded: {reason}"),
        _ => format!("new version of pipeline `{pipeline}`'s plugin rejected, {live} stays live: {reason}"),
    }
}

impl PluginError {
    /// The limit that stopped the batch, if that is what happened.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            PluginError::Limit { limit, .. } => Some(*limit),
            PluginError::Rejected { reason, .. } => reason.limit(),
            _ => None,
        }
    }
}
