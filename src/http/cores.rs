//! Serving on every core: one listener per serving thread, all on the same address
//! (`SO_REUSEPORT`: the kernel spreads new connections over them), each thread a
//! single-threaded runtime that accepts, serves and relays its own connections.
//!
//! A connection, its request's upstream exchange (the upstream pool keeps connections per
//! thread) and its timers stay on one thread from start to end. A work-stealing runtime moves
//! tasks between threads and wakes sleeping ones, which on a router's many small hand-offs
//! cost about a fifth of its CPU; here nothing is handed between threads on the request path.
//! What is shared between requests (statistics, prices, limits) is shared as before.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use socket2::{Domain, Protocol, Socket, Type};

use super::{Accept, ServeOptions};

/// The threads to serve with: `configured`, or one per core the process may use.
pub fn threads(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// `n` listeners on `addr` (port 0: the first one's port for all of them). An address
/// already in use is an error, as with a single listener: `SO_REUSEPORT` alone would let a
/// second router on the same port quietly take half of the connections.
pub fn bind(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr)?);
    }
    let mut listeners: Vec<std::net::TcpListener> = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let at = match listeners.first() {
            Some(first) => first.local_addr()?,
            None => addr,
        };
        let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&at.into())?;
        socket.listen(1024)?;
        listeners.push(socket.into());
    }
    Ok(listeners)
}

/// Serves `app` on each listener from its own thread until `shutdown` resolves; then each
/// thread stops accepting and finishes its in-flight requests within the grace period.
/// Resolves when every thread has stopped.
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, mut stopped) = (app.clone(), stopped.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let shutdown = async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            };
                            super::serve(listener, app, options, shutdown, Accept::Serve).await;
                        }
                        Err(e) => tracing::error!(error = %e, "cannot serve on a listener"),
                    }
                });
                let _ = done.send(());
            })?;
        threads.push(finished);
    }
    shutdown.await;
    let _ = stop.send(true);
    for finished in threads {
        let _ = finished.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_share_one_address() {
        let listeners = bind("127.0.0.1:0".parse().expect("addr"), 3).expect("bind");
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr"))
            .collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|a| *a == addrs[0]));
        assert!(threads(0) >= 1);
        assert_eq!(threads(3), 3);
        // Another router on the same port is refused, not let in beside the first.
        let err = bind(addrs[0], 2).expect_err("the port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
