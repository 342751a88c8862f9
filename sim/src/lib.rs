//! Simulators of the outside world, faithful enough to test against and
//! deterministic from a seed: the Jushuitan open API and a Command-pattern
//! target, each fault and quirk a named mode. `ferry sim ...` serves them
//! (`cli`); tests, benchmarks and `ferry demo` run them in-process on
//! loopback and write their pipeline files with one builder
//! (`pipeline_file`).
//!
//! This crate does not depend on the `ferry` library: what the client
//! sends is checked here with the simulators' own code, so a client bug
//! cannot hide behind shared code; and the production library carries no
//! simulator.

pub mod cli;
pub mod jushuitan;
pub mod pipeline_file;
pub mod target;
mod time;

pub use pipeline_file::PipelineFile;

use std::future::Future;
use tokio::net::TcpListener;

/// A simulator running in this process.
pub struct Running<S> {
    /// Where it listens, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its state, for ground truth.
    pub state: S,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl<S> Running<S> {
    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, router: axum::Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Binds 127.0.0.1:`port` (0 for any free port) and serves in a task.
pub async fn spawn<S>(port: u16, router: axum::Router, state: S) -> std::io::Result<Running<S>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, router, async {
            let _ = rx.await;
        })
        .await
        {
            tracing::error!("simulator stopped: {e}");
        }
    });
    Ok(Running { url, state, stop: Some(tx), task: Some(task) })
}
