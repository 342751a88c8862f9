//! The `ferry` binary: the library's commands ([`ferry::cli`]) plus
//! `ferry demo` and `ferry sim`, which run the simulators (`ferry-sim`, a
//! crate of its own that the production library does not contain).

mod demo;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    }
}
