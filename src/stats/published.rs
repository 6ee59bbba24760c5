//! The selector's lock-free read of an endpoint: a sequence lock over the numbers a view is
//! computed from.
//!
//! A decision reads every candidate's view; with 200 candidates, taking and releasing 200
//! mutexes (two atomic read-modify-writes each) was a tenth of a decision's time. Writers
//! still serialise on the endpoint's mutex and, while holding it, publish a copy of
//! [`ViewInputs`] here; readers copy the words without any read-modify-write and retry if a
//! publish overlapped (the sequence number was odd or moved). Everything is an atomic, so
//! there is no `unsafe`: the ordering follows Boehm, "Can seqlocks get along with programming
//! language memory models?" (2012): writer — odd sequence, release fence, relaxed stores,
//! even sequence with release; reader — acquire load, relaxed loads, acquire fence, relaxed
//! re-load. A reader that keeps losing the race (a writer descheduled mid-publish) gives up
//! after a few tries and takes the mutex instead, so it never spins for long.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::decay::{Decayed, LogStats};
use super::endpoint::{EndpointStats, EndpointView, HalfLives};
use super::prefill::PrefillStats;
use super::quality::QualityStats;

/// What an [`EndpointView`] is computed from: the decayed statistics as stored (undecayed,
/// with their dates) and the counters the selector reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ViewInputs {
    pub successes: Decayed,
    pub failed: Decayed,
    pub ttft_ms: LogStats,
    pub total_ms: LogStats,
    pub tokens_per_s: LogStats,
    pub failure_ms: LogStats,
    pub prefill: PrefillStats,
    pub quality: QualityStats,
    pub in_flight: u32,
    pub consecutive_failures: u32,
    pub last_failure_ns: Option<u64>,
    pub attempts: u64,
    pub rest_until_ns: u64,
}

const WORDS: usize = 35;

impl ViewInputs {
    /// The inputs of the selector's view: the endpoint's own figures and, in a fleet, its
    /// peers'.
    #[inline]
    pub fn of(s: &EndpointStats, hl: &HalfLives) -> ViewInputs {
        let own = ViewInputs::own(s);
        match &s.peers {
            None => own,
            Some(p) => ViewInputs {
                successes: own.successes.plus(&p.successes, hl.outcome),
                failed: own.failed.plus(&p.failed, hl.outcome),
                ttft_ms: own.ttft_ms.plus(&p.ttft_ms, hl.latency),
                total_ms: own.total_ms.plus(&p.total_ms, hl.latency),
                tokens_per_s: own.tokens_per_s.plus(&p.tokens_per_s, hl.latency),
                failure_ms: own
                    .failure_ms
                    .plus(&p.failure_ms, super::change::recent_hl()),
                prefill: own.prefill.plus(&p.prefill, hl.latency),
                quality: own.quality.plus(&p.quality, hl.quality),
                attempts: own.attempts + p.attempts,
                rest_until_ns: own.rest_until_ns.max(p.rest_until_ns),
                ..own
            },
        }
    }

    /// The inputs from the endpoint's own figures only.
    #[inline]
    pub fn own(s: &EndpointStats) -> ViewInputs {
        let l = &s.learned;
        ViewInputs {
            successes: l.successes,
            failed: l.failed,
            ttft_ms: l.ttft_ms,
            total_ms: l.total_ms,
            tokens_per_s: l.tokens_per_s,
            failure_ms: l.failure_ms,
            prefill: l.prefill,
            quality: l.quality,
            in_flight: s.in_flight,
            consecutive_failures: s.consecutive_failures,
            last_failure_ns: s.last_failure.map(|(at, _)| at),
            attempts: s.totals.attempts,
            rest_until_ns: s.rest_until_ns,
        }
    }

    /// The view at `now_ns`.
    #[inline(always)]
    pub fn view(&self, now_ns: u64, hl: &HalfLives) -> EndpointView {
        // The three fits are usually updated by the same success: one decay factor serves
        // all that share a time.
        let mut cached: Option<(u64, f64)> = None;
        let mut fit = |s: &LogStats| {
            let at = s.at_ns();
            let f = match cached {
                Some((t, f)) if t == at => f,
                _ => {
                    let f = hl.latency.factor(now_ns.saturating_sub(at));
                    cached = Some((at, f));
                    f
                }
            };
            s.summary_with(f)
        };
        let ttft_ms = fit(&self.ttft_ms);
        let total_ms = fit(&self.total_ms);
        let tokens_per_s = fit(&self.tokens_per_s);
        // Updated with the TTFT fit, so usually the same factor.
        let prefill = {
            let at = self.prefill.at_ns();
            let f = match cached {
                Some((t, f)) if t == at => f,
                _ => hl.latency.factor(now_ns.saturating_sub(at)),
            };
            self.prefill.summary_with(f)
        };
        let (successes, failures) =
            Decayed::get_pair(&self.successes, &self.failed, now_ns, hl.outcome);
        EndpointView {
            successes,
            failures,
            ttft_ms,
            total_ms,
            tokens_per_s,
            in_flight: self.in_flight,
            since_failure_ns: self.last_failure_ns.map(|at| now_ns.saturating_sub(at)),
            attempts: self.attempts,
            consecutive_failures: self.consecutive_failures,
            retry_after_ns: self.rest_until_ns.saturating_sub(now_ns),
            failure_ms: self.failure_ms,
            prefill,
            quality: self.quality,
        }
    }

