//! Statistics end to end: traffic through the router shows up in `/v1/endpoints` and
//! `/metrics`; a cancelled stream is counted once; learned state survives SIGKILL.

mod common;

use std::time::Duration;

use common::{get_json, hello, spec, Harness, Router, BIN};
use serde_json::{json, Value};
use switchyard::fake::{Behavior, FakeProvider, Fault};

fn find<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} in the report"))
}

async fn endpoints(h: &Harness) -> Value {
    h.client
        .get(h.url("/v1/endpoints"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn traffic_shows_up_in_endpoints_and_metrics() {
    let ttft = Duration::from_millis(100);
    let slow_start = Behavior {
        ttft,
        token_interval: Duration::from_millis(10),
        output_tokens: 11,
        ..Behavior::default()
    };
    let failing = Behavior {
        fault: Fault::Status(500),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("bad", failing, &[("m", 0.1, 0.1)]),
            spec("p", slow_start, &[("m", 1.0, 1.0)]),
        ],
        "[routing]\npolicy = \"cheapest\"\n",
    )
    .await;
    for stream in [false, true, false, true, false, true] {
        let mut req = hello("m");
        req["stream"] = json!(stream);
        let r = h.chat(req).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("whole answer");
    }
    let report = endpoints(&h).await;
    let p = find(&report, "p/m");
    assert_eq!(p["attempts"], 6);
    assert_eq!(p["successes"], 6);
    assert_eq!(p["in_flight"], 0);
    assert_eq!(p["output_tokens"], 66);
    // 6 answers × 11 completion tokens at 1 USD per million, plus the prompts at 1 USD per
    // million: exact, and the same in /metrics.
    let prompt: u64 = p["prompt_tokens"].as_u64().expect("tokens");
    let expected =
        rust_decimal::Decimal::from(prompt + 66) / rust_decimal::Decimal::from(1_000_000);
    assert_eq!(p["spend_usd"], expected.normalize().to_string());
    let bad = find(&report, "bad/m");
    assert_eq!(bad["failures"]["server_error"], 6);
    assert_eq!(bad["last_failure"]["class"], "server_error");
    assert_eq!(bad["success_rate"], 0.0);

    // TTFT is taken at the first token (100 ms in), not at the headers (sent at once);
    // three of the six requests streamed.
    let q = &p["ttft_ms"]["1m"];
    assert_eq!(q["count"], 3, "{q}");
    let ttft_p50 = q["p50"].as_f64().expect("p50");
    assert!(
        ttft_p50 >= 99.0,
        "ttft p50 {ttft_p50} ms is below the provider's 100 ms"
    );
    // The whole answer takes at least 10 more tokens × 10 ms.
    let total_p50 = p["total_ms"]["1m"]["p50"].as_f64().expect("p50");
    assert!(
        total_p50 >= 199.0 && total_p50 > ttft_p50,
        "total {total_p50} ttft {ttft_p50}"
    );
    let learned = p["learned"]["ttft_median_ms"].as_f64().expect("learned");
    assert!(learned >= 99.0 && learned < total_p50, "{learned}");
    // 10 tokens after the first in about 100 ms: at most 100 tokens/s.
    let speed = p["learned"]["tokens_per_s_median"].as_f64().expect("speed");
    assert!(speed > 0.0 && speed <= 101.0, "{speed}");

    let text = h.metrics().await;
    for line in [
        "switchyard_requests_total{outcome=\"answered\"} 6",
        "switchyard_attempts_total{endpoint=\"p/m\"} 6",
        "switchyard_attempts_total{endpoint=\"bad/m\"} 6",
        "switchyard_failures_total{endpoint=\"bad/m\",class=\"server_error\"} 6",
        "switchyard_tokens_total{endpoint=\"p/m\",kind=\"completion\"} 66",
        "switchyard_in_flight{endpoint=\"p/m\"} 0",
        "switchyard_ttft_seconds_count{endpoint=\"p/m\"} 3",
        "switchyard_attempt_duration_seconds_count{endpoint=\"p/m\"} 6",
        "switchyard_ttft_seconds_bucket{le=\"0.05\",endpoint=\"p/m\"} 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn a_stream_the_client_abandons_is_counted_once_as_cancelled() {
    let slow = Behavior {
        token_interval: Duration::from_millis(100),
        output_tokens: 100,
        ..Behavior::default()
    };
    let h = Harness::start(vec![spec("p", slow, &[("m", 1.0, 1.0)])], "").await;
    let mut req = hello("m");
    req["stream"] = json!(true);
    let mut r = h.chat(req).await;
    assert!(
        r.chunk().await.expect("readable").is_some(),
        "a first chunk arrives"
    );
    assert_eq!(find(&endpoints(&h).await, "p/m")["in_flight"], 1);
    drop(r);
    // The router notices the closed connection on its next write; wait for that, bounded.
    let mut report = endpoints(&h).await;
    for _ in 0..100 {
        if find(&report, "p/m")["in_flight"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        report = endpoints(&h).await;
    }
    let p = find(&report, "p/m");
    assert_eq!(p["in_flight"], 0, "{p}");
    assert_eq!(p["cancelled"], 1);
    assert_eq!(p["successes"], 0);
    assert_eq!(p["failures"]["mid_stream"], 0);
}

#[tokio::test]
async fn learned_state_survives_sigkill_up_to_the_last_save() {
    let fake = FakeProvider::start("p", Behavior::default())
        .await
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("pricing")).expect("mkdir");
    std::fs::write(
        dir.path().join("pricing/p.toml"),
        "provider = \"p\"\neffective = \"2026-11-01\"\nsource = \"test\"\n[models.m]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n",
    )
    .expect("sheet");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n[stats]\nflush_interval = \"100ms\"\n\
             [[providers]]\nname = \"p\"\nbase_url = \"{}\"\n",
            fake.base_url()
        ),
    )
    .expect("config");
    let client = reqwest::Client::new();

    let router = Router::spawn(&config, &[], &[]);
    let url = router.url.clone();
    for _ in 0..7 {
        let r = client
            .post(format!("{url}/v1/chat/completions"))
            .json(&hello("m"))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
    }
    // Wait (bounded) until a save covering all seven attempts reached the disk, then kill.
    let mut saved = 0;
    for _ in 0..200 {
        saved = get_json(&client, format!("{url}/healthz")).await["state"]["saved_attempts"]
            .as_u64()
            .unwrap_or(0);
        if saved >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(saved, 7, "a save never covered the traffic");
    router.kill();

    let router = Router::spawn(&config, &[], &[]);
    let url = router.url.clone();
    let report = get_json(&client, format!("{url}/v1/endpoints")).await;
    let p = find(&report, "p/m");
    assert_eq!(p["attempts"], 7, "{p}");
    assert_eq!(p["successes"], 7);
    assert!(
        p["learned"]["total_median_ms"].as_f64().is_some(),
        "the latency fit is restored: {p}"
    );
    // A graceful stop saves too, and `switchyard stats` reads what it left.
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&hello("m"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    router.stop();
    let out = std::process::Command::new(BIN)
        .args(["stats", "--json", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .expect("stats runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(find(&stored, "p/m")["attempts"], 8);

    // --reset-state forgets deliberately.
    let router = Router::spawn(&config, &["--reset-state"], &[]);
    let report = get_json(&client, format!("{}/v1/endpoints", router.url)).await;
    assert_eq!(find(&report, "p/m")["attempts"], 0);
    router.kill();
}

/// A change of regime shows where people look: `/v1/endpoints`, the dashboard's data, and the
/// decision record of a request made after it (`changes_before` per candidate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detected_change_shows_in_endpoints_dashboard_and_decisions() {
    let fast = Behavior {
        ttft: Duration::from_millis(10),
        output_tokens: 2,
        ..Behavior::default()
    };
    let h = Harness::start(vec![spec("p", fast.clone(), &[("m", 1.0, 1.0)])], "").await;
    let stream = |h: &Harness| {
        let mut body = hello("m");
        body["stream"] = json!(true);
        h.client
            .post(h.url("/v1/chat/completions"))
            .json(&body)
            .send()
    };
    for _ in 0..200 {
        stream(&h)
            .await
            .expect("answer")
            .text()
            .await
            .expect("body");
    }
    // The detector compares its 5-second window with an older regime: let the warm-up age
    // out of the window (to a sixteenth) while the long fit keeps it.
    tokio::time::sleep(Duration::from_secs(20)).await;
    h.fake("p").set_behavior(Behavior {
        ttft: Duration::from_millis(150),
        ..fast
    });
    let mut detected = false;
    for _ in 0..30 {
        stream(&h)
            .await
            .expect("answer")
            .text()
            .await
            .expect("body");
        let report = endpoints(&h).await;
        if find(&report, "p/m")["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            detected = true;
            break;
        }
    }
    assert!(
        detected,
        "a TTFT ×15 went unnoticed for 30 requests: {}",
        find(&endpoints(&h).await, "p/m")
    );
    let report = endpoints(&h).await;
    let changes = find(&report, "p/m")["changes"]
        .as_array()
        .expect("a list")
        .clone();
    let ttft = changes
        .iter()
        .find(|c| c["stream"] == "ttft")
        .unwrap_or_else(|| panic!("a TTFT change among {changes:?}"));
    assert!(ttft["new"].as_f64() > ttft["old"].as_f64(), "{ttft}");
    let dashboard = get_json(&h.client, h.url("/dashboard/data")).await;
    let row = &dashboard["endpoints"][0];
    assert!(
        !row["changes"].as_array().expect("a list").is_empty(),
        "{row}"
    );
    let r = stream(&h).await.expect("answer");
    let id = common::header(&r, "x-request-id").to_owned();
    r.text().await.expect("body");
    let decision = get_json(&h.client, h.url(&format!("/v1/decisions/{id}"))).await;
    let before = decision["candidates"][0]["changes_before"]
        .as_array()
        .expect("a list")
        .clone();
    assert!(before.iter().any(|c| c["stream"] == "ttft"), "{decision}");
}
