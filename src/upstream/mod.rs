//! Upstreams: target selection (pingora-load-balancing plus our `least_conn`), active
//! health checks and peer settings. An upstream's [`Targets`] (balancer, health
//! state, in-flight counts) live in a [`TargetsRegistry`] and survive a reload while
//! what they are made of is unchanged; the [`Pool`] around them (retries, timeouts,
//! limits) is rebuilt with every snapshot.
//!
//! A request reaches its upstream through an [`Attempt`]: one [`Try`] at a time,
//! with retries and passive health (`attempt`).
//!
//! Selection never blocks: health state is written by background checks, and each
//! request's outcome feeds passive health (ejections) through atomics. DNS-named
//! targets are re-resolved in the background. A pool with no healthy target left
//! answers 503, one whose targets all failed 502.

mod attempt;
mod checks;
mod dns;
mod health;
mod in_flight;
mod least_conn;
mod outlier;
mod pool;
mod protocol;
mod refresh;
mod retry;
mod targets;

pub use attempt::{Attempt, Try, TryError, RETRY_STATUS};
pub use health::health_checks;
pub use in_flight::InFlightGuard;
pub use outlier::Outlier;
pub use pool::{Pool, UpstreamError};
pub use refresh::dns_refreshes;
pub use targets::{Targets, TargetsDefinition};

/// The targets of the current config, by upstream name.
pub type TargetsRegistry = crate::base::registry::Registry<Targets>;
