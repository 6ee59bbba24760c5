//! The twin test: one small scenario run live (the real router in front of fake providers)
//! and in the simulator gives the same traffic shares within a few points, because both run
//! the same request parser, planner, attempt machine, policy and statistics.
//!
//! Two endpoints of one model, 50 ms each, one ten times cheaper; 20 requests a second. From
//! 8 s to 16 s the cheap one answers every request with 429 and `Retry-After: 4`: the attempt
//! machine rests it for four seconds after each, the failure break lengthens the rests, and
//! only the probes in between start there. Half-lives are short so the run takes 30 s.
//!
//! What happens after the 429s stop is left out of the comparison on purpose: whether the
//! cheap endpoint is won back within the run depends on one posterior draw after a break of
//! up to 30 s, so it varies from run to run in both worlds (0 to 100% over 20 simulated seeds).

mod common;

use std::time::Duration;

use common::{header, hello, spec, Harness};
use switchyard::fake::{Behavior, Fault};
use switchyard::sim::engine;
use switchyard::sim::scenario::{Scenario, SimPolicy};

const RATE: f64 = 20.0;
const LIMITED_FROM_S: f64 = 8.0;
const LIMITED_UNTIL_S: f64 = 16.0;
const END_S: f64 = 20.0;

const SCENARIO: &str = r#"
name = "twin"
seed = 11
duration = "20s"
policies = ["thompson"]
max_attempts = 3
outcome_half_life = "3s"
latency_half_life = "30s"
[workload]
rate_rps = 20
model = "m"
stream = false
prompt_tokens = { median = 12, sigma = 0.0 }
output_tokens = { median = 8, sigma = 0.0 }
[[endpoints]]
id = "cheap/m"
input_per_mtok = 0.1
output_per_mtok = 0.1
ttft = { median_ms = 50, sigma = 0.0 }
tokens_per_s = 100000
retry_after = "4s"
[[endpoints]]
id = "dear/m"
input_per_mtok = 1.0
output_per_mtok = 1.0
ttft = { median_ms = 50, sigma = 0.0 }
tokens_per_s = 100000
[[events]]
at = "8s"
until = "16s"
endpoint = "cheap/m"
set = { error_rate = 1.0, error_status = 429 }
"#;

/// `(arrival in seconds, first attempt at the cheap endpoint)` per request.
type Points = Vec<(f64, bool)>;

/// Share of first attempts at the cheap endpoint among requests arriving in `[from, until)`.
fn share(points: &Points, from: f64, until: f64) -> f64 {
    let window: Vec<bool> = points
        .iter()
        .filter(|(t, _)| (from..until).contains(t))
        .map(|(_, cheap)| *cheap)
        .collect();
    window.iter().filter(|c| **c).count() as f64 / window.len().max(1) as f64
}

fn simulated(seed: u64) -> Points {
    let s = Scenario::parse(SCENARIO).expect("scenario");
    let cheap = s.endpoints.iter().position(|e| e.id == "cheap/m");
    let reqs = engine::requests(&s, seed);
    engine::run(&s, SimPolicy::Thompson, &reqs, seed)
        .iter()
        .map(|d| (d.at_ns as f64 / 1e9, d.first == cheap))
        .collect()
}

