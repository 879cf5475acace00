//! The fields of a request the WAF inspects, each with its place and name, so that a
//! match names its target (`query:q`, `header:user-agent`, `cookie:session`,
//! `body:/comment` for a JSON body's field by its pointer, `body:name` for a form
//! field or a multipart part) and an exclusion can name it back.
//!
//! Names are inspected too (an attack can be a name: `__proto__[admin]=1`), and a
//! JSON body's keys by their pointer (`/constructor/prototype`, see `json`). A body is read by its
//! media type; one that does not parse as that type (or has a key twice, or more
//! than [`MAX_FIELDS`] fields) is inspected whole, as text, so that what the upstream
//! may read from it is still seen.

use std::borrow::Cow;

/// Fields of one body at most before it is inspected whole.
pub const MAX_FIELDS: usize = 2048;

/// Where a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Path,
    Query,
    Header,
    Cookie,
    Body,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::Query => "query",
            Place::Header => "headers",
            Place::Cookie => "cookies",
            Place::Body => "body",
        }
    }

    /// The prefix of its targets (`header:NAME`).
    fn prefix(self) -> &'static str {
        match self {
            Place::Path => "path",
            Place::Query => "query",
            Place::Header => "header",
            Place::Cookie => "cookie",
            Place::Body => "body",
        }
    }
}

/// One value to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub place: Place,
    /// The field's name (a JSON pointer for a JSON body; empty for the path or a body
    /// inspected whole).
    pub name: Cow<'a, str>,
    pub value: Cow<'a, [u8]>,
}

impl Field<'_> {
    /// `place:name`, or `place` for a field without a name.
    pub fn target(&self) -> String {
        match self.name.is_empty() {
            true => self.place.prefix().to_owned(),
            false => format!("{}:{}", self.place.prefix(), self.name),
        }
    }
}

fn field<'a>(
    place: Place,
    name: impl Into<Cow<'a, str>>,
    value: impl Into<Cow<'a, [u8]>>,
) -> Field<'a> {
    Field {
        place,
        name: name.into(),
        value: value.into(),
    }
}

/// The name of an urlencoded pair, decoded once (as the upstream reads it).
fn decoded_name(raw: &[u8]) -> String {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// `a=1&b=2` pairs: each value, and each name as a value of its own.
pub fn urlencoded<'a>(place: Place, text: &'a [u8], out: &mut Vec<Field<'a>>) {
    for pair in text.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name_text = decoded_name(name);
        out.push(field(place, name_text.clone(), value));
        out.push(field(place, name_text, name));
    }
}

/// `Cookie` header values: `name=value; name2=value2`.
pub fn cookies<'a>(header: &'a [u8], out: &mut Vec<Field<'a>>) {
    for pair in header.split(|&b| b == b';') {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (&b""[..], pair),
        };
        let name = String::from_utf8_lossy(name.trim_ascii()).into_owned();
        out.push(field(Place::Cookie, name.clone(), value.trim_ascii()));
        if !name.is_empty() {
            out.push(field(Place::Cookie, name.clone(), name.into_bytes()));
        }
    }
}

/// How a body is read, from its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
    Multipart {
        boundary: Vec<u8>,
    },
    /// Anything else: JSON if it parses as JSON, else the whole text.
    Other,
}

impl BodyKind {
    pub fn of(content_type: Option<&[u8]>) -> Self {
        let Some(ct) = content_type else {
            return BodyKind::Other;
        };
        let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
        let mut parts = ct.split(';');
        let media = parts.next().unwrap_or("").trim();
        match media {
            "application/x-www-form-urlencoded" => BodyKind::Form,
            "multipart/form-data" => {
                let boundary = parts.find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == "boundary").then(|| v.trim().trim_matches('"').to_owned())
                });
                // The boundary as sent (case matters in it).
                let original = content_type
                    .and_then(|raw| original_case(raw, boundary.as_deref()?))
                    .unwrap_or_default();
                match original.is_empty() {
                    true => BodyKind::Other,
                    false => BodyKind::Multipart { boundary: original },
                }
            }
            m if m == "application/json" || m.ends_with("+json") => BodyKind::Json,
            _ => BodyKind::Other,
        }
    }
}

/// `lower` (a lower-cased piece of `raw`) as `raw` spells it.
fn original_case(raw: &[u8], lower: &str) -> Option<Vec<u8>> {
    let at = raw
        .windows(lower.len().max(1))
        .rposition(|w| w.eq_ignore_ascii_case(lower.as_bytes()))?;
    Some(raw[at..at + lower.len()].to_vec())
}

/// The body's fields; `false` when it was inspected whole (it did not parse as its
/// type, or had too many fields).
pub fn body<'a>(kind: &BodyKind, body: &'a [u8], out: &mut Vec<Field<'a>>) -> bool {
    let start = out.len();
    let parsed = match kind {
        BodyKind::Form => {
            urlencoded(Place::Body, body, out);
            true
        }
        BodyKind::Json => super::json::fields(body, MAX_FIELDS, out),
        BodyKind::Multipart { boundary } => multipart(body, boundary, out),
        BodyKind::Other => {
            let looks_like_json = matches!(body.trim_ascii_start().first(), Some(b'{' | b'['));
            looks_like_json && super::json::fields(body, MAX_FIELDS, out)
        }
    };
    if parsed && out.len() - start <= MAX_FIELDS {
        return true;
    }
    out.truncate(start);
    out.push(field(Place::Body, "", body));
    false
}

