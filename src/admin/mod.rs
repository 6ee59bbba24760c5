//! What operators read: the per-endpoint report (`GET /v1/endpoints`, `switchyard stats`),
//! the Prometheus exposition (`GET /metrics`), and the dashboard (`GET /dashboard`) with the
//! short history it draws.
//!
//! Functions of the catalog, the statistics and the time: the gateway mounts them on routes
//! and the CLI prints them. The only state here is the dashboard's bounded [`timeline`].

pub(crate) mod dashboard;
pub mod endpoints;
pub(crate) mod metrics;
pub(crate) mod timeline;
