//! Sliding-window histograms for quantiles shown to people.
//!
//! A ring of [`BUCKETS`] histograms, each covering [`BUCKET_SECS`] seconds of virtual or
//! real time; a bucket is cleared when time comes round to it again. A view over the last
//! `n` buckets merges them (the current, partial bucket included), so the "1 m" view covers
//! between one and two minutes, the "5 m" view five to six, the "30 m" view the whole ring.
//! Buckets are allocated on first use, so an idle endpoint costs almost nothing.
//!
//! Each bucket is a [`LogHist`]: log-linear like an HDR histogram (32 sub-buckets per power
//! of two, so at most 1.6% relative error; exact below 64) but holding counts only between
//! the smallest and largest value seen. Latencies of one endpoint span a few powers of two, so
//! a bucket takes about a kilobyte where a dense hdrhistogram at two significant digits over
//! the same range takes 8.7 KiB: 200 busy endpoints × 3 windows × 30 buckets need about
//! 25 MB instead of 156 MB, which the 64 MB memory target could not hold.
//! Values are clamped into `1..=MAX_VALUE`.

/// Seconds per bucket.
pub(crate) const BUCKET_SECS: u64 = 60;
/// Buckets in the ring: 30 minutes.
pub(crate) const BUCKETS: usize = 30;
const BUCKET_NS: u64 = BUCKET_SECS * 1_000_000_000;
/// Largest value kept; larger values are recorded as this (one hour in milliseconds).
pub(crate) const MAX_VALUE: u64 = 3_600_000;

/// The views reported: (label, buckets merged).
pub(crate) const VIEWS: [(&str, usize); 3] = [("1m", 1), ("5m", 5), ("30m", BUCKETS)];

/// Quantiles of one view.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
}

/// Sub-buckets per power of two, as bits.
const SUB_BITS: u32 = 5;
const SUB_MASK: u64 = (1 << SUB_BITS) - 1;

/// The bucket of a value ≥ 1: its power of two and the next [`SUB_BITS`] bits below it.
fn index_of(v: u64) -> u32 {
    let bits = (v.max(1) as f64).to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as u32 - 1023;
    let sub = ((bits >> (52 - SUB_BITS)) & SUB_MASK) as u32;
    (exponent << SUB_BITS) | sub
}

/// The value a bucket stands for: the middle of its range, rounded.
fn value_of(index: u32) -> u64 {
    let exponent = index >> SUB_BITS;
    let sub = u64::from(index) & SUB_MASK;
    let scale = (1u64 << exponent) as f64 / (1u64 << SUB_BITS) as f64;
    let low = (1u64 << exponent) as f64 + sub as f64 * scale;
    (low + scale / 2.0).floor() as u64
}

/// A sparse log-linear histogram of positive integers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LogHist {
    /// The bucket index of `counts[0]`.
    first: u32,
    counts: Vec<u32>,
    total: u64,
}

impl LogHist {
    pub fn record(&mut self, v: u64) {
        self.add(index_of(v), 1);
    }

    fn add(&mut self, index: u32, n: u32) {
        if self.counts.is_empty() {
            self.first = index;
            self.counts.push(0);
        } else if index < self.first {
            let grow = (self.first - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.first = index;
        } else if (index - self.first) as usize >= self.counts.len() {
            let len = (index - self.first) as usize + 1;
            // Exactly what is needed: thousands of these live at once.
            self.counts.reserve_exact(len - self.counts.len());
            self.counts.resize(len, 0);
        }
        let c = &mut self.counts[(index - self.first) as usize];
        *c = c.saturating_add(n);
        self.total += u64::from(n);
    }

    pub(crate) fn merge(&mut self, other: &LogHist) {
        for (i, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add(other.first + i as u32, n);
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn clear(&mut self) {
        self.counts.clear();
        self.total = 0;
    }

    /// The value at quantile `q` (0..=1): of the bucket holding the `ceil(q · n)`th value.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return value_of(self.first + i as u32);
            }
        }
        self.counts
            .len()
            .checked_sub(1)
            .map_or(0, |i| value_of(self.first + i as u32))
    }

