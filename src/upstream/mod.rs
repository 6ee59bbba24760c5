//! The router's client for providers: HTTP/1.1 with keep-alive (TLS for `https`), each
//! connection driven by the request that holds it.
//!
//! A general-purpose client runs every connection as a task of its own: the request hands
//! its message to that task, the task hands back the response, and every chunk of a body
//! crosses from one task to the other through a channel that holds one chunk. For a router
//! that is two task wake-ups per request and one per chunk, and, worse for streams, one write
//! to the client per upstream chunk even when a single read brought several. Here the task
//! serving the client polls the provider connection itself ([`pool::Conn::drive`]): the
//! request is written, the answer read and the body relayed in one task, and the body stream
//! ([`body::Body`]) hands over at once everything the connection has already received.
//!
//! Connections are pooled per origin ([`pool::Pool`]) and checked before reuse; a request
//! that a reused connection could not take is sent again on a fresh one. Connecting (DNS, TCP,
//! TLS) is hyper-util's connector wrapped by hyper-rustls with the Mozilla roots.

mod body;
mod pool;
mod quiet;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use http::{StatusCode, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

pub use body::Body;

/// A response body as the gateway passes it along (translated, tapped).
pub type BodyStream = futures_util::stream::BoxStream<'static, Result<Bytes, Error>>;
use pool::{Conn, Pool};

/// Where a provider route is: its URI, `Host` header and origin (the pool's key), parsed
/// once when the catalog is built.
#[derive(Debug, Clone)]
pub struct Target {
    uri: Uri,
    host: HeaderValue,
    origin: Arc<str>,
}

impl Target {
    /// An absolute `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?;
        let scheme = uri.scheme_str().ok_or("no scheme (http:// or https://)")?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        let authority = uri.authority().ok_or("no host")?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        let origin = format!("{scheme}://{authority}").into();
        Ok(Target { uri, host, origin })
    }

    /// The URL as given.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

/// Why an exchange with a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made (DNS, TCP, TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Connecting took longer than `connect_timeout`.
    #[error("connecting timed out")]
    ConnectTimeout,
    /// The request could not be sent or the response head not read (a reset, a close, a
    /// malformed head).
    #[error("request failed: {0}")]
    Request(hyper::Error),
    /// The response body broke off or was malformed.
    #[error("response body failed: {0}")]
    Body(hyper::Error),
}

/// How the client connects and pools.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub connect_timeout: Duration,
    /// Idle connections kept per origin.
    pub max_idle_per_origin: usize,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
}

/// The client: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Client(Arc<Inner>);

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    pool: Arc<Pool>,
    connect_timeout: Duration,
    user_agent: HeaderValue,
}

/// A provider's response head; its body is read through [`Response::bytes`] or
/// [`Response::into_body`], which keep driving the connection.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        self.body.collect().await
    }

    /// The body as a stream of what has arrived, chunk boundaries not kept.
    pub fn into_body(self) -> Body {
        self.body
    }
}

impl Client {
    pub fn new(settings: Settings, user_agent: &'static str) -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client(Arc::new(Inner {
            connector,
            pool: Arc::new(Pool::new(
                settings.max_idle_per_origin,
                settings.idle_timeout,
            )),
            connect_timeout: settings.connect_timeout,
            user_agent: HeaderValue::from_static(user_agent),
        }))
    }

    /// POSTs `body` with `headers` to `target`. Resolves when the response head has arrived;
    /// the body is read from the [`Response`].
    pub async fn post(
        &self,
        target: &Target,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, Error> {
        headers.insert(HOST, target.host.clone());
        headers.insert(USER_AGENT, self.0.user_agent.clone());
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = target.uri.clone();
        *request.headers_mut() = headers;
        if let Some(conn) = self.0.pool.checkout(&target.origin) {
            match send(conn, request, &self.0.pool, &target.origin).await {
                Sent::Answered(response) => return Ok(response),
                Sent::Failed(e) => return Err(Error::Request(e)),
                // The reused connection did not take it (it was closing): a fresh one does.
                Sent::Unsent(back) => request = back,
            }
        }
        let conn = self.connect(target).await?;
        match send(conn, request, &self.0.pool, &target.origin).await {
            Sent::Answered(response) => Ok(response),
            Sent::Failed(e) => Err(Error::Request(e)),
            Sent::Unsent(_) => Err(Error::Connect("the new connection closed at once".into())),
        }
    }

    async fn connect(&self, target: &Target) -> Result<Conn, Error> {
        let mut connector = self.0.connector.clone();
        let io = tokio::time::timeout(
            self.0.connect_timeout,
            tower_service::Service::call(&mut connector, target.uri.clone()),
        )
        .await
        .map_err(|_| Error::ConnectTimeout)?
        .map_err(|e| Error::Connect(e.to_string()))?;
        let (send, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(Conn::new(send, conn))
    }
}

enum Sent {
    Answered(Response),
    Failed(hyper::Error),
    Unsent(http::Request<Full<Bytes>>),
}

/// Sends `request` on `conn`, driving the connection until the response head arrives.
async fn send(
    mut conn: Conn,
    request: http::Request<Full<Bytes>>,
    pool: &Arc<Pool>,
    origin: &Arc<str>,
) -> Sent {
    let mut response = pin!(conn.send.try_send_request(request));
    let Conn { io, quiet, .. } = &mut conn;
    let result = poll_fn(|cx| {
        quiet.poll(cx, |cx| {
            if let Poll::Ready(r) = response.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            // The connection writes the request and reads the head here; when it ends,
            // the pending response learns why.
            let _ = io.drive(cx);
            response.as_mut().poll(cx)
        })
    })
    .await;
    match result {
        Ok(response) => {
            let (head, incoming) = response.into_parts();
            let body = Body::new(incoming, conn, pool.clone(), origin.clone());
            Sent::Answered(Response {
                status: head.status,
                headers: head.headers,
                body,
            })
        }
        Err(mut e) => match e.take_message() {
            Some(request) if conn.reused => Sent::Unsent(request),
            _ => Sent::Failed(e.into_error()),
        },
    }
}

#[cfg(test)]
mod tests;
