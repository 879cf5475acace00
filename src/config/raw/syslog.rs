//! A log sent to a syslog receiver (a SIEM): `{ syslog = "udp://host:514" }` (or
//! `tcp://`, `tls://`), or with options `{ syslog = { url = "tls://siem:6514",
//! ca_file = "…", facility = "local0" } }`.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "Spelling")]
pub struct SyslogTarget {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`.
    pub url: String,
    /// The CA a `tls://` receiver's certificate must chain to (default: the system's).
    pub ca_file: Option<PathBuf>,
    pub facility: Facility,
}

/// The syslog facility of every message (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    User,
    Daemon,
    Auth,
    Authpriv,
    #[default]
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Spelling {
    Url(String),
    Table(Table),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    url: String,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    facility: Facility,
}

impl From<Spelling> for SyslogTarget {
    fn from(spelling: Spelling) -> Self {
        match spelling {
            Spelling::Url(url) => Self {
                url,
                ca_file: None,
                facility: Facility::default(),
            },
            Spelling::Table(t) => Self {
                url: t.url,
                ca_file: t.ca_file,
                facility: t.facility,
            },
        }
    }
}

/// How a receiver is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl SyslogTarget {
    /// The transport and `HOST:PORT`, or why the URL is not one.
    pub fn endpoint(&self) -> Result<(Transport, &str, u16), String> {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .ok_or("expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT")?;
        let transport = match scheme {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => return Err(format!("unknown scheme {other:?}: udp, tcp or tls")),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or("the receiver's port is missing (514 for udp and tcp, 6514 for tls)")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port {port:?}"))?;
        if host.is_empty() || host.contains('/') {
            return Err(format!("invalid host {host:?}"));
        }
        if self.ca_file.is_some() && transport != Transport::Tls {
            return Err("ca_file applies to tls:// only".into());
        }
        Ok((transport, host, port))
    }
}
