//! What tollgate tells operators: the JSON access log, the JSON security log (auth
//! decisions) and Prometheus metrics. The process log itself is `log` + `env_logger`
//! (RUST_LOG).

mod access_log;
mod json_lines;
pub mod metrics;
mod security_log;

pub use access_log::AccessLog;
pub use json_lines::{JsonLines, JsonLinesWriter};
pub use metrics::Metrics;
pub use security_log::{SecurityEvent, SecurityLog};
