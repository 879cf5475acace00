//! What tollgate tells operators: the JSON access log, the JSON security log (auth
//! decisions), Prometheus metrics, and the process log (`log` + `env_logger`, RUST_LOG;
//! see `process_log` for how failed TLS handshakes are summarized); their files reopen
//! for rotation (`log_files`), and the JSON logs can go to a syslog receiver (`syslog`).

mod access_log;
mod json_lines;
mod log_files;
pub mod metrics;
pub mod process_log;
mod security_log;
mod syslog;

pub use access_log::{AccessLog, AccessRecord, LogFields, LogValue};
pub use json_lines::{JsonLines, JsonLinesWriter, LogKind};
pub use log_files::{Reopen, ReopenOnSignal};
pub use metrics::Metrics;
pub use security_log::{EventFacts, SecurityEvent, SecurityLog};
