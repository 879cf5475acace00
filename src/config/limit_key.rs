//! The parts a rate limit's `key` is made of: `client_ip`, `consumer`, `route`,
//! `header:NAME` or `claim:NAME`. Parsed where the config is validated and where
//! buckets are named; a part that does not parse is a config error at its place.

use http::HeaderName;

/// One part of a bucket key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    ClientIp,
    Consumer,
    Route,
    Header(HeaderName),
    Claim(String),
}

impl KeyPart {
    /// `client_ip`, `consumer`, `route`, `header:NAME` or `claim:NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None => match text {
                "client_ip" => Ok(KeyPart::ClientIp),
                "consumer" => Ok(KeyPart::Consumer),
                "route" => Ok(KeyPart::Route),
                _ => Err(format!("unknown key {text:?}: expected client_ip, consumer, route, header:NAME or claim:NAME")),
            },
            Some(("header", name)) => HeaderName::from_bytes(name.as_bytes())
                .map(KeyPart::Header)
                .map_err(|_| format!("invalid header name {name:?}")),
            Some(("claim", name)) if !name.is_empty() => Ok(KeyPart::Claim(name.to_owned())),
            Some(_) => Err(format!("unknown key {text:?}: expected header:NAME or claim:NAME")),
        }
    }

    /// The config spelling (header names in lower case).
    pub fn kind(&self) -> String {
        match self {
            KeyPart::ClientIp => "client_ip".into(),
            KeyPart::Consumer => "consumer".into(),
            KeyPart::Route => "route".into(),
            KeyPart::Header(name) => format!("header:{name}"),
            KeyPart::Claim(name) => format!("claim:{name}"),
        }
    }
}
