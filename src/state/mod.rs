//! Runtime state: the immutable [`Snapshot`] a request reads, how a validated config
//! is compiled into one, and how a reload swaps it in atomically.

pub mod compile;
pub mod reload;
pub mod snapshot;

pub use snapshot::{SharedSnapshot, Snapshot};
