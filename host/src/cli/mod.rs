//! The `ferry` command line's production commands: raw arguments parsed by
//! clap, each subcommand in its own module. The binary (`src/bin/ferry`)
//! adds `ferry demo` and `ferry sim`, which run the simulators (a crate of
//! their own, not part of this library). Exit codes: 0 success, 1 some
//! records failed (dead letters, errored outcomes), 2 fatal error, 130
//! interrupted.

mod dlq;
mod jushuitan;
mod plugin;
mod reconcile;
mod run;
mod scaffold;
mod serve;
mod token;

use clap::{Subcommand, ValueEnum};
use std::process::ExitCode;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The library's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one sync of a pipeline (incremental, or a backfill with --since/--until).
    Run(run::RunArgs),
    /// Check a pipeline file, its plugin and options, without touching the network.
    Validate(run::ValidateArgs),
    /// Show a pipeline's checkpoint, pending outbox, idCheck size and last runs.
    State(run::StateArgs),
    /// Check a closed range against the source's own count, id by id where they differ; --deliver what is missing.
    Reconcile(reconcile::ReconcileArgs),
    /// Serve the Command-pattern control API, schedules and metrics.
    Serve(serve::ServeArgs),
    /// Check or try a mapping plugin.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Jushuitan helpers.
    #[command(subcommand)]
    Jushuitan(jushuitan::JushuitanCommand),
    /// Dead letters of a pipeline.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Compile one plugin from stdin to stdout under a memory cap (run by
    /// Ferry itself, so a compile cannot take the host's memory or time).
    #[command(hide = true)]
    CompilePlugin(CompileArgs),
}

/// `ferry compile-plugin`'s flags.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// Address space of this process, in bytes.
    #[arg(long)]
    memory_bytes: u64,
    /// Compile without fuel metering.
    #[arg(long)]
    no_fuel: bool,
    /// Compile without epoch checks.
    #[arg(long)]
    no_epoch: bool,
}

/// What a command reports back to `main`.
pub enum Exit {
    /// Everything went through.
    Ok,
    /// Finished, but some records failed.
    Partial,
    /// A specific code.
    Code(u8),
}

/// Runs one of the library's commands and maps the result to an exit code.
pub fn run(command: Command, log_format: LogFormat) -> ExitCode {
    if let Command::CompilePlugin(a) = &command {
        return compile_plugin(a);
    }
    init_logging(log_format);
    // `ferry run` and the other commands wait this long for a restarting PostgreSQL (serve: `[postgres]`).
    if let Some(v) = std::env::var_os("FERRY_PG_RECONNECT_GRACE") {
        match humantime::parse_duration(&v.to_string_lossy()) {
            Ok(d) => crate::state::set_reconnect_grace(d),
            Err(e) => return exit_code(Err(anyhow::anyhow!("FERRY_PG_RECONNECT_GRACE: expected a duration like `60s`: {e}"))),
        }
    }
    exit_code(match command {
        Command::Run(a) => run::run(a, log_format),
        Command::Validate(a) => run::validate(a),
        Command::State(a) => run::state(a),
        Command::Reconcile(a) => reconcile::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Jushuitan(cmd) => jushuitan::run(cmd),
        Command::Dlq(cmd) => dlq::run(cmd),
        Command::CompilePlugin(_) => unreachable!("handled before logging starts"),
    })
}

/// A command's result as the process's exit code; a fatal error is said on
/// stderr.
pub fn exit_code(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Partial) => ExitCode::from(1),
        Ok(Exit::Code(c)) => ExitCode::from(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Log lines to stderr, filtered by `FERRY_LOG`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "info,ferry::plugin=warn".into());
    // Colour only on a terminal, and never with NO_COLOR (https://no-color.org).
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs `f`, turning a write to a closed stdout (`ferry state P | head -1`)
/// into a quiet exit 0, as `cargo` and `git` do, instead of a panic.
pub fn quiet_on_broken_pipe(f: impl FnOnce() -> ExitCode) -> ExitCode {
    // `println!`'s panic, or a library's `unwrap` of the same write error.
    fn broken(msg: &str) -> bool {
        msg.contains("Broken pipe") || msg.contains("BrokenPipe")
    }
    fn text(p: &(dyn std::any::Any + Send)) -> &str {
        p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("")
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !broken(text(info.payload())) {
            default(info);
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(p) if broken(text(p.as_ref())) => ExitCode::SUCCESS,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A multi-threaded tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// What makes this process the pipeline's only writer while it is held:
/// the lease in PostgreSQL (shared with a cluster's workers), a lock beside
/// a SQLite file.
pub enum SoleWriter {
    /// The pipeline's lease row.
    Lease(crate::cluster::RunLease),
    /// The lock file beside the SQLite state.
    Lock(crate::state::WriterLock),
}

/// Takes the pipeline's sole-writer hold for `holder` (what this process
/// is), or says who holds it.
pub fn sole_writer(pipeline: &crate::pipeline::Pipeline, holder: &str) -> anyhow::Result<SoleWriter> {
    Ok(match &pipeline.state {
        crate::state::StateLocation::Postgres(url) => SoleWriter::Lease(
            crate::cluster::RunLease::take(crate::state::PgStore::connect(url)?, &pipeline.name, holder)
                .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?,
        ),
        crate::state::StateLocation::Sqlite(path) => SoleWriter::Lock(crate::state::WriterLock::take(path, &pipeline.name, holder)?),
    })
}

/// `ferry compile-plugin`: a component from stdin, its compiled artifact to
/// stdout, under the memory cap the host passed.
fn compile_plugin(a: &CompileArgs) -> ExitCode {
    use std::io::{Read, Write};
    let read = || {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    };
    let written = crate::plugin::compile_child(a.memory_bytes, !a.no_fuel, !a.no_epoch, read)
        .and_then(|artifact| std::io::stdout().lock().write_all(&artifact).map_err(|e| format!("cannot write the compiled artifact: {e}")));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(crate::plugin::COMPILE_FAILED_EXIT)
        }
    }
}

/// The plugin engine of a command, with the default disk cache.
pub fn engine() -> anyhow::Result<std::sync::Arc<crate::plugin::PluginEngine>> {
    Ok(std::sync::Arc::new(engine_with_cache(default_cache_dir())?))
}

/// A plugin engine whose cold compiles run in this binary under the
/// compile limits of the environment.
pub fn engine_with_cache(cache_dir: Option<std::path::PathBuf>) -> anyhow::Result<crate::plugin::PluginEngine> {
    let compile = crate::plugin::CompileLimits::from_env(std::env::current_exe().ok()).map_err(anyhow::Error::msg)?;
    Ok(crate::plugin::PluginEngine::new(crate::plugin::EngineOptions { cache_dir, compile, ..Default::default() })?)
}

/// The default compile-cache directory: `$FERRY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("FERRY_CACHE_DIR") {
        return Some(d.into());
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(std::path::PathBuf::from(d).join("ferry"));
    }
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache").join("ferry"))
}
