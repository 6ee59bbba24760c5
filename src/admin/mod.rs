//! What operators read: the per-endpoint report (`GET /v1/endpoints`, `switchyard stats`)
//! and the Prometheus exposition (`GET /metrics`).
//!
//! Plain functions of the catalog, the statistics and the time: the gateway mounts them on
//! routes, the CLI prints them, and nothing here holds state of its own.

pub mod endpoints;
pub mod metrics;
