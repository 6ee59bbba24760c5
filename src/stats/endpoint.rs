//! Everything kept about one endpoint: lifetime totals, decayed statistics for the selector,
//! sliding windows for people, cumulative buckets for Prometheus.

use serde::{Deserialize, Serialize};

use super::decay::{Decayed, HalfLife, LogStats, LogSummary};
use super::outcome::{FailureClass, Success};
use super::prefill::{PrefillStats, PrefillSummary};
use super::published::ViewInputs;
use super::quality::QualityStats;
use super::window::Window;

/// Half-lives of the decayed statistics.
#[derive(Debug, Clone, Copy)]
pub struct HalfLives {
    /// For latency and speed fits: long enough to smooth noise, short enough to follow drift.
    pub latency: HalfLife,
    /// For success and failure counts: short, so an outage is noticed within seconds.
    pub outcome: HalfLife,
    /// For client feedback on quality: long, scores are few and quality changes rarely.
    pub quality: HalfLife,
}

/// Lifetime counts since the state was created (persisted; never decayed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub attempts: u64,
    pub successes: u64,
    #[serde(deserialize_with = "super::outcome::per_class")]
    pub failures: [u64; FailureClass::COUNT],
    /// Attempts abandoned because the client went away.
    pub cancelled: u64,
    /// Attempts whose request the provider refused as the client's own fault (a 4xx such as
    /// 400 or 422): neither a success nor a failure of the endpoint.
    #[serde(default)]
    pub rejected: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Money spent on answered attempts, exact.
    #[serde(default)]
    pub spend_usd: rust_decimal::Decimal,
}

/// The decayed statistics the selector learns from (persisted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    pub successes: Decayed,
    #[serde(deserialize_with = "super::outcome::per_class")]
    pub failures: [Decayed; FailureClass::COUNT],
    /// All classes together: what the selector reads, one decay instead of seven.
    #[serde(default)]
    pub failed: Decayed,
    pub ttft_ms: LogStats,
    pub total_ms: LogStats,
    pub tokens_per_s: LogStats,
    /// How long attempts that failed before their first byte took to fail, decayed with
    /// change detection's short half-life (5 s): failure times change with the failure's
    /// kind (fast 5xx, slow timeouts), and they matter only when failures are frequent,
    /// which is when a short fit has plenty of them. The selector prices a fallback's delay
    /// with it.
    #[serde(default)]
    pub failure_ms: LogStats,
    /// TTFT against prompt size (see [`super::prefill`]), with the latency half-life.
    #[serde(default)]
    pub prefill: PrefillStats,
    /// Client feedback on the endpoint's answers (see [`super::quality`]), with the quality
    /// half-life.
    #[serde(default)]
    pub quality: QualityStats,
    /// Prompt tokens the provider served from its cache, and all prompt tokens (decayed with
    /// the latency half-life): the share conversation affinity expects to save.
    #[serde(default)]
    pub cached_tokens: Decayed,
    #[serde(default)]
    pub prompt_tokens: Decayed,
}

/// The logarithms of an answer's latencies, taken once for the several fits each enters
/// (the learned ones, the change detector's window, the prompt-size relation).
#[derive(Debug, Clone, Copy)]
struct LnLatency {
    total: f64,
    ttft: Option<f64>,
}

impl LnLatency {
    fn of(s: &Success) -> LnLatency {
        LnLatency {
            total: s.total_ms.ln(),
            ttft: s.ttft_ms.map(f64::ln),
        }
    }
}

impl Learned {
    /// Learns from an answered attempt (the linear part of a record: what a fleet's
    /// snapshots add up; change detection may re-base it afterwards).
    pub fn success(&mut self, s: &Success, now_ns: u64, hl: &HalfLives) {
        self.success_ln(s, LnLatency::of(s), now_ns, hl);
    }