    /// Heap bytes held.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u32>()
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Which bucket-length period of time this bucket holds (`now / BUCKET_NS`).
    period: u64,
    hist: LogHist,
}

#[derive(Debug, Clone, Default)]
pub struct Window {
    ring: Vec<Option<Bucket>>,
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
                b.hist.clear();
                b.period = period;
            }
            None => {
                *slot = Some(Bucket {
                    period,
                    hist: LogHist::default(),
                })
            }
        }
        if let Some(b) = slot {
            b.hist.record(value.clamp(1, MAX_VALUE));
        }
    }

    /// Heap bytes held by the ring and its buckets.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Option<Bucket>>()
            + self
                .ring
                .iter()
                .flatten()
                .map(|b| b.hist.heap_bytes())
                .sum::<usize>()
    }

    /// Quantiles over the current bucket and the `buckets - 1` before it, or `None` when
    /// nothing was recorded in that span.
    pub fn quantiles(&self, now_ns: u64, buckets: usize) -> Option<Quantiles> {
        let period = now_ns / BUCKET_NS;
        let oldest = period.saturating_sub(buckets.saturating_sub(1) as u64);
        let mut merged: Option<LogHist> = None;
        for b in self.ring.iter().flatten() {
            if b.period < oldest || b.period > period || b.hist.is_empty() {
                continue;
            }
            match &mut merged {
                None => merged = Some(b.hist.clone()),
                Some(m) => m.merge(&b.hist),
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
        // 32 sub-buckets per power of two: within 1.6% of the exact order statistics.
        for (got, exact) in [(q.p50, 500.0), (q.p90, 900.0), (q.p99, 990.0)] {
            assert!(
                (got as f64 - exact).abs() / exact <= 0.016,
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
    fn small_values_are_exact_and_large_ones_within_a_percent() {
        for v in 1..64u64 {
            assert_eq!(value_of(index_of(v)), v);
        }
        for v in [64u64, 65, 129, 1000, 4_999, 65_537, 1_000_003, MAX_VALUE] {
            let got = value_of(index_of(v)) as f64;
            assert!((got - v as f64).abs() / v as f64 <= 0.016, "{v} -> {got}");
        }
    }

    #[test]
    fn a_bucket_is_small() {
        let mut h = LogHist::default();
        // A typical endpoint: first tokens between 80 ms and 2 s.
        for v in (80..2000).step_by(7) {
            h.record(v);
        }
        assert!(h.heap_bytes() < 1024, "{} bytes", h.heap_bytes());
    }

    #[test]
    fn a_full_window_stays_within_its_memory_budget() {
        // Thirty busy minutes of a typical endpoint: 10 requests a second, first tokens
        // log-normally spread around 300 ms (a factor of 2.5 at ±2σ), a tail to 20 s.
        let mut w = Window::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..(30 * 60 * 10u64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = if i % 997 == 0 {
                20_000.0
            } else {
                300.0 * (2.5f64).powf(4.0 * u - 2.0)
            };
            w.record(v as u64, i * 100_000_000);
        }
        let bytes = w.heap_bytes();
        // 200 endpoints × 3 windows of this size must stay well under the 64 MB target.
        assert!(bytes < 40 * 1024, "{bytes} bytes");
    }

    #[test]
    fn merging_equals_recording_together() {
        let (mut a, mut b, mut both) = (LogHist::default(), LogHist::default(), LogHist::default());
        for v in [5u64, 900, 70_000] {
            a.record(v);
            both.record(v);
        }
        for v in [1u64, 3_000_000, 901] {
            b.record(v);
            both.record(v);
        }
        a.merge(&b);
        assert_eq!(a.len(), 6);
        for q in [0.0, 0.2, 0.5, 0.8, 1.0] {
            assert_eq!(a.value_at_quantile(q), both.value_at_quantile(q), "{q}");
        }
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
