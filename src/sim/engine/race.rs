//! Hedge races in virtual time: a request's running attempts, when each gets its first byte,
//! and how a race is settled (the first answer wins; the others are cancelled and their
//! prompts counted as hedging's waste).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Done, Kind, Pending, Req};
use crate::plan::hedge::{loser_cost, HedgeBudget};
use crate::sim::scenario::Scenario;
use crate::sim::truth::{self, Ending, TrueState};

/// One running attempt: its number, catalog index, start, and how it will end.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub n: u32,
    pub current: usize,
    pub started_ns: u64,
    pub end_ns: u64,
    pub ending: Ending,
}

impl Run {
    /// When the attempt's first byte comes: its first token, or the end of a failure.
    pub(super) fn first_byte_ns(&self, stream: bool) -> u64 {
        match self.ending {
            Ending::Answer { first_token_ns } if stream => first_token_ns,
            _ => self.end_ns,
        }
    }
}

/// What settling a hedge race touches.
pub(super) struct Race<'a> {
    pub states: &'a [TrueState],
    pub in_flight: &'a mut [u32],
    pub budget: &'a mut HedgeBudget,
}

impl Race<'_> {
    /// Attempt `n` of `p` answered first at `t`: the machine ends the attempts and the
    /// others still running are cancelled, their prompt counted as hedging's waste.
    pub(super) fn settle(&mut self, p: &mut Pending, n: u32, r: &Req, d: &mut Done, t: u64) {
        let Some(run) = p.runs.iter().find(|x| x.n == n).copied() else {
            return;
        };
        p.decided = true;
        let losers = p.attempts.answered(&p.version.table, run.current, t);
        d.hedge_won = d.hedged && p.runs.last().is_some_and(|x| x.n == n);
        for loser in losers {
            let e = p.version.map[loser];
            self.in_flight[e] -= 1;
            let wasted = loser_cost(f64::from(r.prompt_tokens), self.states[e].ep.input_per_mtok);
            self.budget.wasted(wasted, t);
            d.hedge_wasted_usd += wasted;
        }
        p.runs.retain(|x| x.n == n);
    }
}

/// Starts attempt `current` (just taken from the machine) of request `r` at `t`.
pub(super) fn start_run(
    s: &Scenario,
    states: &[TrueState],
    in_flight: &mut [u32],
    p: &Pending,
    current: usize,
    r: &Req,
    t: u64,
) -> Run {
    let e = p.version.map[current];
    in_flight[e] += 1;
    let n = p.attempts.started() - 1;
    let (end_ns, ending) = truth::attempt(s, &states[e], e, in_flight[e], r, n, t);
    Run {
        n: n as u32,
        current,
        started_ns: t,
        end_ns,
        ending,
    }
}

/// The events of a run: its end, and (when it may race a hedge) its first token.
pub(super) fn schedule(
    heap: &mut BinaryHeap<Reverse<(u64, Kind, u64)>>,
    push: &mut impl FnMut(&mut BinaryHeap<Reverse<(u64, Kind, u64)>>, u64, Kind),
    i: usize,
    run: &Run,
    racing: bool,
) {
    if racing {
        if let Ending::Answer { first_token_ns } = run.ending {
            push(heap, first_token_ns, Kind::FirstByte(i as u32, run.n));
        }
    }
    push(heap, run.end_ns, Kind::AttemptEnd(i as u32, run.n));
}
