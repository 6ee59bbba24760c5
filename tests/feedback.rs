//! Quality learned from client feedback, end to end: `POST /v1/feedback` scores for answers
//! of an endpoint whose sheet overstates its quality move `min_quality` traffic away; scores
//! for unknown, foreign or already scored requests are refused; `/v1/endpoints` and
//! `/metrics` show declared and learned quality.

mod common;

use common::{header, spec, Harness, Spec};
use serde_json::{json, Value};
use switchyard::fake::Behavior;

const TEAM_A: &str = "sy-team-a-key";
const TEAM_B: &str = "sy-team-b-key";
const ADMIN: &str = "sy-admin-token";

fn rated(name: &'static str, price: f64, quality: f64) -> Spec {
    Spec {
        quality: Some(quality),
        ..spec(name, Behavior::default(), &[("m", price, price)])
    }
}

/// One chat request by `key` asking for quality 0.7: (request id, endpoint).
async fn ask(h: &Harness, key: &str) -> (String, String) {
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hello"}],
            "route": {"min_quality": 0.7},
        }))
        .send()
        .await
        .expect("router answers");
    assert_eq!(r.status(), 200);
    let ids = (
        header(&r, "x-request-id").to_owned(),
        header(&r, "x-switchyard-endpoint").to_owned(),
    );
    r.bytes().await.expect("whole answer");
    ids
}

async fn feedback(h: &Harness, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = h.client.post(h.url("/v1/feedback")).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.expect("router answers");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

fn quality_of(report: &Value, id: &str) -> Value {
    common::endpoint_in(report, id)["quality"].clone()
}

#[tokio::test]
async fn poor_scores_move_min_quality_traffic_and_only_the_requests_own_client_scores() {
    let keys = [
        ("TEAM_A_KEY", TEAM_A),
        ("TEAM_B_KEY", TEAM_B),
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN),
    ];
    let h = Harness::start_with_env(
        // The cheap endpoint's sheet says 0.9; its answers are poor.
        vec![rated("cheap", 0.1, 0.9), rated("good", 1.0, 0.8)],
        "[routing]\nseed = 5\n\n[[clients]]\nname = \"team-a\"\nkey_env = \"TEAM_A_KEY\"\n\n\
         [[clients]]\nname = \"team-b\"\nkey_env = \"TEAM_B_KEY\"\n",
        move |var| {
            keys.iter()
                .find(|(v, _)| *v == var)
                .map(|(_, k)| k.to_string())
        },
    )
    .await;
    let mut answered = Vec::new();
    for _ in 0..40 {
        answered.push(ask(&h, TEAM_A).await);
    }
    let at_cheap = answered.iter().filter(|(_, e)| e == "cheap/m").count();
    assert!(
        at_cheap >= 38,
        "believing the sheet: {at_cheap} of 40 at cheap/m"
    );
    let (b_id, _) = ask(&h, TEAM_B).await;

    // Refusals: no key, another client's request, an unknown id, a bad body.
    let (a_id, _) = answered[0].clone();
    let good = |id: &str| json!({"request_id": id, "good": true});
    assert_eq!(feedback(&h, None, good(&a_id)).await.0, 401);
    let (status, v) = feedback(&h, Some(TEAM_B), good(&a_id)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("request_not_found")),
        "{v}"
    );
    let (status, _) = feedback(&h, Some(TEAM_A), good("req_0123456789abcdef")).await;
    assert_eq!(status, 404);
    let (status, v) = feedback(&h, Some(TEAM_A), json!({"request_id": a_id, "score": 2})).await;
    assert_eq!(
        (status, v["error"]["param"].as_str()),
        (400, Some("score")),
        "{v}"
    );

    // Team A scores its answers: cheap/m's poorly, the rest well. Each once.
    for (id, endpoint) in &answered {
        let score = if endpoint == "cheap/m" { 0.1 } else { 0.9 };
        let (status, v) =
            feedback(&h, Some(TEAM_A), json!({"request_id": id, "score": score})).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["endpoint"], json!(endpoint));
    }
    let (status, v) = feedback(&h, Some(TEAM_A), good(&a_id)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("already_scored")),
        "{v}"
    );
    // The admin may score any client's request.
    assert_eq!(feedback(&h, Some(ADMIN), good(&b_id)).await.0, 200);

    let report: Value = h
        .client
        .get(h.url("/v1/endpoints"))
        .bearer_auth(TEAM_A)
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("json");
    let cheap = quality_of(&report, "cheap/m");
    eprintln!("cheap/m quality after feedback: {cheap}");
    assert_eq!(cheap["declared"], json!(0.9));
    let learned = cheap["learned"].as_f64().expect("learned from feedback");
    assert!(learned < 0.45, "{cheap}");
    // Traffic asking for 0.7 moves off it.
    let mut at_good = 0;
    let mut last = String::new();
    for _ in 0..20 {
        let (id, endpoint) = ask(&h, TEAM_A).await;
        at_good += usize::from(endpoint == "good/m");
        last = id;
    }
    eprintln!("after feedback: {at_good} of 20 at good/m");
    assert!(at_good >= 19, "{at_good} of 20 at good/m");
    // The decision record shows the quality the ranking used: a draw below the bar.
    let decision: Value = h
        .client
        .get(h.url(&format!("/v1/decisions/{last}")))
        .bearer_auth(TEAM_A)
        .send()
        .await
        .expect("decision")
        .json()
        .await
        .expect("json");
    let candidates = decision["candidates"].as_array().expect("candidates");
    let cheap = candidates
        .iter()
        .find(|c| c["endpoint"] == "cheap/m")
        .expect("cheap/m ranked");
    assert_eq!(cheap["quality"]["declared"], json!(0.9), "{cheap}");
    let used = cheap["quality"]["used"].as_f64().expect("a draw");
    assert!(used < 0.7, "{cheap}");

    let metrics = h.metrics().await;
    let line = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in /metrics"))
            .to_owned()
    };
    line("switchyard_endpoint_quality{endpoint=\"cheap/m\",kind=\"learned\"} 0.");
    line("switchyard_endpoint_quality{endpoint=\"cheap/m\",kind=\"declared\"} 0.9");
    let accepted = line("switchyard_feedback_total{result=\"accepted\"}");
    assert!(accepted.ends_with(" 41"), "{accepted}");
    let refused = line("switchyard_feedback_total{result=\"refused\"}");
    assert!(refused.ends_with(" 3"), "{refused}");
}
