//! The `ferry` command line: raw arguments parsed by clap, each subcommand
//! in its own module. Exit codes: 0 success, 1 some records failed (dead
//! letters, errored outcomes), 2 fatal error.

mod plugin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Ferry moves orders between SaaS APIs through sandboxed mapping plugins.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check or try a mapping plugin.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// What a command reports back to `main`.
pub enum Exit {
    /// Everything went through.
    Ok,
    /// Finished, but some records failed.
    Partial,
}

/// Runs the CLI and maps the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd),
    };
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Partial) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
