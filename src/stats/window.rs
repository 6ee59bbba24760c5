//! Sliding-window histograms for quantiles shown to people.
//!
//! A ring of [`BUCKETS`] hdrhistograms, each covering [`BUCKET_SECS`] seconds of virtual or
//! real time; a bucket is cleared when time comes round to it again. A view over the last
//! `n` buckets merges them (the current, partial bucket included), so the "1 m" view covers
//! between one and two minutes, the "5 m" view five to six, the "30 m" view the whole ring.
//! Buckets are allocated on first use, so an idle endpoint costs almost nothing.
//! Precision is two significant digits (1%); values are clamped into range.

use hdrhistogram::Histogram;

/// Seconds per bucket.
pub const BUCKET_SECS: u64 = 60;
/// Buckets in the ring: 30 minutes.
pub const BUCKETS: usize = 30;
const BUCKET_NS: u64 = BUCKET_SECS * 1_000_000_000;
/// Largest value kept; larger values are recorded as this (one hour in milliseconds).
pub const MAX_VALUE: u64 = 3_600_000;

/// The views reported: (label, buckets merged).
pub const VIEWS: [(&str, usize); 3] = [("1m", 1), ("5m", 5), ("30m", BUCKETS)];

/// Quantiles of one view.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Which bucket-length period of time this bucket holds (`now / BUCKET_NS`).
    period: u64,
    hist: Histogram<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Window {
    ring: Vec<Option<Bucket>>,
}

fn new_hist() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_VALUE, 2).expect("static bounds are valid")
}

impl Window {
    pub fn record(&mut self, value: u64, now_ns: u64) {
        if self.ring.is_empty() {
            self.ring = vec![None; BUCKETS];
        }
        let period = now_ns / BUCKET_NS;
        let slot = &mut self.ring[(period % BUCKETS as u64) as usize];
        match slot {
            Some(b) if b.period == period => {}
            Some(b) if b.period > period => return, // a racing, older timestamp: drop it
            Some(b) => {
                b.hist.reset();
                b.period = period;
            }
            None => {
                *slot = Some(Bucket {
                    period,
                    hist: new_hist(),
                })
            }
        }
        if let Some(b) = slot {
            b.hist.saturating_record(value.clamp(1, MAX_VALUE));
        }
    }

    /// Quantiles over the current bucket and the `buckets - 1` before it, or `None` when
    /// nothing was recorded in that span.
    pub fn quantiles(&self, now_ns: u64, buckets: usize) -> Option<Quantiles> {
        let period = now_ns / BUCKET_NS;
        let oldest = period.saturating_sub(buckets.saturating_sub(1) as u64);
        let mut merged: Option<Histogram<u32>> = None;
        for b in self.ring.iter().flatten() {
            if b.period < oldest || b.period > period || b.hist.is_empty() {
                continue;
            }
            match &mut merged {
                None => merged = Some(b.hist.clone()),
                Some(m) => {
                    // Same bounds on every bucket, so adding cannot fail.
                    let _ = m.add(&b.hist);
                }
            }
        }
        let h = merged?;
        Some(Quantiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = BUCKET_NS;

    #[test]
    fn quantiles_match_a_known_sample() {
        let mut w = Window::default();
        for v in 1..=1000 {
            w.record(v, 5);
        }
        let q = w.quantiles(5, 1).expect("recorded");
        assert_eq!(q.count, 1000);
        // Two significant digits: within 1% of the exact order statistics.
        for (got, exact) in [(q.p50, 500.0), (q.p90, 900.0), (q.p99, 990.0)] {
            assert!(
                (got as f64 - exact).abs() / exact <= 0.01,
                "{got} vs {exact}"
            );
        }
    }

    #[test]
    fn windows_rotate_and_forget() {
        let mut w = Window::default();
        w.record(100, 0);
        w.record(300, 3 * MIN);
        assert_eq!(w.quantiles(3 * MIN, 1).expect("recent").count, 1);
        assert_eq!(w.quantiles(3 * MIN, 5).expect("both").count, 2);
        // Past the whole ring, everything is gone, even before the slots are reused.
        assert_eq!(w.quantiles(40 * MIN, BUCKETS), None);
        // Reusing the slot of minute 0 at minute 30 clears what minute 0 held.
        w.record(50, 30 * MIN);
        let q = w.quantiles(30 * MIN, BUCKETS).expect("recorded");
        assert_eq!(q.count, 2, "minute 3 and minute 30 remain");
        assert_eq!(q.p50, 50);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut w = Window::default();
        w.record(0, 0);
        w.record(u64::MAX, 0);
        let q = w.quantiles(0, 1).expect("recorded");
        assert_eq!(q.count, 2);
        assert!(q.p99 >= MAX_VALUE - MAX_VALUE / 100);
    }
}
