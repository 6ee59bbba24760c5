//! Replay: a simulated run written as a request log and replayed reproduces the run's
//! outcome, and ranks the other policies as the simulator does on the scenario itself.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{run_bin, run_ok};

use switchyard::sim::{
    self, engine,
    replay::{log_of, Replay},
    report::PolicyReport,
    scenario::{Scenario, SimPolicy},
};

fn load(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("simulations")
            .join(name),
    )
    .expect("a shipped scenario")
}

fn row<'a>(rows: &'a [PolicyReport], name: &str) -> &'a PolicyReport {
    rows.iter()
        .find(|p| p.policy == name)
        .unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn a_replayed_log_reproduces_its_run_and_ranks_policies_as_the_simulator() {
    for name in ["steady.toml", "brownout.toml"] {
        let s = load(name);
        let reqs = engine::requests(&s, s.seed);
        let (done, traces) = engine::run_traced(&s, SimPolicy::Thompson, &reqs, s.seed);
        let lines = log_of(&s, &reqs, &done, &traces);
        let replay = Replay::from_lines(&lines, Duration::from_secs(60)).expect("replays");
        let policies = [
            SimPolicy::Thompson,
            SimPolicy::RoundRobin,
            SimPolicy::Cheapest,
        ];
        let replayed = replay.run(&policies, 1);
        let direct = sim::simulate(&s, &policies, s.seed);
        eprintln!("{name}\n{}\n{}", direct.table(), replayed.table());
        let (d, r) = (&direct.policies, &replayed.report.policies);

        // What the log recorded is the run itself.
        let (ran, recorded) = (row(d, "thompson"), row(r, "recorded"));
        assert!((ran.cost_per_1k_usd - recorded.cost_per_1k_usd).abs() < 1e-9);
        assert_eq!(ran.slo_attainment, recorded.slo_attainment);
        // Replayed under the policy that recorded it: within 5% of its cost per request and
        // 2 points of its SLO attainment.
        let again = row(r, "thompson");
        let cost_gap = (again.cost_per_1k_usd / ran.cost_per_1k_usd - 1.0).abs();
        let slo_gap = (again.slo_attainment - ran.slo_attainment).abs();
        assert!(
            cost_gap < 0.05,
            "{name}: cost off by {:.1}%",
            cost_gap * 100.0
        );
        assert!(
            slo_gap < 0.02,
            "{name}: SLO off by {:.1} points",
            slo_gap * 100.0
        );
        // The other policies rank as on the scenario itself, by cost and by SLO.
        let order = |rows: &[PolicyReport], key: fn(&PolicyReport) -> f64| {
            let mut names: Vec<(f64, String)> = policies
                .iter()
                .map(|p| (key(row(rows, p.name())), p.name().to_owned()))
                .collect();
            names.sort_by(|a, b| a.0.total_cmp(&b.0));
            names.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
        };
        assert_eq!(
            order(d, |p| p.cost_per_1k_usd),
            order(r, |p| p.cost_per_1k_usd),
            "{name}"
        );
        assert_eq!(
            order(d, |p| p.slo_attainment),
            order(r, |p| p.slo_attainment),
            "{name}"
        );
        // Every endpoint was tried often enough to be fitted; the report says how often.
        assert!(replayed
            .coverage
            .iter()
            .all(|c| !c.extrapolated && c.attempts > 0));
    }
}

#[test]
fn an_endpoint_the_log_barely_saw_is_reported_as_extrapolated() {
    let s = load("steady.toml");
    let reqs = engine::requests(&s, s.seed);
    // Cheapest sends everything to the cheapest endpoint, its failures to the next: the
    // two dearer ones are never observed.
    let (done, traces) = engine::run_traced(&s, SimPolicy::Cheapest, &reqs, s.seed);
    let lines = log_of(&s, &reqs, &done, &traces);
    let replayed = Replay::from_lines(&lines, Duration::from_secs(60))
        .expect("replays")
        .run(&[SimPolicy::Thompson], 1);
    let extrapolated: Vec<&str> = replayed
        .coverage
        .iter()
        .filter(|c| c.extrapolated)
        .map(|c| c.endpoint.as_str())
        .collect();
    assert_eq!(
        extrapolated,
        ["together/llama-3.3-70b", "fireworks/llama-3.3-70b"]
    );
    assert!(replayed.table().contains("EXTRAPOLATED"));
}

#[test]
fn the_command_line_writes_a_log_and_replays_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.jsonl");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/outage.toml");
    let (log, scenario) = (
        log.to_str().expect("a utf-8 path"),
        scenario.to_str().expect("a utf-8 path"),
    );
    run_ok([
        "simulate",
        scenario,
        "--policy",
        "thompson",
        "--log-out",
        log,
    ]);
    let args = [
        "--replay", log, "--policy", "thompson", "--policy", "cheapest",
    ];
    let table = run_ok(std::iter::once("simulate").chain(args));
    for row in [
        "recorded",
        "thompson",
        "cheapest",
        "oracle",
        "what the log observed",
    ] {
        assert!(table.contains(row), "{row} in:\n{table}");
    }
    // Not a log: a clear refusal.
    let out = run_bin(["simulate", "--replay", scenario]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no prices"));
}
