//! `ferry serve`.

use super::Exit;
use crate::api::{self, ServeConfig};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The serve file (TOML): listen address, pipelines, schedules, tokens, alerts.
    config: PathBuf,
    /// Override the listen address (`host:port`, port 0 = any free port).
    #[arg(long)]
    listen: Option<String>,
    /// This worker's id in a cluster (overrides `cluster.worker`).
    #[arg(long)]
    worker: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let mut config = ServeConfig::load(&args.config).map_err(anyhow::Error::msg)?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    match (args.worker, config.cluster.as_mut()) {
        (Some(w), Some(c)) => c.worker = w,
        (Some(_), None) => anyhow::bail!("{}: --worker needs a [cluster] section in the serve file", args.config.display()),
        (None, _) => {}
    }
    let engine = super::engine()?;
    let runtime = super::runtime()?;
    let result = runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = api::state(&config, engine, stop_rx)?;
        let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        println!("ferry serve on http://{} ({} pipelines)", listener.local_addr()?, config.pipelines.len());
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down: in-flight batches finish, the rest stays in the outbox");
        };
        api::serve(state, listener, stop_tx, shutdown).await
    });
    // A plugin call still running is bounded by its own deadline; do not wait for it here.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(Exit::Ok)
}
