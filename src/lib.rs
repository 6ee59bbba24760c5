//! switchyard: a smart router for LLM APIs.
//!
//! One OpenAI-compatible HTTP endpoint in front of many provider models. For every request
//! the router resolves what the caller asked for into candidate endpoints, lets a [`Policy`]
//! rank them, forwards the request to the first choice, falls back to the next on failures
//! that happen before the first byte reaches the client, and relays the answer (streaming
//! included) untouched.
//!
//! Modules, and the one direction their dependencies point (gateway, sim → plan → select → stats, catalog):
//!
//! - [`config`]: `switchyard.toml`, parsed with unknown fields rejected and validated once.
//! - [`pricing`]: price sheets (`pricing/<provider>.toml`): format, validation, loading.
//! - [`catalog`]: providers, models, endpoints (provider × model) with their prices, groups.
//! - [`route`]: what a request asks for, parsed from the body without re-serialising it.
//! - [`stats`]: per-endpoint statistics (decayed fits, windows, totals), saved in sled.
//! - [`select`]: the [`Policy`] trait and its implementations; pure, time and RNG injected.
//! - [`plan`]: the shared procedure: request → ranked plan, and the attempt machine that walks
//!   it (next candidate, classify, rest, stop); the gateway and the simulator both drive it.
//! - [`clock`]: the injected wall clock (spend windows, timestamps).
//! - [`gateway`]: the axum app, the upstream client, attempts and fallback, the SSE relay.
//! - [`admin`]: the per-endpoint report and the Prometheus exposition.
//! - [`affinity`]: which endpoint each conversation stays on (prompt caches), as a layer over
//!   any ranking.
//! - [`log`]: the request log (batched append, retention, export), read back by replay.
//! - [`feedback`]: client scores of answers (`[feedback]`, the ledger of scorable answers).
//! - [`fake`]: a simulated OpenAI-compatible provider, shared by tests, benches and the demo.
//! - [`sim`]: the offline simulator: scenarios, the same policies in virtual time, reports.
//! - [`demo`]: `switchyard demo`, a router in front of a handful of fake providers.
//!
//! [`Policy`]: select::Policy
#![forbid(unsafe_code)]

pub mod admin;
pub mod affinity;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dialect;
pub mod fake;
pub mod feedback;
pub mod fleet;
pub mod gateway;
pub(crate) mod http;
pub mod log;
pub mod plan;
pub mod presets;
pub mod pricing;
pub mod route;
pub mod select;
pub mod sim;
pub mod stats;
pub mod upstream;