async fn live() -> Points {
    let fast = Behavior {
        ttft: Duration::from_millis(50),
        ..Behavior::default()
    };
    let h = Harness::start(
        vec![
            spec("cheap", fast.clone(), &[("m", 0.1, 0.1)]),
            spec("dear", fast.clone(), &[("m", 1.0, 1.0)]),
        ],
        "[stats]\noutcome_half_life = \"3s\"\nlatency_half_life = \"30s\"\n[routing]\nseed = 11\n",
    )
    .await;
    let h = std::sync::Arc::new(h);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut tasks = Vec::new();
    let mut limited = false;
    loop {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t >= END_S {
            break;
        }
        let should_limit = (LIMITED_FROM_S..LIMITED_UNTIL_S).contains(&t);
        if should_limit != limited {
            limited = should_limit;
            let fault = if limited {
                Fault::RateLimited { retry_after_s: 4 }
            } else {
                Fault::None
            };
            h.fake("cheap").set_behavior(Behavior {
                fault,
                ..fast.clone()
            });
        }
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let r = h.chat(hello("m")).await;
            let status = r.status().as_u16();
            let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
            let attempts: u32 = header(&r, "x-switchyard-attempts").parse().unwrap_or(0);
            // Two endpoints, only the cheap one fails: a second attempt means the first was
            // at the cheap one.
            (t, status, endpoint == "cheap/m" || attempts >= 2)
        }));
    }
    let mut points = Vec::new();
    for task in tasks {
        let (t, status, first_cheap) = task.await.expect("request task");
        assert_eq!(
            status, 200,
            "every request is answered (the dear one takes over)"
        );
        points.push((t, first_cheap));
    }
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_simulated_traffic_shares_agree() {
    let live = live().await;
    let phases = [
        ("healthy", 2.0, LIMITED_FROM_S),
        ("429 with Retry-After", LIMITED_FROM_S, LIMITED_UNTIL_S),
    ];
    // The simulator's expectation: the mean over seeds (each seed is one possible run).
    let runs: Vec<Points> = (1..=10).map(simulated).collect();
    let mean = |from: f64, until: f64| {
        runs.iter().map(|p| share(p, from, until)).sum::<f64>() / runs.len() as f64
    };
    let mut report = String::new();
    for (name, from, until) in phases {
        report.push_str(&format!(
            "{name}: cheap share live {:.1}%, simulated {:.1}% (mean of 10 seeds)\n",
            share(&live, from, until) * 100.0,
            mean(from, until) * 100.0
        ));
    }
    eprintln!("{report}");
    for (name, from, until) in phases {
        let (l, s) = (share(&live, from, until), mean(from, until));
        assert!(
            (l - s).abs() <= 0.015,
            "{name}: live and simulated shares differ by more than 1.5 points\n{report}"
        );
    }
    // The shares say something: the cheap endpoint takes the traffic while healthy and only
    // the probes between rests while it answers 429. (Without the rests, in a simulator that
    // ignored Retry-After, the failure break alone leaves it about 4.5% of the 429 phase.)
    assert!(mean(2.0, LIMITED_FROM_S) > 0.95, "{report}");
    assert!(mean(LIMITED_FROM_S, LIMITED_UNTIL_S) < 0.15, "{report}");
}

/// End to end: a provider switched to failing half its requests loses most of its traffic
/// within seconds while a healthy, slightly dearer one exists. (Here the failure break
/// acts first: three failures in a row rest the endpoint before the change detector's window
/// holds enough outcomes; `/v1/endpoints` lists whatever changes were detected.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brownout_loses_its_traffic_within_seconds() {
    let fast = Behavior {
        ttft: Duration::from_millis(20),
        ..Behavior::default()
    };
    let h = std::sync::Arc::new(
        Harness::start(
            vec![
                spec("cheap", fast.clone(), &[("m", 1.0, 1.0)]),
                spec("dear", fast.clone(), &[("m", 1.2, 1.2)]),
            ],
            "[routing]\nseed = 3\n",
        )
        .await,
    );
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(40));
    let mut tasks = Vec::new();
    let mut browned = false;
    loop {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t >= 20.0 {
            break;
        }
        if t >= 8.0 && !browned {
            browned = true;
            h.fake("cheap").set_behavior(Behavior {
                error_rate: 0.5,
                ..fast.clone()
            });
        }
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let r = h.chat(hello("m")).await;
            let endpoint = header(&r, "x-switchyard-endpoint").to_owned();
            let attempts: u32 = header(&r, "x-switchyard-attempts").parse().unwrap_or(0);
            (
                t,
                r.status().as_u16(),
                endpoint == "cheap/m" || attempts >= 2,
            )
        }));
    }
    let mut points = Vec::new();
    for task in tasks {
        let (t, status, first_cheap) = task.await.expect("request task");
        assert_eq!(status, 200);
        points.push((t, first_cheap));
    }
    let before = share(&points, 2.0, 8.0);
    // "Loses most of its traffic within a few seconds": judged 6–12 s after the brownout
    // began. (The share 4–8 s after was 0.26 in one CI run and 0.49 on a machine also
    // compiling: it still moves then, too early to judge on a loaded machine.)
    let after = share(&points, 14.0, 20.0);
    eprintln!(
        "first attempts on the browned-out provider: {before:.2} before, {after:.2} 6–12 s after"
    );
    assert!(before > 0.8, "healthy and cheaper: {before}");
    assert!(
        after < 0.5,
        "6–12 s after the brownout began it still took {after}"
    );
    let report = common::get_json(&h.client, h.url("/v1/endpoints")).await;
    let cheap = report["data"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "cheap/m")
        .expect("cheap/m");
    assert!(cheap["changes"].is_array(), "{cheap}");
}
