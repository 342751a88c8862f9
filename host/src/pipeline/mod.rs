//! A pipeline: the file that describes it ([`config`]), and the run loop
//! that moves its records ([`run`]) with its summary ([`summary`]).

mod batch;
pub mod config;
pub mod history;
pub mod options;
pub mod reconcile;
pub mod replay;
pub mod run;
pub(crate) mod secrets;
mod show;
pub mod summary;

pub use config::{ConfigError, Pipeline};
pub use replay::ReplayFilter;
pub use run::{DryRunItem, RunOptions, Runner, Shown};
pub use summary::{RunStatus, Summary};