    /// [`Self::success`] with the latencies' logarithms already taken.
    fn success_ln(&mut self, s: &Success, ln: LnLatency, now_ns: u64, hl: &HalfLives) {
        self.successes.add(1.0, now_ns, hl.outcome);
        // Dated together, successes and failures are read with one decay factor.
        self.failed.redate(now_ns, hl.outcome);
        self.total_ms.add_ln(ln.total, now_ns, hl.latency);
        if let Some(y) = ln.ttft {
            self.ttft_ms.add_ln(y, now_ns, hl.latency);
            if let Some(tokens) = s.prompt_tokens {
                self.prefill.add_ln(tokens as f64, y, now_ns, hl.latency);
            }
        }
        if let Some(speed) = s.tokens_per_s() {
            self.tokens_per_s.add(speed, now_ns, hl.latency);
        }
    }

    /// Learns from a failed attempt; `took_ms` is how long it took to fail, for a failure
    /// before the first byte (one a fallback follows).
    pub fn failure(
        &mut self,
        class: FailureClass,
        took_ms: Option<f64>,
        now_ns: u64,
        hl: &HalfLives,
    ) {
        self.failures[class.index()].add(1.0, now_ns, hl.outcome);
        self.failed.add(1.0, now_ns, hl.outcome);
        self.successes.redate(now_ns, hl.outcome);
        if let Some(ms) = took_ms {
            // A failure is at least a millisecond: a zero would have no logarithm.
            self.failure_ms
                .add(ms.max(1.0), now_ns, super::change::recent_hl());
        }
    }
}

/// Upper bounds, in seconds, of the Prometheus latency buckets (the last is +Inf).
pub(crate) const PROM_BOUNDS: [f64; 12] = [
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    f64::MAX,
];

/// A cumulative latency histogram in Prometheus' fixed buckets.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromHistogram {
    pub counts: [u64; PROM_BOUNDS.len()],
    pub sum_s: f64,
    pub count: u64,
}

impl PromHistogram {
    fn observe(&mut self, seconds: f64) {
        let i = PROM_BOUNDS.partition_point(|&b| b < seconds);
        self.counts[i.min(PROM_BOUNDS.len() - 1)] += 1;
        self.sum_s += seconds;
        self.count += 1;
    }
}

/// The last few latencies, newest last: LiteLLM's `lowest-latency` averages these.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recent {
    values: [f32; RECENT],
    len: u8,
    next: u8,
}

/// How many recent latencies are kept (LiteLLM averages the last 10).
pub(crate) const RECENT: usize = 10;

impl Recent {
    fn push(&mut self, v: f64) {
        self.values[self.next as usize] = v as f32;
        self.next = ((self.next as usize + 1) % RECENT) as u8;
        self.len = (self.len + 1).min(RECENT as u8);
    }

    /// Mean of the kept values, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.len > 0).then(|| {
            let n = self.len as usize;
            self.values[..n].iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64
        })
    }
}

/// Peak-EWMA of latency (Finagle, tower, Linkerd): jumps up to a slower observation at once,
/// decays towards faster ones with time constant `tau`, and — as tower's does on every read —
/// decays towards zero while nothing is observed, so an idle endpoint looks cheaper with time
/// and is tried again. Reading does not change it: the decay to `now` is computed, and
/// equals tower's mutating reads (exp(-a)·exp(-b) = exp(-(a+b))).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeakEwma {
    value_ms: f64,
    at_ns: u64,
}

impl PeakEwma {
    fn observe(&mut self, rtt_ms: f64, now_ns: u64, tau_ns: f64) {
        // Compared with the estimate as a read at `now_ns` sees it (decayed while idle).
        let current = self.at(now_ns).unwrap_or(0.0);
        if current == 0.0 || rtt_ms > current {
            self.value_ms = rtt_ms;
        } else {
            let dt = now_ns.saturating_sub(self.at_ns) as f64;
            let w = (-dt / tau_ns).exp();
            self.value_ms = current * w + rtt_ms * (1.0 - w);
        }
        self.at_ns = self.at_ns.max(now_ns);
    }

