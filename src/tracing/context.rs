//! W3C Trace Context (`traceparent`, version 00): reading a request's parent, making
//! the ids of new traces and spans, and writing the `traceparent` an upstream gets.
//!
//! A `traceparent` is accepted only as one header of exactly
//! `00-<32 hex>-<16 hex>-<2 hex>` (lower case), whose trace id and parent id are not
//! all zeros; anything else (a second header, upper case, another version, extra
//! fields) is no parent. Refusing nothing, the request then starts a new trace.

use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use rand::RngCore;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// The two names, parsed once (a lookup by `&str` parses the name every time).
pub static TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
pub static TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// A request's parent, as its `traceparent` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// The parent `req` names; `None` when it names none or not exactly one valid one.
pub fn parent(req: &RequestHeader) -> Option<Parent> {
    let mut values = req.headers.get_all(&TRACEPARENT_NAME).iter();
    let (value, None) = (values.next()?, values.next()) else {
        return None;
    };
    parse(value.as_bytes())
}

/// Parses `00-<trace id>-<parent id>-<flags>`.
fn parse(value: &[u8]) -> Option<Parent> {
    if value.len() != 55 || &value[..3] != b"00-" || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flags = [0u8; 1];
    lower_hex(&value[3..35], &mut trace_id)?;
    lower_hex(&value[36..52], &mut span_id)?;
    lower_hex(&value[53..55], &mut flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags[0] & 1 == 1,
    })
}

/// Decodes lower-case hex into `out` (exactly twice its length).
fn lower_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

/// A new, random trace id and span id (neither all zeros), drawn at once.
pub fn new_ids() -> (TraceId, SpanId) {
    let mut bytes = [0u8; 24];
    let mut rng = rand::rng();
    loop {
        rng.fill_bytes(&mut bytes);
        let (trace, span) = bytes.split_at(16);
        if trace != [0; 16] && span != [0; 8] {
            let mut ids = ([0u8; 16], [0u8; 8]);
            ids.0.copy_from_slice(trace);
            ids.1.copy_from_slice(span);
            return ids;
        }
    }
}

/// A new, random span id (never all zeros).
pub fn new_span_id() -> SpanId {
    let mut id = [0u8; 8];
    while id == [0; 8] {
        rand::rng().fill_bytes(&mut id);
    }
    id
}

/// Whether a new trace is sampled at `ratio` (0 to 1): decided by its id, so every
/// process that sees the trace without a parent decides alike.
pub fn sampled_at(ratio: f64, trace_id: &TraceId) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let draw = u64::from_be_bytes(low) >> 11; // 53 bits, as many as an f64 holds
    (draw as f64) < ratio * (1u64 << 53) as f64
}

/// An id's lower-case hex text (`hex::encode` builds it a char at a time).
pub fn hex_text(id: &[u8]) -> String {
    let mut text = vec![0u8; id.len() * 2];
    // `hex` cannot fail on a buffer of twice the id's length; hex digits are UTF-8.
    let _ = hex::encode_to_slice(id, &mut text);
    String::from_utf8(text).unwrap_or_default()
}

/// The `traceparent` of a request sent on behalf of span `span_id`.
pub fn traceparent(trace_id: &TraceId, span_id: &SpanId, sampled: bool) -> HeaderValue {
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    // Lower-case hex of the ids; `hex` cannot fail on a buffer of twice their length.
    let _ = hex::encode_to_slice(trace_id, &mut text[3..35]);
    let _ = hex::encode_to_slice(span_id, &mut text[36..52]);
    if sampled {
        text[54] = b'1';
    }
    // Hex digits and dashes only.
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        for v in values {
            req.append_header(TRACEPARENT, *v).expect("header");
        }
        req
    }

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_parent_is_read_with_its_sampled_flag() {
        let p = parent(&request(&[VALID])).expect("valid");
        assert_eq!(hex::encode(p.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(hex_text(&p.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(hex::encode(p.span_id), "b7ad6b7169203331");
        assert!(p.sampled);
        let unsampled = VALID.replace("-01", "-00");
        assert!(!parent(&request(&[&unsampled])).expect("valid").sampled);
        assert_eq!(
            traceparent(&p.trace_id, &p.span_id, true).to_str().ok(),
            Some(VALID)
        );
    }

    #[test]
    fn anything_but_one_exact_traceparent_is_no_parent() {
        for bad in [
            "",
            "garbage",
            &VALID.to_uppercase(),
            &VALID.replace("00-", "01-"),
            &format!("{VALID}-extra"),
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(parent(&request(&[bad])), None, "{bad:?}");
        }
        assert_eq!(parent(&request(&[VALID, VALID])), None, "two headers");
        assert_eq!(parent(&request(&[])), None);
    }

    #[test]
    fn the_sampling_ratio_is_kept_over_many_traces() {
        let sampled = (0..10_000)
            .filter(|_| sampled_at(0.25, &new_ids().0))
            .count();
        assert!((2_200..2_800).contains(&sampled), "{sampled}");
        assert!(sampled_at(1.0, &[0xff; 16]));
        assert!(!sampled_at(0.0, &new_ids().0));
    }
}
