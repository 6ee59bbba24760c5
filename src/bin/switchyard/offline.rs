//! `switchyard simulate` and `switchyard stats`: what runs without serving.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard::config::{Config, StatsConfig};
use switchyard::stats::store::Store;
use switchyard::stats::{HalfLife, HalfLives};

use crate::print_lines;

pub fn print_stats(state_dir: &Path, config: Option<&Path>, json: bool) -> Result<(), String> {
    let (stats_config, feedback) = match config {
        Some(path) => {
            let c = Config::load(path).map_err(|e| e.to_string())?;
            (c.stats, c.feedback)
        }
        None => (StatsConfig::default(), Default::default()),
    };
    let hl = HalfLives {
        latency: HalfLife::new(stats_config.latency_half_life),
        outcome: HalfLife::new(stats_config.outcome_half_life),
        quality: HalfLife::new(feedback.quality_half_life),
    };
    if !state_dir.join("stats.sled").exists() {
        return Err(format!("{}: no saved statistics here", state_dir.display()));
    }
    let store = Store::open(state_dir, false).map_err(|e| e.to_string())?;
    let Some((snapshot, saved_at)) = store.load().map_err(|e| e.to_string())? else {
        return Err(format!("{}: nothing saved yet", state_dir.display()));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let age_ms = now.saturating_sub(saved_at);
    let (report, table) =
        switchyard::admin::endpoints::stored_report(snapshot, age_ms * 1_000_000, hl);
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        print_lines([text]);
    } else {
        let age = age_ms as f64 / 1000.0;
        let head = format!("saved {age:.0} s ago in {}\n", store.path().display());
        print_lines(std::iter::once(head).chain(table.lines().map(str::to_owned)));
    }
    Ok(())
}

/// `switchyard simulate FILE --replicas N`: one router vs N alone vs N sharing.
pub fn compare_fleets(
    file: &Path,
    policies: &[String],
    seed: Option<u64>,
    replicas: u32,
    json: bool,
) -> Result<(), String> {
    use switchyard::sim::{
        self,
        scenario::{Scenario, SimPolicy},
    };
    let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    if !(2..=64).contains(&replicas) {
        return Err("--replicas: must be between 2 and 64".into());
    }
    let policy = match policies.first() {
        Some(p) => SimPolicy::parse(p).ok_or_else(|| format!("--policy: unknown policy `{p}`"))?,
        None => SimPolicy::Thompson,
    };
    let report = sim::compare_fleets(&scenario, policy, replicas, seed.unwrap_or(scenario.seed));
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        print_lines([text]);
    } else {
        print_lines(report.table().lines().map(str::to_owned));
    }
    Ok(())
}

/// How `switchyard simulate FILE` reports.
pub struct SimOptions<'a> {
    pub json: bool,
    /// Where report.json, traffic.csv and charts go.
    pub out: Option<&'a Path>,
    /// Overrides the scenario's `[hedge] enabled`.
    pub hedge: Option<bool>,
    /// Where the first policy's run is written as a request log.
    pub log_out: Option<&'a Path>,
}

pub fn simulate(
    file: &Path,
    policies: &[String],
    seed: Option<u64>,
    options: SimOptions<'_>,
) -> Result<(), String> {
    let SimOptions {
        json,
        out,
        hedge,
        log_out,
    } = options;
    use switchyard::sim::{
        self,
        scenario::{Scenario, SimPolicy},
    };
    let mut scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    if let Some(on) = hedge {
        scenario.hedge.enabled = on;
    }
    let chosen = policies
        .iter()
        .map(|p| SimPolicy::parse(p).ok_or_else(|| format!("--policy: unknown policy `{p}`")))
        .collect::<Result<Vec<_>, _>>()?;
    // A progress bar for people; scripts and CI (stderr not a terminal) see nothing.
    let runs = if chosen.is_empty() {
        scenario.policies.len().max(3)
    } else {
        chosen.len()
    } + 1;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(runs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} policies simulated, last: {msg}",
        )
        .expect("a valid template"),
    );
    let report = sim::simulate_with_progress(
        &scenario,
        &chosen,
        seed.unwrap_or(scenario.seed),
        |name, _| {
            bar.set_message(name.to_owned());
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    if let Some(path) = log_out {
        write_log(&scenario, &chosen, seed.unwrap_or(scenario.seed), path)?;
    }
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("report.json"), &text)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("traffic.csv"), sim::report::traffic_csv(&report))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        sim::plot::write_charts(&report, dir).map_err(|e| format!("charts: {e}"))?;
    }
    if json {
        print_lines([text]);
    } else {
        print_lines(report.table().lines().map(str::to_owned));
    }
    Ok(())
}

/// `switchyard simulate --replay LOG`: the logged traffic under each policy.
pub fn replay(
    log: &Path,
    policies: &[String],
    seed: Option<u64>,
    json: bool,
    hedge: Option<bool>,
    window: std::time::Duration,
) -> Result<(), String> {
    use switchyard::sim::{replay::Replay, scenario::SimPolicy};
    let (lines, skipped) =
        switchyard::log::read::lines_of(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut replay =
        Replay::from_lines(&lines, window).map_err(|e| format!("{}: {e}", log.display()))?;
    if skipped > 0 {
        replay
            .notes
            .push(format!("{skipped} unreadable lines skipped"));
    }
    if let Some(on) = hedge {
        replay.scenario.hedge.enabled = on;
    }
    let mut chosen = policies
        .iter()
        .map(|p| SimPolicy::parse(p).ok_or_else(|| format!("--policy: unknown policy `{p}`")))
        .collect::<Result<Vec<_>, _>>()?;
    if chosen.is_empty() {
        chosen = vec![
            SimPolicy::Thompson,
            SimPolicy::RoundRobin,
            SimPolicy::Cheapest,
        ];
    }
    let report = replay.run(&chosen, seed.unwrap_or(1));
    if json {
        print_lines([serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?]);
    } else {
        print_lines(report.table().lines().map(str::to_owned));
    }
    Ok(())
}

/// Writes the first policy's run (thompson without one) as a request log.
fn write_log(
    scenario: &switchyard::sim::scenario::Scenario,
    chosen: &[switchyard::sim::scenario::SimPolicy],
    seed: u64,
    path: &Path,
) -> Result<(), String> {
    use std::io::Write;
    use switchyard::sim::{engine, replay::log_of, scenario::SimPolicy};
    let policy = chosen
        .first()
        .or(scenario.policies.first())
        .copied()
        .unwrap_or(SimPolicy::Thompson);
    let reqs = engine::requests(scenario, seed);
    let (done, traces) = engine::run_traced(scenario, policy, &reqs, seed);
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(at)?);
    for line in log_of(scenario, &reqs, &done, &traces) {
        serde_json::to_writer(&mut w, &line).map_err(|e| e.to_string())?;
        w.write_all(b"\n").map_err(at)?;
    }
    w.flush().map_err(at)?;
    eprintln!(
        "{} requests of {} written to {}",
        reqs.len(),
        policy.name(),
        path.display()
    );
    Ok(())
}
