//! The access log: one JSON line per request (see `json_lines` for how it is written).
//! The proxy fills an [`AccessRecord`] at the end of a request, the request's stages
//! add their [`LogFields`]; this module only serializes them, so it knows nothing of
//! the request phases.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

use super::json_lines::JsonLines;

/// One request as the access log shows it.
#[derive(Serialize)]
pub struct AccessRecord<'a> {
    pub time: String,
    pub request_id: &'a str,
    #[serde(serialize_with = "ip_text")]
    pub client_ip: IpAddr,
    pub method: &'a str,
    pub host: &'a str,
    /// The normalized path (what routing and the upstream saw), or the path as sent
    /// when the request was refused before it was normalized.
    pub path: &'a str,
    pub status: u16,
    pub route: Option<&'a str>,
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
    /// What the request's stages add (`deprecated`, ...).
    #[serde(flatten)]
    pub extra: &'a LogFields,
}

/// An address as text, IPv4 without the formatting machinery (every line has one).
fn ip_text<S: Serializer>(ip: &IpAddr, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = Vec::with_capacity(15);
    crate::base::headers::push_ip(&mut text, *ip);
    serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
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

/// A value stages add to the access-log line.
#[derive(Debug, Clone)]
pub enum LogValue {
    Flag(bool),
    Text(String),
}

/// Fields stages add to the access-log line, after tollgate's own.
#[derive(Debug, Default)]
pub struct LogFields(Vec<(&'static str, LogValue)>);

impl LogFields {
    pub fn add(&mut self, name: &'static str, value: LogValue) {
        self.0.push((name, value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for LogFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            match value {
                LogValue::Flag(flag) => map.serialize_entry(name, flag)?,
                LogValue::Text(text) => map.serialize_entry(name, text)?,
            }
        }
        map.end()
    }
}
