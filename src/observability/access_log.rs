//! The access log: one JSON line per request (see `json_lines` for how it is written).
//! The proxy fills an [`AccessRecord`] at the end of a request; this module only
//! serializes it, so it knows nothing of the request phases.

use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

use super::json_lines::JsonLines;

/// One request as the access log shows it.
#[derive(Serialize)]
pub struct AccessRecord<'a> {
    pub time: String,
    pub request_id: &'a str,
    pub client_ip: IpAddr,
    pub method: &'a str,
    pub host: &'a str,
    /// The normalized path (what routing and the upstream saw), or the path as sent
    /// when the request was refused before it was normalized.
    pub path: &'a str,
    pub status: u16,
    pub route: Option<&'a str>,
    /// The route is deprecated (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// The authenticated principal's id, when the route authenticates.
    pub consumer: Option<&'a str>,
    /// The TLS version, on TLS listeners.
    pub tls: Option<&'a str>,
    /// A verified client certificate's subject and SHA-256 fingerprint.
    pub client_cert_subject: Option<&'a str>,
    pub client_cert_sha256: Option<String>,
    pub upstream: Option<SocketAddr>,
    pub bytes: usize,
    pub duration_ms: f64,
}

#[derive(Clone, Default)]
pub struct AccessLog(JsonLines);

impl AccessLog {
    pub fn new(lines: JsonLines) -> Self {
        Self(lines)
    }

    /// Whether lines are written at all (`access_log = "off"` skips building them).
    pub fn is_on(&self) -> bool {
        self.0.is_on()
    }

    pub fn record(&self, record: &AccessRecord<'_>) {
        self.0.send(record);
    }
}