/// A multipart body's parts by name: each part's content, its name and its file name;
/// `false` when it does not parse strictly.
fn multipart<'a>(body: &'a [u8], boundary: &[u8], out: &mut Vec<Field<'a>>) -> bool {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let Some(first) = find(body, &delimiter) else {
        return false;
    };
    let mut rest = &body[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return true;
        }
        let Some(after_eol) = strip_eol(rest) else {
            return false;
        };
        let Some(head_end) = find(after_eol, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| find(after_eol, b"\n\n").map(|i| (i, 2)))
        else {
            return false;
        };
        let head = &after_eol[..head_end.0];
        let content_and_rest = &after_eol[head_end.0 + head_end.1..];
        let Some(end) = find(content_and_rest, &delimiter) else {
            return false;
        };
        let mut content = &content_and_rest[..end];
        content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let (name, filename) = disposition(head);
        out.push(field(Place::Body, name.clone(), content));
        out.push(field(Place::Body, name.clone(), name.clone().into_bytes()));
        if let Some(filename) = filename {
            out.push(field(Place::Body, name, filename.into_bytes()));
        }
        // Part headers other than the disposition (a part's content type) are values too.
        out.push(field(Place::Body, "", head));
        rest = &content_and_rest[end + delimiter.len()..];
    }
}

fn strip_eol(s: &[u8]) -> Option<&[u8]> {
    s.strip_prefix(b"\r\n").or_else(|| s.strip_prefix(b"\n"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// A part's `name` and `filename` from its `Content-Disposition`.
fn disposition(head: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(head);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .unwrap_or("");
    let param = |key: &str| {
        line.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    (param("name").unwrap_or_default(), param("filename"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(fields: &[Field<'_>]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| (f.target(), String::from_utf8_lossy(&f.value).into_owned()))
            .collect()
    }

    #[test]
    fn query_pairs_and_their_names() {
        let mut out = Vec::new();
        urlencoded(
            Place::Query,
            b"q=a%27b&__proto__%5Badmin%5D=1&flag",
            &mut out,
        );
        let got = targets(&out);
        assert!(got.contains(&("query:q".into(), "a%27b".into())));
        assert!(got.contains(&(
            "query:__proto__[admin]".into(),
            "__proto__%5Badmin%5D".into()
        )));
        assert!(got.contains(&("query:flag".into(), "".into())));
    }

    #[test]
    fn json_fields_by_pointer_and_keys_as_paths() {
        let mut out = Vec::new();
        let body = br#"{"a":{"b/c":["x",2]},"constructor":{"prototype":{}}}"#;
        assert!(super::body(&BodyKind::Json, body, &mut out));
        let got = targets(&out);
        assert!(
            got.contains(&("body:/a/b~1c/0".into(), "x".into())),
            "{got:?}"
        );
        assert!(
            !got.iter().any(|(_, value)| value == "2"),
            "numbers carry no text"
        );
        assert!(got.contains(&(
            "body:/constructor/prototype".into(),
            "/constructor/prototype".into()
        )));
    }

    #[test]
    fn a_body_that_does_not_parse_or_repeats_a_key_is_inspected_whole() {
        for body in [&br#"{"q":"' or 1=1--","q":"fine"}"#[..], br#"{"q": "#] {
            let mut out = Vec::new();
            assert!(!super::body(&BodyKind::Json, body, &mut out));
            assert_eq!(
                targets(&out),
                [(
                    "body".to_owned(),
                    String::from_utf8_lossy(body).into_owned()
                )]
            );
        }
    }

    #[test]
    fn multipart_parts_by_name_with_file_names() {
        let kind = BodyKind::of(Some(b"multipart/form-data; boundary=\"XyZ\""));
        assert_eq!(
            kind,
            BodyKind::Multipart {
                boundary: b"XyZ".to_vec()
            }
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../x.php\"\r\n\
                     Content-Type: text/plain\r\n\r\n<?php system($_GET[1]); ?>\r\n--XyZ--\r\n";
        let mut out = Vec::new();
        assert!(super::body(&kind, body, &mut out));
        let got = targets(&out);
        assert!(
            got.contains(&("body:title".into(), "hello".into())),
            "{got:?}"
        );
        assert!(got.contains(&("body:f".into(), "../../x.php".into())));
        assert!(got.contains(&("body:f".into(), "<?php system($_GET[1]); ?>".into())));
        let mut out = Vec::new();
        assert!(!super::body(&kind, b"--XyZ\r\nno end", &mut out), "strict");
    }

    #[test]
    fn cookies_by_name() {
        let mut out = Vec::new();
        cookies(b"session=abc; theme = dark ;lone", &mut out);
        let got = targets(&out);
        assert!(got.contains(&("cookie:session".into(), "abc".into())));
        assert!(got.contains(&("cookie:theme".into(), "dark".into())));
        assert!(got.contains(&("cookie".into(), "lone".into())));
    }
}
