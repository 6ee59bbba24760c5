//! SVG charts of a simulation report (plotters): cumulative cost regret against the oracle
//! over time, traffic share per endpoint over time for each policy, and first-token latency
//! quantiles per policy.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::report::Report;

/// A chart that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    /// What the drawing backend said (its error type is generic over the backend).
    pub message: String,
}

/// Inside one chart: the backend's words, given a path by [`write_charts`].
type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Writes the charts into `dir`; returns their paths.
pub fn write_charts(report: &Report, dir: &Path) -> std::result::Result<Vec<PathBuf>, PlotError> {
    let at = |path: PathBuf| move |message: String| PlotError { path, message };
    let regret_path = dir.join("regret.svg");
    let latency_path = dir.join("latency.svg");
    let mut written = vec![
        regret(report, &regret_path).map_err(at(regret_path.clone()))?,
        latency(report, &latency_path).map_err(at(latency_path.clone()))?,
    ];
    for p in &report.policies {
        let path = dir.join(format!("traffic-{}.svg", p.policy));
        written.push(traffic(report, &p.policy, &path).map_err(at(path.clone()))?);
    }
    Ok(written)
}

/// A line chart with a legend: `series` are (label, points).
fn line_chart(
    path: &Path,
    title: &str,
    axes: (&str, &str),
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    series: Vec<(String, Vec<(f64, f64)>)>,
) -> Result<PathBuf> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(axes.0)
        .y_desc(axes.1)
        .draw()
        .map_err(err)?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(path.to_owned())
}

fn regret(report: &Report, path: &Path) -> Result<PathBuf> {
    let oracle = report
        .policies
        .iter()
        .find(|p| p.policy == "oracle")
        .ok_or("the report has no oracle")?;
    let series: Vec<(String, Vec<(f64, f64)>)> = report
        .policies
        .iter()
        .filter(|p| p.policy != "oracle")
        .map(|p| {
            let mut total = 0.0;
            let points = p
                .cost_by_minute
                .iter()
                .zip(&oracle.cost_by_minute)
                .enumerate()
                .map(|(m, (c, o))| {
                    total += c - o;
                    ((m + 1) as f64, total)
                })
                .collect();
            (p.policy.to_owned(), points)
        })
        .collect();
    let minutes = oracle.cost_by_minute.len() as f64;
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold((0.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let title = format!(
        "{}: cumulative cost regret vs the oracle (USD)",
        report.scenario
    );
    line_chart(
        path,
        &title,
        ("minute", "USD above the oracle"),
        0.0..minutes,
        (lo - pad)..(hi + pad),
        series,
    )
}

fn traffic(report: &Report, policy: &str, path: &Path) -> Result<PathBuf> {
    let p = report
        .policies
        .iter()
        .find(|p| p.policy == policy)
        .ok_or("unknown policy")?;
    let mut endpoints: Vec<&str> = p
        .traffic
        .iter()
        .flat_map(|row| row.iter().map(|(e, _)| e.as_str()))
        .collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let series = endpoints
        .iter()
        .map(|e| {
            let points = p
                .traffic
                .iter()
                .enumerate()
                .map(|(m, row)| {
                    (
                        m as f64 + 0.5,
                        row.iter().find(|(id, _)| id == e).map_or(0.0, |(_, s)| *s),
                    )
                })
                .collect();
            ((*e).to_owned(), points)
        })
        .collect();
    let title = format!("{}: traffic share per endpoint, {policy}", report.scenario);
    line_chart(
        path,
        &title,
        ("minute", "share of first attempts"),
        0.0..p.traffic.len() as f64,
        0.0..1.05,
        series,
    )
}

fn latency(report: &Report, path: &Path) -> Result<PathBuf> {
    let rows: Vec<(&str, [f64; 3])> = report
        .policies
        .iter()
        .filter_map(|p| {
            p.ttft_ms
                .as_ref()
                .map(|q| (p.policy.as_str(), [q.p50, q.p95, q.p99]))
        })
        .collect();
    let top = rows
        .iter()
        .flat_map(|(_, q)| q.iter().copied())
        .fold(1.0f64, f64::max)
        * 1.1;
    let names: Vec<String> = rows.iter().map(|(n, _)| (*n).to_owned()).collect();
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: time to first token per policy (ms)", report.scenario),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..rows.len() as f64 - 0.5, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("ms")
        .draw()
        .map_err(err)?;
    for (k, label) in ["p50", "p95", "p99"].iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let offset = (k as f64 - 1.0) * 0.25;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, (_, q))| {
                let x = i as f64 + offset;
                Rectangle::new([(x - 0.1, 0.0), (x + 0.1, q[k])], color.filled())
            }))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(path.to_owned())
}
