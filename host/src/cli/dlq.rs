//! `ferry dlq list` and `ferry dlq replay`.

use super::Exit;
use crate::pipeline::{Pipeline, Runner};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a pipeline's dead letters.
    List {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Print JSON lines with the raw input.
        #[arg(long)]
        json: bool,
    },
    /// Map dead letters again with the current plugin and write them; the
    /// ones delivered leave the table. Exits 1 if some remain.
    Replay {
        /// The pipeline file.
        pipeline: PathBuf,
    },
}

pub fn run(cmd: DlqCommand) -> anyhow::Result<Exit> {
    match cmd {
        DlqCommand::List { pipeline, json } => {
            let p = Pipeline::load(&pipeline)?;
            let store = p.state.open()?;
            let dead = store.dead_letters(&p.name)?;
            for d in &dead {
                if json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    let digest = &d.plugin[..d.plugin.len().min(12)];
                    println!("{:>6}  {}@{}  plugin {digest}  {}", d.id, d.key.id, d.key.version, d.reason);
                }
            }
            eprintln!("{} dead letters", dead.len());
            Ok(Exit::Ok)
        }
        DlqCommand::Replay { pipeline } => {
            let p = Pipeline::load(&pipeline)?;
            let runner = Runner::new(p, super::engine()?, false)?;
            let report = super::runtime()?.block_on(runner.replay_dead_letters())?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.still_failing + report.refused_again as usize > 0 { Exit::Partial } else { Exit::Ok })
        }
    }
}
