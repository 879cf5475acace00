//! The security log: one JSON line per authentication or authorization decision that
//! rejects (and per accept where an authenticator asks for it), also counted in
//! metrics by authenticator, outcome and reason. Never holds a token or key: only
//! the reason, the principal's id and the key id.

use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{JsonLines, Metrics};

#[derive(Debug, Serialize)]
pub struct SecurityEvent<'a> {
    pub request_id: &'a str,
    pub client_ip: IpAddr,
    pub route: &'a str,
    /// The authenticator that decided, or "" when no credential was presented.
    pub authenticator: &'a str,
    /// `accept`, `reject` (401) or `forbid` (403).
    pub outcome: &'static str,
    /// e.g. `expired`, `bad_signature`, `unknown_kid`, `missing_scope`.
    pub reason: &'static str,
    /// Consumer id or `sub`, when known.
    pub principal: Option<&'a str>,
    pub key_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    event: &'static str,
    #[serde(flatten)]
    event_fields: &'a SecurityEvent<'a>,
}

#[derive(Clone)]
pub struct SecurityLog {
    lines: JsonLines,
    metrics: Arc<Metrics>,
}

impl SecurityLog {
    pub fn new(lines: JsonLines, metrics: Arc<Metrics>) -> Self {
        Self { lines, metrics }
    }

    /// Counts the decision without writing a line (accepts, unless asked for).
    pub fn count(&self, event: &SecurityEvent<'_>) {
        self.metrics
            .auth_decision(event.authenticator, event.outcome, event.reason);
    }

    /// Counts the decision and writes it as a line.
    pub fn record(&self, event: &SecurityEvent<'_>) {
        self.count(event);
        self.lines.send(&Line {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event: "auth",
            event_fields: event,
        });
    }
}
