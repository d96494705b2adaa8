//! The HTTP API served from inside the console, switched on and off from the window.

use crate::http::metrics::Metrics;
use crate::service::traffic::RequestCounts;
use crate::service::Engine;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;

/// The switch: at most one server at a time. Cheap to clone; clones share the switch.
#[derive(Clone, Default)]
pub struct EmbeddedApi {
    running: Arc<Mutex<Option<Running>>>,
    /// The counters of the server last started (they stay readable after it stops).
    metrics: Arc<std::sync::Mutex<Arc<Metrics>>>,
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<io::Result<()>>,
    /// How long in-flight requests may take to finish once the switch is turned off.
    grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("the API is already running on {0}")]
    AlreadyRunning(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the API stopped with an error: {0}")]
    Failed(#[source] io::Error),
}

impl EmbeddedApi {
    /// Binds `addr` and serves the API in a task; returns the address actually bound (so port 0
    /// picks a free port).
    pub async fn start(
        &self,
        engine: &Engine,
        addr: SocketAddr,
    ) -> Result<SocketAddr, SwitchError> {
        let mut slot = self.running.lock().await;
        if let Some(running) = slot.as_ref().filter(|r| !r.server.is_finished()) {
            return Err(SwitchError::AlreadyRunning(running.addr));
        }
        let bind_error = |source| SwitchError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also stops the server.
            let _ = stopped.await;
        };
        let metrics = Arc::new(Metrics::default());
        *self.metrics.lock().expect("metrics slot") = metrics.clone();
        let server = tokio::spawn(crate::http::serve_with_metrics(
            engine.clone(),
            listener,
            shutdown,
            metrics,
        ));
        tracing::info!(addr = %bound, "the console is serving the HTTP API");
        *slot = Some(Running {
            addr: bound,
            stop,
            server,
            grace: Duration::from_secs(engine.settings().http.timeout_secs + 1),
        });
        Ok(bound)
    }

    /// Where the API listens, or `None` when it is off.
    pub async fn addr(&self) -> Option<SocketAddr> {
        let slot = self.running.lock().await;
        slot.as_ref()
            .filter(|r| !r.server.is_finished())
            .map(|r| r.addr)
    }

    /// The request counters of the server running (or last run), as `/metrics` exports them.
    pub fn counts(&self) -> RequestCounts {
        self.metrics.lock().expect("metrics slot").counts()
    }

    /// Stops accepting connections and waits until in-flight requests have finished (or the
    /// request timeout has passed), so the port is free when this returns. Stopping a stopped
    /// API does nothing.
    pub async fn stop(&self) -> Result<(), SwitchError> {
        // The lock is held until the listener is closed, so a quick "on" cannot race it.
        let mut slot = self.running.lock().await;
        let Some(running) = slot.take() else {
            return Ok(());
        };
        let _ = running.stop.send(());
        let mut server = running.server;
        match tokio::time::timeout(running.grace, &mut server).await {
            Ok(Ok(Ok(()))) => {
                tracing::info!(addr = %running.addr, "the console stopped the HTTP API");
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(SwitchError::Failed(e)),
            Ok(Err(join)) => Err(SwitchError::Failed(io::Error::other(join))),
            Err(_elapsed) => {
                server.abort();
                let _ = server.await; // the listener is dropped with the task
                tracing::warn!(addr = %running.addr, "requests still running after the grace period were cut off");
                Ok(())
            }
        }
    }
}
