//! Building blocks that know nothing of the config file or of Pingora's phases, used
//! by the modules above them: the [`Reply`] every stage that refuses a request
//! converts its error into, the registry that keeps state (pools, key sets,
//! buckets) across reloads while its definition is unchanged, the background chores
//! stages build with a config, the one clock the
//! time-based logic reads, the process's lifecycle (starting, serving, draining), the
//! thread the background chores share, cheap header edits for the hot path, and which
//! listener address a connection belongs to, JSON parsed the strict way (a key twice
//! is refused), the signals background services act on, PEM certificate files, and
//! maps keyed by shared names.

pub mod background;
pub mod chores;
pub mod clock;
pub mod headers;
pub mod lifecycle;
pub mod listen;
pub mod pem;
pub mod registry;
mod reply;
pub mod sd_notify;
pub mod signals;
pub mod str_map;
pub mod strict_json;

pub use reply::{problem_document, PolicyEvent, Reply};
