//! The client against raw HTTP/1 servers on port 0, written byte by byte so that what one
//! read brings in, and when a connection closes, is under the test's control.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Client, Error, Settings, Target};

fn client() -> Client {
    Client::new(
        Settings {
            connect_timeout: Duration::from_secs(5),
            max_idle_per_origin: 8,
            idle_timeout: Duration::from_secs(90),
        },
        "switchyard-test",
    )
}

/// Reads one request (head and `content-length` body) from `tcp`; `None` at end of stream.
async fn read_request(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("a length"));
            if seen.len() >= end + 4 + length {
                return Some(seen);
            }
        }
        let n = tcp.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A server that answers each request on a connection with `reply(n)` (n counts requests
/// over all connections), then closes the connection if `close_after` says so. Returns its
/// URL and the number of connections it accepted.
async fn server(
    reply: impl Fn(usize) -> Vec<Vec<u8>> + Send + Sync + 'static,
    close_after: bool,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1/chat", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let reply = Arc::new(reply);
    let requests = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let (reply, requests) = (reply.clone(), requests.clone());
            tokio::spawn(async move {
                while read_request(&mut tcp).await.is_some() {
                    let n = requests.fetch_add(1, Ordering::SeqCst);
                    for write in reply(n) {
                        if tcp.write_all(&write).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    if close_after {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

fn json_reply(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn post(client: &Client, url: &str) -> Result<super::Response, Error> {
    let target = Target::parse(url).expect("a url");
    client
        .post(&target, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await
}

#[tokio::test]
async fn a_connection_is_reused_after_its_answer_was_read() {
    let (url, accepted) = server(|n| vec![json_reply(&format!("{{\"n\":{n}}}"))], false).await;
    let client = client();
    for n in 0..3 {
        let response = post(&client, &url).await.expect("an answer");
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.expect("a body");
        assert_eq!(body, format!("{{\"n\":{n}}}").as_bytes());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_not_reused() {
    let (url, accepted) = server(|_| vec![json_reply("{}")], true).await;
    let client = client();
    for _ in 0..3 {
        let response = post(&client, &url).await.expect("an answer");
        assert_eq!(response.bytes().await.expect("a body"), "{}");
        // The server's close reaches the socket before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_body_dropped_unread_closes_its_connection() {
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let (url, accepted) = server(
        move |_| {
            vec![
                head.clone(),
                b"5\r\nhello\r\n".to_vec(),
                b"0\r\n\r\n".to_vec(),
            ]
        },
        false,
    )
    .await;
    let client = client();
    let response = post(&client, &url).await.expect("an answer");
    let mut body = response.into_body();
    assert_eq!(body.next().await.expect("a chunk").expect("ok"), "hello");
    drop(body);
    let response = post(&client, &url).await.expect("an answer");
    assert_eq!(response.bytes().await.expect("a body"), "hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn chunks_that_arrived_together_are_handed_over_together() {
    let events: Vec<String> = (0..3).map(|i| format!("data: {i}\n\n")).collect();
    let chunked: String = events
        .iter()
        .map(|e| format!("{:x}\r\n{e}\r\n", e.len()))
        .collect();
    let late = format!(
        "{:x}\r\ndata: late\n\n\r\n0\r\n\r\n",
        "data: late\n\n".len()
    );
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    let writes = vec![format!("{head}{chunked}").into_bytes(), late.into_bytes()];
    let (url, _) = server(move |_| writes.clone(), false).await;
    let response = post(&client(), &url).await.expect("an answer");
    let parts: Vec<Bytes> = response
        .into_body()
        .map(|r| r.expect("a chunk"))
        .collect()
        .await;
    // Three HTTP chunks in one write come out as one; the one written later on its own.
    assert_eq!(
        parts,
        vec![Bytes::from(events.concat()), Bytes::from("data: late\n\n")]
    );
}

#[tokio::test]
async fn failures_say_where_they_happened() {
    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/x", free.local_addr().expect("addr"));
    drop(free);
    assert!(matches!(
        post(&client(), &url).await,
        Err(Error::Connect(_))
    ));

    // Closed before any answer.
    let (url, _) = server(|_| vec![], true).await;
    assert!(matches!(
        post(&client(), &url).await,
        Err(Error::Request(_))
    ));

    // Closed mid-body.
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\"".to_vec();
    let (url, _) = server(move |_| vec![head.clone()], true).await;
    let response = post(&client(), &url).await.expect("a head");
    assert!(matches!(response.bytes().await, Err(Error::Body(_))));
}

#[test]
fn targets_are_absolute_http_urls() {
    let t = Target::parse("https://api.example.com:8443/v1/chat/completions").expect("ok");
    assert_eq!(&*t.origin, "https://api.example.com:8443");
    assert_eq!(t.host, "api.example.com:8443");
    assert_eq!(t.uri().path(), "/v1/chat/completions");
    for bad in ["/v1/chat", "ftp://x/y", "http://", "not a url"] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
}

/// On a multi-threaded runtime the socket's wake may come from another thread, while the
/// request's task is polling: [`super::quiet::Quiet`] must pass it on, or the body stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_stream_is_read_to_its_end_on_a_multi_threaded_runtime() {
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let mut writes = vec![head];
    for i in 0..10 {
        let event = format!("data: {i:02}\n\n");
        writes.push(format!("{:x}\r\n{event}\r\n", event.len()).into_bytes());
    }
    writes.push(b"0\r\n\r\n".to_vec());
    let (url, _) = server(move |_| writes.clone(), false).await;
    let client = client();
    for _ in 0..3 {
        let response = post(&client, &url).await.expect("an answer");
        let body = tokio::time::timeout(Duration::from_secs(20), response.bytes())
            .await
            .expect("the body ends")
            .expect("a body");
        let expected: String = (0..10).map(|i| format!("data: {i:02}\n\n")).collect();
        assert_eq!(body, expected.as_bytes());
    }
}
