//! Runtime state: the immutable [`Snapshot`] a request reads, how a validated config
//! is compiled into one, how a reload swaps it in atomically, and the registries of
//! state that outlives a snapshot.

pub mod compile;
pub mod reload;
pub mod retained;
pub mod snapshot;

pub use retained::Retained;
pub use snapshot::{SharedSnapshot, Snapshot};