    /// The estimate at `now_ns`, decayed since the last observation; `None` before any.
    pub fn at(&self, now_ns: u64) -> Option<f64> {
        if self.value_ms <= 0.0 {
            return None;
        }
        let idle = now_ns.saturating_sub(self.at_ns) as f64;
        Some(self.value_ms * (-idle / PEAK_EWMA_TAU_NS).exp())
    }
}

/// Time constant of the peak-EWMA (tower's default is 10 s).
const PEAK_EWMA_TAU_NS: f64 = 10e9;
/// A failed attempt counts as an attempt this slow: a fast error must not look like a fast
/// endpoint (tower counts the error's round trip; a load-biaser, as in Linkerd, penalises it).
/// Ten seconds keeps a failing endpoint behind healthy ones for tens of seconds of decay,
/// then lets it be probed again.
pub(crate) const PEAK_EWMA_FAILURE_MS: f64 = 10_000.0;

/// One endpoint's state. Kept behind a short mutex, never held across an await.
#[derive(Debug, Clone, Default)]
pub struct EndpointStats {
    pub totals: Totals,
    pub learned: Learned,
    pub in_flight: u32,
    pub last_failure: Option<(u64, FailureClass)>,
    /// Failures since the last success: the failure-rate break looks at this.
    pub consecutive_failures: u32,
    /// The provider asked for no requests before this time (`Retry-After`).
    pub rest_until_ns: u64,
    pub recent_ttft_ms: Recent,
    pub recent_total_ms: Recent,
    pub peak_ewma: PeakEwma,
    pub ttft_window: Window,
    pub total_window: Window,
    pub speed_window: Window,
    pub prom_ttft: PromHistogram,
    pub prom_total: PromHistogram,
    /// The short window change detection tests against the learned fits.
    pub recent: super::change::Window,
    /// The changes detected, the last few.
    pub changes: super::change::Changes,
    /// What the fleet's other replicas learned (see [`super::peers`]); `None` alone.
    pub peers: Option<super::peers::PeerFigures>,
}

/// What the selector reads about an endpoint at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EndpointView {
    /// Decayed successes.
    pub successes: f64,
    /// Decayed failures of every class.
    pub failures: f64,
    pub ttft_ms: Option<LogSummary>,
    pub total_ms: Option<LogSummary>,
    pub tokens_per_s: Option<LogSummary>,
    pub in_flight: u32,
    /// Time since the last failure.
    pub since_failure_ns: Option<u64>,
    /// Lifetime attempts (0 = never tried).
    pub attempts: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Time left of a rest the provider asked for with `Retry-After` (0 = none).
    pub retry_after_ns: u64,
    /// The log-normal fit of the time failed attempts took to fail, as stored (its mean and
    /// variance are what is read, and decay does not move them; read only where needed).
    pub failure_ms: LogStats,
    /// TTFT against prompt size, `None` before any first token with a known prompt size.
    pub prefill: Option<PrefillSummary>,
    /// Client feedback, as stored (read only when a request asks about quality).
    pub quality: QualityStats,
}

impl EndpointStats {
    pub fn begin(&mut self) {
        self.totals.attempts += 1;
        self.in_flight += 1;
    }

