//! `X-Request-Id`: kept when the client sent a well-formed one (so a trace can span
//! several hops), generated (UUID v4) otherwise.

use pingora::http::{KnownHeaderName, RequestHeader};

pub const HEADER: &str = "x-request-id";
/// [`HEADER`], to insert.
pub static HEADER_NAME: KnownHeaderName = KnownHeaderName::from_static(HEADER);
const MAX_LEN: usize = 128;

pub fn from_request(req: &RequestHeader) -> String {
    req.headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
        .map_or_else(generate, str::to_owned)
}

/// A UUID v4, formatted without the formatting machinery.
fn generate() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// 1 to 128 characters of `[A-Za-z0-9._:-]`: safe to echo and to log.
fn is_valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(id: &str) -> String {
        let mut r = RequestHeader::build("GET", b"/", None).expect("request");
        r.insert_header(HEADER, id).expect("header");
        from_request(&r)
    }

    #[test]
    fn keeps_valid_and_replaces_invalid_ids() {
        assert_eq!(with("abc-123"), "abc-123");
        let generated = with("bad id\"");
        assert_ne!(generated, "bad id\"");
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert!(uuid::Uuid::parse_str(&with(&"a".repeat(129))).is_ok());
    }
}
