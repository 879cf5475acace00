//! The identity of a verified client certificate: subject, subject alternative names
//! and SHA-256 fingerprint, read once per connection at the end of the handshake and
//! forwarded to the upstream in headers (client-sent copies are always removed).

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref};
use pingora::http::RequestHeader;

const SUBJECT_HEADER: &str = "x-client-cert-subject";
const SANS_HEADER: &str = "x-client-cert-sans";
const SHA256_HEADER: &str = "x-client-cert-sha256";
/// Every header this module sets; removed from every request first.
const CLIENT_CERT_HEADERS: [&str; 3] = [SUBJECT_HEADER, SANS_HEADER, SHA256_HEADER];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// RFC 4514 form, most significant last: `CN=client,O=Acme`.
    pub subject: String,
    pub common_name: Option<String>,
    /// `(kind, value)`: `DNS`, `URI`, `email` or `IP`.
    pub sans: Vec<(&'static str, String)>,
    pub sha256: [u8; 32],
}

impl ClientCert {
    pub fn from_x509(cert: &X509Ref) -> Self {
        let sha256 = cert
            .digest(MessageDigest::sha256())
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(&d[..]).ok())
            .unwrap_or_default();
        let common_name = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok());
        let mut sans = Vec::new();
        for name in cert.subject_alt_names().iter().flatten() {
            let entry = if let Some(dns) = name.dnsname() {
                ("DNS", dns.to_owned())
            } else if let Some(uri) = name.uri() {
                ("URI", uri.to_owned())
            } else if let Some(email) = name.email() {
                ("email", email.to_owned())
            } else if let Some(ip) = name.ipaddress().and_then(ip_text) {
                ("IP", ip)
            } else {
                continue;
            };
            sans.push(entry);
        }
        ClientCert {
            subject: rfc4514(cert.subject_name()),
            common_name,
            sans,
            sha256,
        }
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    pub fn has_san(&self, value: &str) -> bool {
        self.sans.iter().any(|(_, v)| v == value)
    }
}

/// Removes client-sent certificate headers, then sets the verified certificate's.
pub fn forward_client_cert(
    cert: Option<&ClientCert>,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    crate::base::headers::remove_present(req, CLIENT_CERT_HEADERS);
    let Some(cert) = cert else {
        return Ok(());
    };
    let sans = cert
        .sans
        .iter()
        .map(|(kind, value)| format!("{kind}:{value}"))
        .collect::<Vec<_>>()
        .join(",");
    for (name, value) in [
        (SUBJECT_HEADER, cert.subject.clone()),
        (SANS_HEADER, sans),
        (SHA256_HEADER, cert.sha256_hex()),
    ] {
        // A value a header cannot carry (control characters) is left out, not mangled.
        if !value.is_empty() && !value.bytes().any(|b| b < 0x20 || b == 0x7f) {
            req.insert_header(name, value)?;
        }
    }
    Ok(())
}

fn rfc4514(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={}", escape(&value))
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        let trailing = i + 1 == value.chars().count() && c == ' ';
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || leading || trailing {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_values_are_escaped() {
        assert_eq!(escape("Acme, Inc."), "Acme\\, Inc.");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("plain"), "plain");
    }
}
