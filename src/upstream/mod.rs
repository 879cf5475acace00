//! Upstream pools: target selection (pingora-load-balancing plus our `least_conn`),
//! active health checks, peer settings, and the registry that keeps a pool (with its
//! health state and idle connections) across reloads while its definition is unchanged.
//!
//! Selection never blocks: health state is written by background checks only.
//! A pool with no healthy target left answers `None`; the proxy turns that into 503.

mod health;
mod least_conn;
mod pool;
mod registry;

pub use health::HealthChecks;
pub use pool::{InFlightGuard, Pool, Selected, UpstreamError};
pub use registry::PoolRegistry;
