//! Client keys, their limits, load shedding and slow clients, against the real router.

mod common;

use std::time::Duration;

use common::{header, hello, spec, Harness};
use serde_json::Value;
use switchyard::auth::{digest, to_hex};
use switchyard::fake::Behavior;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_A: &str = "sy-test-key-alpha";
const KEY_B: &str = "sy-test-key-beta";

fn clients(extra_a: &str) -> String {
    format!(
        "\n[[clients]]\nname = \"alpha\"\nkey_sha256 = \"{}\"\n{extra_a}\n[[clients]]\nname = \"beta\"\nkey_sha256 = \"{}\"\n",
        to_hex(&digest(KEY_A.as_bytes())),
        to_hex(&digest(KEY_B.as_bytes())),
    )
}

async fn start(server: &str, extra_a: &str, behavior: Behavior) -> Harness {
    let config = format!("{server}{}", clients(extra_a));
    Harness::start(vec![spec("p", behavior, &[("m", 1.0, 2.0)])], &config).await
}

async fn chat_as(h: &Harness, key: Option<&str>) -> reqwest::Response {
    let mut r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .json(&hello("m"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.expect("router answers")
}

#[tokio::test]
async fn requests_need_a_configured_key() {
    let h = start("", "", Behavior::default()).await;
    for key in [None, Some("sy-wrong"), Some(&KEY_A[..KEY_A.len() - 1])] {
        let r = chat_as(&h, key).await;
        assert_eq!(r.status(), 401, "{key:?}");
        let v: Value = r.json().await.expect("JSON");
        assert_eq!(v["error"]["code"], "invalid_api_key", "{v}");
    }
    let r = h
        .client
        .get(h.url("/v1/models"))
        .send()
        .await
        .expect("models");
    assert_eq!(r.status(), 401);
    let r = h
        .client
        .get(h.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200, "health checks need no key");
    assert_eq!(h.fake("p").requests(), 0, "nothing went upstream");

    let r = chat_as(&h, Some(KEY_A)).await;
    assert_eq!(r.status(), 200);
    // The client's key is the router's business, never the provider's.
    assert_eq!(h.fake("p").last_authorization(), None);
    let id = header(&r, "x-request-id").to_owned();

    // A key sees its own decisions only.
    let get = |key: &'static str| {
        h.client
            .get(h.url(&format!("/v1/decisions/{id}")))
            .bearer_auth(key)
            .send()
    };
    let mine: Value = get(KEY_A)
        .await
        .expect("decision")
        .json()
        .await
        .expect("JSON");
    assert_eq!(mine["client"], "alpha");
    assert_eq!(get(KEY_B).await.expect("decision").status(), 404);

    let metrics = h.metrics().await;
    assert!(
        metrics.contains("switchyard_requests_total{outcome=\"unauthorized\"} 4"),
        "{metrics}"
    );
    assert!(!metrics.contains(KEY_A), "a key in the metrics");
}

#[tokio::test]
async fn a_rate_limit_refuses_with_retry_after_and_spares_other_keys() {
    let h = start(
        "",
        "requests_per_minute = 60\nburst = 2",
        Behavior::default(),
    )
    .await;
    assert_eq!(chat_as(&h, Some(KEY_A)).await.status(), 200);
    assert_eq!(chat_as(&h, Some(KEY_A)).await.status(), 200);
    let r = chat_as(&h, Some(KEY_A)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "1");
    let v: Value = r.json().await.expect("JSON");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .expect("text")
        .contains("alpha"));
    // Another key has its own budget (none here).
    for _ in 0..4 {
        assert_eq!(chat_as(&h, Some(KEY_B)).await.status(), 200);
    }
    assert_eq!(
        h.fake("p").requests(),
        6,
        "the refused request never went upstream"
    );
}

#[tokio::test]
async fn a_spend_limit_stops_a_key_once_reached() {
    // One answer of the fake costs about $0.00003 at $1/$2 per million tokens.
    let h = start("", "spend_limit_usd = \"0.00001\"", Behavior::default()).await;
    let r = chat_as(&h, Some(KEY_A)).await;
    assert_eq!(
        r.status(),
        200,
        "the request that crosses the limit completes"
    );
    let r = chat_as(&h, Some(KEY_A)).await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").parse::<u64>().expect("seconds") <= 86_400);
    let v: Value = r.json().await.expect("JSON");
    assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
    assert_eq!(v["error"]["code"], "spend_limit_reached", "{v}");
    assert_eq!(chat_as(&h, Some(KEY_B)).await.status(), 200);
    assert_eq!(h.fake("p").requests(), 2);
}

#[tokio::test]
async fn beyond_the_concurrency_cap_requests_are_shed_then_served_again() {
    let slow = Behavior {
        ttft: Duration::from_millis(600),
        ..Behavior::default()
    };
    let h = start("max_concurrent_requests = 2\n", "", slow).await;
    let sends = (0..4).map(|_| chat_as(&h, Some(KEY_A)));
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let shed = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!((ok, shed), (2, 2), "{statuses:?}");
    // The permits came back with the answers.
    assert_eq!(chat_as(&h, Some(KEY_A)).await.status(), 200);
    let text = h.metrics().await;
    assert!(
        text.contains("switchyard_requests_total{outcome=\"shed\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stream_holds_its_permit_until_its_last_byte() {
    let slow_stream = Behavior {
        token_interval: Duration::from_millis(100),
        output_tokens: 6,
        ..Behavior::default()
    };
    let h = start("max_concurrent_requests = 1\n", "", slow_stream).await;
    let mut body = hello("m");
    body["stream"] = true.into();
    let stream = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(KEY_A)
        .json(&body)
        .send()
        .await
        .expect("stream starts");
    assert_eq!(stream.status(), 200);
    // Headers are out, the body is still coming: the one permit is taken.
    assert_eq!(chat_as(&h, Some(KEY_B)).await.status(), 503);
    let text = stream.text().await.expect("stream ends");
    assert!(text.contains("[DONE]"));
    // The permit returns with the body's end (give the server a moment to drop it).
    let mut status = 0;
    for _ in 0..50 {
        status = chat_as(&h, Some(KEY_B)).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let h = start(
        "header_read_timeout = \"300ms\"\nbody_read_timeout = \"300ms\"\n",
        "",
        Behavior::default(),
    )
    .await;
    // Headers that never finish: the connection is closed.
    let mut tcp = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open");

    // A body that never finishes: 408.
    let mut tcp = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY_A}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\""
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}
