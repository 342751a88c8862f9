//! The control API's listener, bounded against slow or many clients: a
//! connection that has not sent its request headers within
//! `header_timeout`, or whose body stalls past `body_timeout`, is closed;
//! past `max_connections` open connections a new one is closed at once
//! (counted in `ferry_api_connections_refused_total`), so a tenant holding
//! connections open cannot exhaust the host's sockets or memory, and holds
//! what it holds for a bounded time only.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long connections may take, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// From accepting a connection (or the end of its last request) to the
    /// end of the next request's headers.
    pub header_timeout: Duration,
    /// Reading one request's body.
    pub body_timeout: Duration,
    /// After SIGTERM or Ctrl-C, how long running syncs get to finish their
    /// in-flight batches before the process ends anyway (what they had not
    /// confirmed stays in the outbox for the next start).
    pub shutdown_grace: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How long open connections get to finish once `shutdown` resolves.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then lets open connections finish (at most `DRAIN`).
pub async fn serve(listener: TcpListener, app: Router, limits: ListenLimits, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, for one: wait, do not spin.
                    tracing::warn!("the API cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("ferry_api_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection closed by a timeout or the client is not an error
            // of the server's.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open {DRAIN:?} after the stop; closing them");
    }
    Ok(())
}
