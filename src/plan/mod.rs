//! The routing brain's procedure, shared by the gateway and the simulator (pure: time and
//! randomness come in as values, nothing here knows HTTP or tokio).
//!
//! - [`request`]: a parsed request and its hints (the real parser, [`crate::route::hints`])
//!   become candidate tiers (`model`, then each of `models`), the hard constraints remove
//!   what they rule out, and the policy (the group's, else the router's) ranks the rest:
//!   a [`Plan`].
//! - [`hedge`]: when a silent attempt gets a second one beside it, and what that may cost.
//! - [`attempts`]: the attempt machine that walks a plan: which candidate next, how an
//!   attempt's outcome is classified and recorded, when a provider's `Retry-After` rests an
//!   endpoint, and when to stop (`max_attempts`, the deadline, the candidates running out).
//!
//! The gateway drives both with real I/O and the system clock; the simulator drives the same
//! code in virtual time, so a scenario exercises hint merging, `models` tiers,
//! `max_attempts`, rests and the failure break exactly as live traffic does.

pub mod attempts;
pub mod hedge;
pub mod request;

pub use attempts::{AttemptFailure, Attempts, End, Exhausted, Failure, Tried};
pub use request::{Parsed, Plan, PlanError, Planner};
