//! The HTTP/1 server loop shared by the router and the fake providers: accept, per-connection
//! settings, slow-client limits, graceful shutdown.
//!
//! Every accepted connection gets `TCP_NODELAY` (small answers and SSE events leave at once)
//! and a header-read timeout: a client that opens a connection and dribbles its request
//! headers (slowloris) is cut off instead of holding a task and a socket forever. On shutdown
//! the listener is closed at once, in-flight requests may finish within the grace period, and
//! whatever still runs after it is abandoned.

pub mod cores;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time allowed for a request's headers to arrive, counted from the first byte.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run on after the shutdown signal.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
}

/// What to do with a freshly accepted connection.
pub enum Accept {
    /// Serve HTTP on it.
    Serve(TcpStream),
    /// Already handled (or deliberately dropped) by the caller.
    Handled,
}

fn builder(options: &ServeOptions) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    b
}

/// Serves `app` on `listener` until `shutdown` resolves; `on_accept` sees each connection
/// first (the fake providers use it to reset connections on purpose).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
    on_accept: impl Fn(TcpStream) -> Accept,
) {
    let builder = builder(&options);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        let Accept::Serve(tcp) = on_accept(tcp) else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(grace = ?options.grace, "shutting down: no new connections, finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!("grace period over; abandoning the requests still running");
        }
    }
}
