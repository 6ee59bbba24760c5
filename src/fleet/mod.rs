//! The fleet: several routers behind a load balancer that behave as one.
//!
//! Each replica publishes its own learned state and reads its peers' through Redis
//! ([`merge`], [`sync`]); client rate and spend limits hold for the fleet ([`limits`]); an
//! accepted price update reaches every replica. Nothing on the request path awaits Redis:
//! one background task per replica syncs every `sync_interval`, and while Redis is down,
//! slow or hung, requests go on with what is known locally.

pub mod config;
pub mod limits;
pub mod merge;

pub use config::{FleetConfig, OnRedisDown};
pub mod status;
pub mod sync;

pub use limits::ClientFleet;
pub use status::Status;
