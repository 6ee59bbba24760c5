//! Provider connections and the idle pool.
//!
//! A [`Conn`] is hyper's two halves of one HTTP/1 connection: the sender and the connection
//! future, which reads and writes only when polled. Whoever holds the `Conn` polls it
//! ([`Conn::drive`]); nothing polls an idle one. So before an idle connection is reused it is
//! polled once without a waker: a connection the provider closed meanwhile (the socket has
//! seen its end) finishes there and is dropped, and one still busy is not handed out.
//!
//! Idle connections are kept per thread: a connection's socket is registered with the
//! runtime of the thread that opened it, and a request served on another thread's runtime
//! would be woken across threads for each of its reads ([`crate::http::cores`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::quiet::Quiet;

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// One HTTP/1 connection to a provider.
pub(super) struct Conn {
    pub send: SendRequest<Full<Bytes>>,
    pub io: Driver,
    /// Polls `io` and the request's own futures without waking itself.
    pub quiet: Quiet,
    /// Taken from the pool (a request it cannot take may go to a fresh connection).
    pub reused: bool,
}

/// The connection future, which reads and writes only when polled. `None` once it has
/// ended. Boxed: the connection state (buffers and parser) is large, and a request's future
/// holds its `Conn`.
pub(super) struct Driver(Option<Box<Connection<Io, Full<Bytes>>>>);

impl Driver {
    /// Lets the connection read and write what it can. `Ready` once it has ended (closed or
    /// failed); it is dropped then, which tells a pending response why.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(conn) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        match std::pin::Pin::new(&mut **conn).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "provider connection ended with an error");
                }
                self.0 = None;
                Poll::Ready(())
            }
        }
    }
}

impl Conn {
    pub fn new(send: SendRequest<Full<Bytes>>, conn: Connection<Io, Full<Bytes>>) -> Conn {
        Conn {
            send,
            io: Driver(Some(Box::new(conn))),
            quiet: Quiet::new(),
            reused: false,
        }
    }

    /// Ready for another request: open, and idle after its last response.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.io.drive(&mut cx).is_pending() && !self.send.is_closed() && self.send.is_ready()
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

type ByOrigin = HashMap<Arc<str>, Vec<Idle>>;

/// Idle connections by thread and origin, most recently used last.
pub(super) struct Pool {
    idle: Mutex<HashMap<ThreadId, ByOrigin>>,
    max_per_origin: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub fn new(max_per_origin: usize, idle_timeout: Duration) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_per_origin,
            idle_timeout,
        }
    }

    /// This thread's idle connections.
    fn with<R>(&self, f: impl FnOnce(&mut ByOrigin) -> R) -> R {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        f(idle.entry(std::thread::current().id()).or_default())
    }

    /// The most recently used idle connection to `origin` that is still usable.
    pub fn checkout(&self, origin: &Arc<str>) -> Option<Conn> {
        loop {
            let idle = self.with(|idle| idle.get_mut(origin)?.pop())?;
            if idle.since.elapsed() > self.idle_timeout {
                // The rest are older still.
                self.with(|idle| idle.remove(origin));
                return None;
            }
            let mut conn = idle.conn;
            if conn.usable() {
                conn.reused = true;
                return Some(conn);
            }
        }
    }

    /// A connection whose response was read to its end goes back for reuse.
    pub fn checkin(&self, origin: &Arc<str>, conn: Conn) {
        if conn.io.0.is_none() || conn.send.is_closed() {
            return;
        }
        self.with(|idle| {
            let list = idle.entry(origin.clone()).or_default();
            if list.len() < self.max_per_origin {
                list.push(Idle {
                    conn,
                    since: Instant::now(),
                });
            }
        });
    }
}
