//! The security log: one JSON line per authentication or authorization decision that
//! rejects (and per accept where an authenticator asks for it), also counted in
//! metrics by authenticator, outcome and reason, and one per policy refusal worth it
//! (an address on a deny list, ...), and one per ban and unban of a jail. Never holds a
//! token or key: only the reason, the principal's id and the key id.

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

/// The request a policy event is about.
pub struct EventFacts<'a> {
    pub request_id: &'a str,
    pub client_ip: IpAddr,
    /// `None` before routing.
    pub route: Option<&'a str>,
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

    /// Writes a policy's refusal: `event` (`"ip_denied"`, ...), the request's facts
    /// and the policy's `fields`. Counting is the policy's own business.
    pub fn policy(&self, event: &str, facts: &EventFacts<'_>, fields: &[(&'static str, String)]) {
        self.policy_with(event, facts, fields, &[]);
    }

    /// [`SecurityLog::policy`] with `structured` fields (numbers, lists) after the
    /// text ones.
    pub fn policy_with(
        &self,
        event: &str,
        facts: &EventFacts<'_>,
        fields: &[(&'static str, String)],
        structured: &[(&'static str, serde_json::Value)],
    ) {
        let request = [
            ("request_id", facts.request_id.to_owned()),
            ("client_ip", facts.client_ip.to_string()),
        ];
        let route = facts.route.map(|r| ("route", r.to_owned()));
        self.write(
            event,
            request.iter().chain(&route).chain(fields),
            structured,
            facts.route.is_none(),
        );
    }

    /// Writes an event that no request caused (a ban that ended, one lifted by an
    /// operator): `event` and its `fields`.
    pub fn notice(&self, event: &str, fields: &[(&'static str, String)]) {
        self.write(event, fields.iter(), &[], false);
    }

    /// One line: the time, `event`, the fields in order (`route: null` when asked,
    /// for policy events before routing).
    fn write<'a>(
        &self,
        event: &str,
        fields: impl Iterator<Item = &'a (&'static str, String)>,
        structured: &[(&'static str, serde_json::Value)],
        null_route: bool,
    ) {
        if !self.lines.is_on() {
            return;
        }
        let mut line = serde_json::Map::new();
        line.insert(
            "time".into(),
            humantime::format_rfc3339_millis(SystemTime::now())
                .to_string()
                .into(),
        );
        line.insert("event".into(), event.into());
        if null_route {
            line.insert("route".into(), serde_json::Value::Null);
        }
        for (key, value) in fields {
            line.insert((*key).into(), value.as_str().into());
        }
        for (key, value) in structured {
            line.insert((*key).into(), value.clone());
        }
        self.lines.send(&line);
    }
}