    fn end(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn success(&mut self, s: &Success, now_ns: u64, hl: &HalfLives) {
        self.end();
        self.totals.successes += 1;
        self.consecutive_failures = 0;
        self.recent_total_ms.push(s.total_ms);
        self.peak_ewma
            .observe(s.ttft_ms.unwrap_or(s.total_ms), now_ns, PEAK_EWMA_TAU_NS);
        self.totals.prompt_tokens += s.prompt_tokens.unwrap_or(0);
        self.totals.output_tokens += s.output_tokens.unwrap_or(0);
        if let Some(cost) = s.cost_usd {
            self.totals.spend_usd += cost;
        }
        let ln = LnLatency::of(s);
        self.learned.success_ln(s, ln, now_ns, hl);
        self.total_window.record(s.total_ms.round() as u64, now_ns);
        self.prom_total.observe(s.total_ms / 1000.0);
        if let Some(ttft) = s.ttft_ms {
            self.recent_ttft_ms.push(ttft);
            self.ttft_window.record(ttft.round() as u64, now_ns);
            self.prom_ttft.observe(ttft / 1000.0);
        }
        if let Some(speed) = s.tokens_per_s() {
            self.speed_window.record(speed.round() as u64, now_ns);
        }
        let recent = super::change::recent_hl();
        self.recent.outcome(true, now_ns);
        self.recent.total_ms.add_ln(ln.total, now_ns, recent);
        if let Some(y) = ln.ttft {
            self.recent.ttft_ms.add_ln(y, now_ns, recent);
        }
        self.detect(now_ns, hl, true, true);
    }

    /// Tests the short window against the learned fits and re-bases a fit whose stream
    /// changed (see [`super::change`]); `ok` is the outcome just recorded, `latency` whether
    /// it brought latencies.
    fn detect(&mut self, now_ns: u64, hl: &HalfLives, ok: bool, latency: bool) {
        use super::change::{latency_shift, outcome_shift, recent_hl, Change, Stream};
        let recent = self.recent.counts(now_ns);
        let l = &mut self.learned;
        let long = Decayed::get_pair(&l.successes, &l.failed, now_ns, hl.outcome);
        if long.0 + long.1 > 0.0 {
            self.recent.locate(ok, long.1 / (long.0 + long.1));
        }
        let located = (self.recent.rise.since(), self.recent.fall.since());
        if let Some((old, new, regime)) = outcome_shift(recent, long, located) {
            // Re-based on the new regime: the outcomes since the CUSUM of the shift's
            // direction left zero (the window itself when they are too few).
            self.recent.rise.reset();
            self.recent.fall.reset();
            let scale = if long.1 > 0.0 { regime.1 / long.1 } else { 0.0 };
            for f in &mut l.failures {
                *f = Decayed::at(f.get(now_ns, hl.outcome) * scale, now_ns);
            }
            l.successes = Decayed::at(regime.0, now_ns);
            l.failed = Decayed::at(regime.1, now_ns);
            self.changes.push(Change {
                at_ns: now_ns,
                stream: Stream::Failures,
                old,
                new,
            });
        }
        if !latency {
            return;
        }
        let rhl = recent_hl();
        for (stream, window, fit) in [
            (Stream::Ttft, &self.recent.ttft_ms, &mut l.ttft_ms),
            (Stream::Total, &self.recent.total_ms, &mut l.total_ms),
        ] {
            let (Some(r), Some(f)) = (window.summary(now_ns, rhl), fit.summary(now_ns, hl.latency))
            else {
                continue;
            };
            if let Some((old, new)) = latency_shift(r, f) {
                *fit = *window;
                if stream == Stream::Ttft {
                    // The prompt-size relation keeps its slope and moves to the new level,
                    // with the window's weight (no window of its own: one fit less to keep
                    // up on every answer).
                    l.prefill = l.prefill.moved_to(r.weight, r.mean, now_ns);
                }
                self.changes.push(Change {
                    at_ns: now_ns,
                    stream,
                    old,
                    new,
                });
            }
        }
    }

    pub fn failure(&mut self, class: FailureClass, now_ns: u64, hl: &HalfLives) {
        self.failure_after(class, None, now_ns, hl);
    }

    /// A failure; `took_ms` is how long the attempt took to fail, for one before the first
    /// byte (see [`Learned::failure`]).
    pub fn failure_after(
        &mut self,
        class: FailureClass,
        took_ms: Option<f64>,
        now_ns: u64,
        hl: &HalfLives,
    ) {
        self.end();
        self.totals.failures[class.index()] += 1;
        self.learned.failure(class, took_ms, now_ns, hl);
        self.peak_ewma
            .observe(PEAK_EWMA_FAILURE_MS, now_ns, PEAK_EWMA_TAU_NS);
        self.last_failure = Some((now_ns, class));
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.recent.outcome(false, now_ns);
        self.detect(now_ns, hl, false, false);
    }

    pub fn cancelled(&mut self) {
        self.end();
        self.totals.cancelled += 1;
    }

    /// A refusal for a parameter the model does not support: counted (totals and the class's
    /// decayed count) but not a failure the selector reads, nor one of a burst.
    pub(crate) fn unsupported(&mut self, now_ns: u64, hl: &HalfLives) {
        self.end();
        let class = FailureClass::Unsupported.index();
        self.totals.failures[class] += 1;
        self.learned.failures[class].add(1.0, now_ns, hl.outcome);
    }

    pub(crate) fn rejected(&mut self) {
        self.end();
        self.totals.rejected += 1;
    }

    /// What the selector reads: this replica's own figures and its peers'.
    pub fn view(&self, now_ns: u64, hl: &HalfLives) -> EndpointView {
        ViewInputs::of(self, hl).view(now_ns, hl)
    }

    /// This replica's own figures only.
    pub fn local_view(&self, now_ns: u64, hl: &HalfLives) -> EndpointView {
        ViewInputs::own(self).view(now_ns, hl)
    }

    /// The learned state as of `now_ns`, for saving.
    pub(crate) fn settled(&self, now_ns: u64, hl: &HalfLives) -> Learned {
        let l = &self.learned;
        Learned {
            successes: l.successes.settled(now_ns, hl.outcome),
            failures: l.failures.map(|f| f.settled(now_ns, hl.outcome)),
            failed: l.failed.settled(now_ns, hl.outcome),
            ttft_ms: l.ttft_ms.settled(now_ns, hl.latency),
            total_ms: l.total_ms.settled(now_ns, hl.latency),
            tokens_per_s: l.tokens_per_s.settled(now_ns, hl.latency),
            failure_ms: l.failure_ms.settled(now_ns, super::change::recent_hl()),
            prefill: l.prefill.settled(now_ns, hl.latency),
            quality: l.quality.settled(now_ns, hl.quality),
            cached_tokens: l.cached_tokens.settled(now_ns, hl.latency),
            prompt_tokens: l.prompt_tokens.settled(now_ns, hl.latency),
        }
    }

    /// Takes over a saved state, aged by `age_ns`, dated `now_ns` in this process.
    pub(crate) fn restore(
        &mut self,
        totals: Totals,
        mut learned: Learned,
        age_ns: u64,
        now_ns: u64,
        hl: &HalfLives,
    ) {
        learned.successes.rebase(age_ns, now_ns, hl.outcome);
        for f in &mut learned.failures {
            f.rebase(age_ns, now_ns, hl.outcome);
        }
        learned.failed.rebase(age_ns, now_ns, hl.outcome);
        learned.ttft_ms.rebase(age_ns, now_ns, hl.latency);
        learned.total_ms.rebase(age_ns, now_ns, hl.latency);
        learned.tokens_per_s.rebase(age_ns, now_ns, hl.latency);
        learned.prefill.rebase(age_ns, now_ns, hl.latency);
        learned.quality.rebase(age_ns, now_ns, hl.quality);
        learned.cached_tokens.rebase(age_ns, now_ns, hl.latency);
        learned.prompt_tokens.rebase(age_ns, now_ns, hl.latency);
        learned
            .failure_ms
            .rebase(age_ns, now_ns, super::change::recent_hl());
        self.totals = totals;
        self.learned = learned;
    }

    /// The share of prompt tokens the provider served from its cache lately, `None` before
    /// any usage report.
    pub fn cached_share(&self, now_ns: u64, hl: &HalfLives) -> Option<f64> {
        let l = &self.learned;
        let (cached, prompt) =
            Decayed::get_pair(&l.cached_tokens, &l.prompt_tokens, now_ns, hl.latency);
        (prompt > 0.0).then(|| (cached / prompt).clamp(0.0, 1.0))
    }

    /// Success share of the decayed outcomes, `None` before any.
    pub fn success_rate(&self, now_ns: u64, hl: &HalfLives) -> Option<f64> {
        let v = self.view(now_ns, hl);
        let n = v.successes + v.failures;
        (n > 1e-9).then(|| v.successes / n)
    }
}