    #[inline(always)]
    fn to_words(self) -> [u64; WORDS] {
        let [s0, s1] = self.successes.to_words();
        let [f0, f1] = self.failed.to_words();
        let [t0, t1, t2, t3] = self.ttft_ms.to_words();
        let [a0, a1, a2, a3] = self.total_ms.to_words();
        let [p0, p1, p2, p3] = self.tokens_per_s.to_words();
        let [e0, e1, e2, e3] = self.failure_ms.to_words();
        let [r0, r1, r2, r3, r4, r5, r6] = self.prefill.to_words();
        let [q0, q1, q2, q3] = self.quality.to_words();
        [
            s0,
            s1,
            f0,
            f1,
            t0,
            t1,
            t2,
            t3,
            a0,
            a1,
            a2,
            a3,
            p0,
            p1,
            p2,
            p3,
            u64::from(self.in_flight) | u64::from(self.consecutive_failures) << 32,
            self.last_failure_ns.unwrap_or(u64::MAX),
            self.attempts,
            self.rest_until_ns,
            e0,
            e1,
            e2,
            e3,
            r0,
            r1,
            r2,
            r3,
            r4,
            r5,
            r6,
            q0,
            q1,
            q2,
            q3,
        ]
    }

    /// Reads the inputs from `words`, each word where it belongs (no intermediate array:
    /// copying one word by word then reading it back in wide moves stalls the store buffer).
    #[inline(always)]
    fn load(words: &[AtomicU64; WORDS]) -> ViewInputs {
        let w = |i: usize| words[i].load(Ordering::Relaxed);
        let last_failure = w(17);
        ViewInputs {
            successes: Decayed::from_words([w(0), w(1)]),
            failed: Decayed::from_words([w(2), w(3)]),
            ttft_ms: LogStats::from_words([w(4), w(5), w(6), w(7)]),
            total_ms: LogStats::from_words([w(8), w(9), w(10), w(11)]),
            tokens_per_s: LogStats::from_words([w(12), w(13), w(14), w(15)]),
            in_flight: w(16) as u32,
            consecutive_failures: (w(16) >> 32) as u32,
            last_failure_ns: (last_failure != u64::MAX).then_some(last_failure),
            attempts: w(18),
            rest_until_ns: w(19),
            failure_ms: LogStats::from_words([w(20), w(21), w(22), w(23)]),
            prefill: PrefillStats::from_words([w(24), w(25), w(26), w(27), w(28), w(29), w(30)]),
            quality: QualityStats::from_words([w(31), w(32), w(33), w(34)]),
        }
    }
}

/// The published copy of one endpoint's [`ViewInputs`].
#[derive(Debug)]
pub(crate) struct Published {
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Default for Published {
    /// Holds the inputs of an endpoint nothing happened to yet.
    fn default() -> Published {
        Published {
            seq: AtomicU64::new(0),
            words: ViewInputs::default().to_words().map(AtomicU64::new),
        }
    }
}

/// Optimistic reads tried before falling back to the lock.
const TRIES: usize = 4;

impl Published {
    /// Publishes `inputs`. Callers hold the endpoint's mutex, so there is one writer at a
    /// time.
    #[inline]
    pub(crate) fn publish(&self, inputs: ViewInputs) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, w) in self.words.iter().zip(inputs.to_words()) {
            slot.store(w, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy, or `None` when every try overlapped a publish.
    #[inline]
    pub fn read(&self) -> Option<ViewInputs> {
        for _ in 0..TRIES {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let inputs = ViewInputs::load(&self.words);
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return Some(inputs);
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{FailureClass, HalfLife, Success};
    use std::sync::Arc;

    fn half_lives() -> HalfLives {
        HalfLives {
            latency: HalfLife::new(std::time::Duration::from_secs(300)),
            outcome: HalfLife::new(std::time::Duration::from_secs(60)),
            quality: HalfLife::new(std::time::Duration::from_secs(86400)),
        }
    }

    #[test]
    fn a_published_state_reads_back_exactly() {
        let hl = half_lives();
        let mut s = EndpointStats::default();
        s.begin();
        let ok = Success {
            ttft_ms: Some(120.0),
            total_ms: 900.0,
            output_tokens: Some(40),
            ..Success::default()
        };
        s.success(&ok, 1_000, &hl);
        s.begin();
        s.begin();
        s.failure(FailureClass::Timeout, 5_000, &hl);
        s.rest_until_ns = 77;
        let p = Published::default();
        assert_eq!(p.read(), Some(ViewInputs::default()));
        p.publish(ViewInputs::of(&s, &hl));
        let back = p.read().expect("no writer");
        assert_eq!(back, ViewInputs::of(&s, &hl));
        assert_eq!(back.view(9_000, &hl), s.view(9_000, &hl));
    }

    /// A writer publishes states whose every word equals the same number; readers must never
    /// see two different numbers in one copy.
    #[test]
    fn readers_never_see_a_torn_copy() {
        let p = Arc::new(Published::default());
        for w in &p.words {
            w.store(0, Ordering::Relaxed);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let seq = p.seq.load(Ordering::Relaxed);
                    p.seq.store(seq + 1, Ordering::Relaxed);
                    fence(Ordering::Release);
                    for w in &p.words {
                        w.store(k, Ordering::Relaxed);
                    }
                    p.seq.store(seq + 2, Ordering::Release);
                }
            })
        };
        // Read only while the writer is busy.
        while p.seq.load(Ordering::Relaxed) < 1_000 {
            std::hint::spin_loop();
        }
        let (mut seen, mut values) = (0, std::collections::BTreeSet::new());
        let mut reads = 0;
        while values.len() < 100 && reads < 50_000_000 {
            reads += 1;
            if let Some(inputs) = p.read() {
                let words = inputs.to_words();
                let k = words[0];
                assert!(words.iter().all(|&w| w == k), "torn: {words:?}");
                seen += 1;
                values.insert(k);
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer");
        // The reads overlapped many publishes (on any machine with two cores).
        assert!(
            seen > 0 && values.len() > 1,
            "{seen} reads, {} values",
            values.len()
        );
    }
}
