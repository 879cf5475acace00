//! What tollgate tells operators about traffic: the JSON access log (metrics come
//! with the metrics issue). The process log itself is `log` + `env_logger` (RUST_LOG).

mod access_log;

pub use access_log::{AccessLog, AccessLogWriter};
