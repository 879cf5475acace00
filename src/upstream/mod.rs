//! Upstream pools: target selection (pingora-load-balancing plus our `least_conn`),
//! active health checks and peer settings. Pools live in a [`PoolRegistry`], so a pool
//! (with its health state and in-flight counts) survives a reload while its
//! definition is unchanged.
//!
//! Selection never blocks: health state is written by background checks only.
//! A pool with no healthy target left answers 503, one whose targets all failed 502.

mod health;
mod in_flight;
mod least_conn;
mod pool;

pub use health::health_checks;
pub use in_flight::InFlightGuard;
pub use pool::{Pool, PoolDefinition, Selected, UpstreamError};

/// Pools of the current config, by upstream name.
pub type PoolRegistry = crate::base::registry::Registry<Pool>;
