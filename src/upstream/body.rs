//! A provider's response body, read by the task that holds its connection.
//!
//! Each poll hands over everything the connection has already received, up to
//! [`MAX_GATHER`] bytes: hyper yields one frame per HTTP chunk and decodes the next only
//! after the last was taken, so the body takes a frame, lets the connection decode the next
//! from what it has read, and so on until the connection would have to wait for the
//! network. A provider's SSE events that one read brought in thus leave the router in one
//! write, as nginx relays them; an event that arrives alone goes out at once, as before.
//!
//! A body read to its end returns its connection to the pool; one dropped earlier closes it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use hyper::body::{Body as _, Incoming};

use super::pool::{Conn, Driver, Pool};
use super::Error;

/// Most bytes handed over by one poll.
const MAX_GATHER: usize = 64 * 1024;

/// A response body as a stream of what has arrived.
pub struct Body {
    incoming: Incoming,
    /// Until the body has ended.
    conn: Option<Conn>,
    pool: Arc<Pool>,
    origin: Arc<str>,
    /// An error met after bytes that were handed over first.
    failed: Option<hyper::Error>,
}

/// Bytes gathered in one poll: most often one chunk, passed on without a copy.
#[derive(Default)]
enum Gathered {
    #[default]
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Gathered {
    fn push(&mut self, data: Bytes) {
        *self = match std::mem::take(self) {
            Gathered::Nothing => Gathered::One(data),
            Gathered::One(first) => {
                let mut many = BytesMut::with_capacity(first.len() + data.len());
                many.extend_from_slice(&first);
                many.extend_from_slice(&data);
                Gathered::Many(many)
            }
            Gathered::Many(mut many) => {
                many.extend_from_slice(&data);
                Gathered::Many(many)
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Gathered::Nothing => 0,
            Gathered::One(b) => b.len(),
            Gathered::Many(b) => b.len(),
        }
    }

    fn take(self) -> Option<Bytes> {
        match self {
            Gathered::Nothing => None,
            Gathered::One(b) => Some(b),
            Gathered::Many(b) => Some(b.freeze()),
        }
    }
}

impl Body {
    pub(super) fn new(incoming: Incoming, conn: Conn, pool: Arc<Pool>, origin: Arc<str>) -> Body {
        Body {
            incoming,
            conn: Some(conn),
            pool,
            origin,
            failed: None,
        }
    }

    /// The body has ended: its connection may serve another request.
    fn ended(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.checkin(&self.origin, conn);
        }
    }

    /// The whole body.
    pub(super) async fn collect(mut self) -> Result<Bytes, Error> {
        use futures_util::StreamExt;
        let mut all = Gathered::Nothing;
        while let Some(chunk) = self.next().await {
            all.push(chunk?);
        }
        Ok(all.take().unwrap_or_default())
    }
}

/// How a gathering poll ended.
enum Step {
    /// Nothing more for now (or [`MAX_GATHER`] reached).
    More,
    Ended,
    Failed(hyper::Error),
}

/// Takes frames from `incoming` into `gathered`, letting the connection decode the next
/// after each, until neither has anything more without the network.
fn gather(
    incoming: &mut Incoming,
    mut io: Option<&mut Driver>,
    gathered: &mut Gathered,
    cx: &mut Context<'_>,
) -> Step {
    // Whether the connection was polled since the body last yielded a frame.
    let mut driven = false;
    loop {
        match Pin::new(&mut *incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                driven = false;
                if let Ok(data) = frame.into_data() {
                    gathered.push(data);
                    if gathered.len() >= MAX_GATHER {
                        return Step::More;
                    }
                }
                continue;
            }
            Poll::Ready(Some(Err(e))) => return Step::Failed(e),
            Poll::Ready(None) => return Step::Ended,
            Poll::Pending if driven => return Step::More,
            Poll::Pending => {}
        }
        driven = true;
        match io.as_mut() {
            // The connection reads and decodes; an end shows in the body next.
            Some(io) => {
                let _ = io.drive(cx);
            }
            None => return Step::More,
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(Error::Body(e))));
        }
        let Body { incoming, conn, .. } = this;
        let mut gathered = Gathered::Nothing;
        let step = match conn.as_mut() {
            Some(Conn { io, quiet, .. }) => {
                quiet.poll(cx, |cx| gather(incoming, Some(io), &mut gathered, cx))
            }
            None => gather(incoming, None, &mut gathered, cx),
        };
        match step {
            Step::More => {}
            Step::Failed(e) => {
                this.conn = None;
                match gathered.take() {
                    Some(bytes) => {
                        this.failed = Some(e);
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    None => return Poll::Ready(Some(Err(Error::Body(e)))),
                }
            }
            Step::Ended => {
                this.ended();
                return Poll::Ready(gathered.take().map(Ok));
            }
        }
        match gathered.take() {
            Some(bytes) => Poll::Ready(Some(Ok(bytes))),
            None => Poll::Pending,
        }
    }
}
