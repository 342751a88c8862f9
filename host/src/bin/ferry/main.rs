//! The `ferry` binary: the library's commands ([`ferry::cli`]) plus
//! `ferry demo` and `ferry sim`, which run the simulators (`ferry-sim`, a
//! crate of its own that the production library does not contain).

mod demo;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ferry::cli::{Command, LogFormat};
use std::process::ExitCode;

/// Ferry moves orders between SaaS APIs through sandboxed mapping plugins.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    /// Log lines as text (default) or JSON (for machines).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    #[command(flatten)]
    Ferry(Command),
    /// Run the demo: both simulators, a first sync and an incremental one, checked against ground truth.
    Demo(demo::DemoArgs),
    /// Serve a simulator on loopback.
    #[command(subcommand)]
    Sim(ferry_sim::cli::SimCommand),
    /// Print a shell completion script (e.g. `ferry completions bash > /etc/bash_completion.d/ferry`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `ferry --version`: the version, the commit it was built from and the
/// plugin contract it loads.
fn version() -> &'static str {
    let text = format!("{} (commit {}, WIT contract ferry:mapping@{})", env!("CARGO_PKG_VERSION"), env!("FERRY_COMMIT"), ferry::plugin::CONTRACT_VERSION);
    Box::leak(text.into_boxed_str())
}

fn main() -> ExitCode {
    let matches = Cli::command().version(version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    ferry::cli::quiet_on_broken_pipe(move || dispatch(cli))
}

fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Top::Ferry(command) => ferry::cli::run(command, cli.log_format),
        Top::Demo(args) => {
            ferry::cli::init_logging(cli.log_format);
            ferry::cli::exit_code(demo::run(args))
        }
        Top::Sim(cmd) => {
            ferry::cli::init_logging(cli.log_format);
            ferry::cli::exit_code(ferry_sim::cli::run(cmd).map(|()| ferry::cli::Exit::Ok))
        }
        Top::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}
