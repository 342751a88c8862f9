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
        /// Only the dead letters of this record id (the source id, e.g. an
        /// `o_id`); repeatable.
        #[arg(long = "id", value_name = "RECORD_ID")]
        ids: Vec<String>,
        /// Only the dead letters whose reason contains this text (any case).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

pub fn run(cmd: DlqCommand) -> anyhow::Result<Exit> {
    match cmd {
        DlqCommand::List { pipeline, json } => {
            let p = Pipeline::load_state_only(&pipeline)?;
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
        DlqCommand::Replay { pipeline, ids, reason } => {
            let p = Pipeline::load(&pipeline)?;
            let _writer = super::sole_writer(&p, "ferry dlq replay")?;
            let runner = Runner::new(p, super::engine()?, false)?;
            let filter = crate::pipeline::ReplayFilter { ids, reason };
            let report = super::runtime()?.block_on(runner.replay_dead_letters(&filter))?;
            println!("{}", serde_json::to_string(&report)?);
            eprintln!(
                "replayed {} of {} dead letters: {} delivered or skipped, {} still failing in the plugin, {} refused again by the target; {} left in the table",
                report.selected, report.total, report.resolved, report.still_failing, report.refused_again, report.left
            );
            Ok(if report.still_failing + report.refused_again as usize > 0 { Exit::Partial } else { Exit::Ok })
        }
    }
}
