//! Scenario parsing: what is accepted, and errors that name the field.
use super::*;

const GOOD: &str = r#"
name = "t"
duration = "1m"
[workload]
rate_rps = 5
prompt_tokens = { median = 800, sigma = 0.8 }
output_tokens = { median = 250, sigma = 0.7 }
route = { max_latency_ms = 1500, latency_metric = "ttft" }
[[endpoints]]
id = "a/m"
input_per_mtok = 0.5
output_per_mtok = 1.0
ttft = { median_ms = 200, sigma = 0.3 }
tokens_per_s = 100
[[events]]
at = "10s"
until = "20s"
endpoint = "a/m"
set = { error_rate = 1.0 }
"#;

#[test]
fn a_good_scenario_parses() {
    let s = Scenario::parse(GOOD).expect("valid");
    assert_eq!(s.duration, Duration::from_secs(60));
    assert_eq!(s.events[0].until, Some(Duration::from_secs(20)));
}

#[test]
fn errors_name_the_field() {
    for (from, to, field) in [
        ("rate_rps = 5", "rate_rps = 0", "workload.rate_rps"),
        (
            "tokens_per_s = 100",
            "tokens_per_s = 0",
            "endpoints[0].tokens_per_s",
        ),
        (
            "endpoint = \"a/m\"",
            "endpoint = \"b/m\"",
            "events[0].endpoint",
        ),
        ("until = \"20s\"", "until = \"5s\"", "events[0].until"),
        ("id = \"a/m\"", "id = \"am\"", "endpoints[0].id"),
        (
            "set = { error_rate = 1.0 }",
            "set = { error_rate = 2.0 }",
            "events[0].set.error_rate",
        ),
        (
            "set = { error_rate = 1.0 }",
            "set = { eror_rate = 1.0 }",
            "eror_rate",
        ),
        ("duration = \"1m\"", "duration = \"soon\"", "duration"),
        (
            "tokens_per_s = 100",
            "tokens_per_s = 100\ntrue_quality = 1.2",
            "endpoints[0].true_quality",
        ),
        (
            "rate_rps = 5",
            "rate_rps = 5\nfeedback_rate = -0.1",
            "workload.feedback_rate",
        ),
        (
            "rate_rps = 5",
            "rate_rps = 5\nsessions = { concurrent = 0, turns = 3 }",
            "workload.sessions",
        ),
        (
            "tokens_per_s = 100",
            "tokens_per_s = 100\nsupports = [\"telepathy\"]",
            "telepathy",
        ),
        (
            "tokens_per_s = 100",
            "tokens_per_s = 100\ncached_input_per_mtok = 2.0",
            "endpoints[0].cached_input_per_mtok",
        ),
    ] {
        let err = Scenario::parse(&GOOD.replace(from, to)).unwrap_err();
        assert!(err.to_string().contains(field), "{to}: {err}");
    }
}
