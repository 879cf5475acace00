//! The normalized path: computed once per request, before routing. Routing,
//! authentication, limits, every policy and the upstream see this one spelling, so a
//! path cannot mean one thing to tollgate and another to the upstream.
//!
//! The rules, in order (`[server]` settings in brackets):
//! - escapes of unreserved characters (RFC 3986 §2.3: letters, digits, `-._~`) are
//!   decoded; every other escape is kept, upper-cased (`%2f` → `%2F`);
//! - `%2F`, `%5C` and `\` follow [`EscapedSlashes`] (`escaped_slashes`): refused,
//!   decoded to `/`, or kept as `%2F` / `%5C` and never a segment boundary;
//! - repeated slashes are merged (`merge_slashes`);
//! - a NUL or control character, raw or encoded, a `%` without two hex digits, and
//!   (`double_encoding = "reject"`) `%25` followed by two hex digits are refused;
//!   with `"keep"`, a double-encoded NUL or control, and a double-encoded slash unless
//!   escaped slashes are kept, are refused too;
//! - a `.` or `..` segment is refused, however it is spelled: encoded, double-encoded
//!   (`%252e`), with `;params` (`..;x`), behind a kept escaped slash (`..%2F`), or
//!   padded with dots and spaces (`...`, `..%20`, which Windows servers trim to `..`);
//! - with `merge_slashes`, a segment made of `;params` only (`/;x/admin`) is refused:
//!   servers that drop path parameters turn it into an empty segment;
//! - for matching, a segment's `;params` are ignored (`/admin;x=1/y` is under
//!   `/admin`), an encoded `%3B` counting as `;`; the path is forwarded with them;
//! - other bytes outside RFC 3986's path characters (non-ASCII, `"`, `<`, `>`, `^`,
//!   `` ` ``, `{`, `|`, `}`) are percent-encoded.
//!
//! The result is idempotent: normalizing it again gives it back. Pure code, no I/O;
//! a refusal is a [`PathError`], answered 400.

use http::StatusCode;
use std::borrow::Cow;

use crate::base::Reply;

/// `escaped_slashes`: what `%2F`, `%5C` and `\` in a path become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// 400.
    Reject,
    /// A `/`.
    Decode,
    /// Kept escaped, never a segment boundary.
    Keep,
}

/// `double_encoding`: `%25` followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoubleEncoding {
    /// 400.
    Reject,
    Keep,
}

/// The `[server]` settings normalization follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub escaped_slashes: EscapedSlashes,
    pub merge_slashes: bool,
    pub double_encoding: DoubleEncoding,
}

impl Default for PathRules {
    /// The strict defaults: escaped slashes and double encoding refused, slashes merged.
    fn default() -> Self {
        Self {
            escaped_slashes: EscapedSlashes::Reject,
            merge_slashes: true,
            double_encoding: DoubleEncoding::Reject,
        }
    }
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the path has a '%' that is not followed by two hex digits")]
    BadEscape,
    #[error("the path contains a NUL or control character")]
    ControlCharacter,
    #[error("the path contains a double-encoded escape (%25 followed by two hex digits)")]
    DoubleEncoded,
    #[error("the path contains an encoded slash (%2F), an encoded backslash (%5C) or a backslash")]
    EscapedSlash,
    #[error("the path contains '.' or '..' segments")]
    DotSegment,
    #[error("the path has a segment made of ';' parameters only")]
    ParametersOnlySegment,
}

impl From<PathError> for Reply {
    /// Like every malformed request, it closes its connection.
    fn from(e: PathError) -> Self {
        Reply::new(StatusCode::BAD_REQUEST, e.to_string()).closing()
    }
}

/// The normalized form of `raw`, a path that starts with `/` (no query).
pub fn normalize(raw: &[u8], rules: &PathRules) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len() + 8);
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        i += 1;
        match b {
            b'%' => {
                let v = escape_at(raw, i).ok_or(PathError::BadEscape)?;
                i += 2;
                match v {
                    _ if is_unreserved(v) => out.push(char::from(v)),
                    0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    b'/' | b'\\' => escaped_slash(&mut out, v, rules)?,
                    b'%' if rules.double_encoding == DoubleEncoding::Reject
                        && hex_digits_follow(raw, i) =>
                    {
                        return Err(PathError::DoubleEncoded)
                    }
                    _ => push_escape(&mut out, v),
                }
            }
            b'\\' => escaped_slash(&mut out, b, rules)?,
            b'/' => push_slash(&mut out, rules.merge_slashes),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            _ if is_path_char(b) => out.push(char::from(b)),
            _ => push_escape(&mut out, b),
        }
    }
    check_segments(&out, rules)?;
    Ok(out)
}

/// Whether `path` (normalized) starts with the segments of `prefix` (normalized,
/// without trailing slash). A segment's `;params` do not hide it: `/admin;x=1/y`
/// starts with `/admin`. The definition the route tree (`routing`) and the fuzz
/// target's properties are checked against.
#[cfg(any(test, fuzzing))]
pub fn has_prefix(path: &str, prefix: &str) -> bool {
    let mut rest = path;
    for want in prefix.split('/').skip(1) {
        let Some(after_slash) = rest.strip_prefix('/') else {
            return false;
        };
        let end = after_slash.find('/').unwrap_or(after_slash.len());
        let (segment, tail) = after_slash.split_at(end);
        if without_params(segment) != want {
            return false;
        }
        rest = tail;
    }
    rest.is_empty() || rest.starts_with('/')
}

/// The segments of `path` (normalized) without their `;params`, as a route's prefix
/// would name them: `/admin;x=1/y` → `admin`, `y`; `/` → one empty segment.
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    rest.split('/').map(without_params)
}

/// `path` without its first `n` segments (parameters included): `/api;v=2/x` less one
/// segment is `/x`; nothing left is `/`.
pub fn strip_segments(path: &str, n: usize) -> &str {
    let mut rest = path;
    for _ in 0..n {
        let after_slash = rest.strip_prefix('/').unwrap_or(rest);
        rest = &after_slash[after_slash.find('/').unwrap_or(after_slash.len())..];
    }
    if rest.is_empty() {
        "/"
    } else {
        rest
    }
}

/// The value of the escape whose two hex digits start at `i`.
fn escape_at(raw: &[u8], i: usize) -> Option<u8> {
    let hi = char::from(*raw.get(i)?).to_digit(16)?;
    let lo = char::from(*raw.get(i + 1)?).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Whether the two characters from `i` are hex digits once their unreserved escapes
/// are decoded: `%25` before `41` or before `%34%31` is double encoding either way.
fn hex_digits_follow(raw: &[u8], mut i: usize) -> bool {
    for _ in 0..2 {
        let c = match raw.get(i) {
            Some(b'%') => match escape_at(raw, i + 1) {
                Some(v) => {
                    i += 3;
                    v
                }
                None => return false,
            },
            Some(&b) => {
                i += 1;
                b
            }
            None => return false,
        };
        if !c.is_ascii_hexdigit() {
            return false;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` without `%` (handled apart), plus `/`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

fn push_slash(out: &mut String, merge: bool) {
    if !(merge && out.ends_with('/')) {
        out.push('/');
    }
}

/// `%2F`, `%5C` (`b` is the decoded byte) or a raw `\`.
fn escaped_slash(out: &mut String, b: u8, rules: &PathRules) -> Result<(), PathError> {
    match rules.escaped_slashes {
        EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
        EscapedSlashes::Decode => push_slash(out, rules.merge_slashes),
        EscapedSlashes::Keep => push_escape(out, b),
    }
    Ok(())
}

/// A segment without its parameters: up to the first `;`, or `%3B` (for servers that
/// decode the path before they drop parameters).
fn without_params(segment: &str) -> &str {
    let end = [segment.find(';'), segment.find("%3B")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(segment.len());
    &segment[..end]
}

fn check_segments(path: &str, rules: &PathRules) -> Result<(), PathError> {
    for segment in path.split('/').skip(1) {
        if rules.merge_slashes && !segment.is_empty() && without_params(segment).is_empty() {
            return Err(PathError::ParametersOnlySegment);
        }
        check_decoded(segment, rules)?;
    }
    Ok(())
}

/// Escape levels undone when checking a segment; a deeper chain is refused.
const MAX_DECODE_ROUNDS: usize = 4;

/// Checks `segment` as an upstream that decodes it as often as it can would read it
/// (its kept escapes; `%252e` under `double_encoding = "keep"`): no `.` or `..`
/// piece once split at slashes and backslashes and stripped of `;params`, no control
/// character, and no slash or backslash unless escaped slashes are kept.
fn check_decoded(segment: &str, rules: &PathRules) -> Result<(), PathError> {
    if !segment.contains('.') && !segment.contains("%25") {
        return Ok(());
    }
    let mut decoded = Cow::Borrowed(segment);
    let mut rounds = 0;
    while decoded.contains('%') {
        let next = decode_once(&decoded);
        if next == decoded {
            break;
        }
        rounds += 1;
        if rounds > MAX_DECODE_ROUNDS {
            return Err(PathError::DoubleEncoded);
        }
        decoded = Cow::Owned(next);
    }
    if decoded.chars().any(|c| c.is_ascii_control()) {
        return Err(PathError::ControlCharacter);
    }
    let slash = |c: char| c == '/' || c == '\\';
    if rules.escaped_slashes != EscapedSlashes::Keep && decoded.contains(slash) {
        return Err(PathError::EscapedSlash);
    }
    let dot = decoded
        .split(slash)
        .any(|piece| is_dot_name(without_params(piece)));
    match dot {
        true => Err(PathError::DotSegment),
        false => Ok(()),
    }
}

/// `.` and `..`, and names made of dots and spaces only (`...`, `.. `): servers that
/// trim trailing dots and spaces from a segment (Windows) read those as `.` or `..`.
fn is_dot_name(name: &str) -> bool {
    name.contains('.') && name.chars().all(|c| c == '.' || c == ' ')
}

fn decode_once(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (b, escape_at(bytes, i + 1)) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every combination of the settings.
#[cfg(any(test, fuzzing))]
pub fn all_rules() -> Vec<PathRules> {
    let mut out = Vec::new();
    for escaped_slashes in [
        EscapedSlashes::Reject,
        EscapedSlashes::Decode,
        EscapedSlashes::Keep,
    ] {
        for merge_slashes in [true, false] {
            for double_encoding in [DoubleEncoding::Reject, DoubleEncoding::Keep] {
                out.push(PathRules {
                    escaped_slashes,
                    merge_slashes,
                    double_encoding,
                });
            }
        }
    }
    out
}

/// Panics where normalizing `/` + `data` breaks a property the rest of tollgate relies
/// on, under any settings: what is accepted normalizes to itself, is visible ASCII,
/// and with the defaults holds no `//`, dot segment, `%2F`, `%5C` or `\`. For the fuzz
/// target (`fuzz/`) and the unit tests, which replay its corpus.
#[cfg(any(test, fuzzing))]
pub fn check_properties(data: &[u8]) {
    let mut raw = Vec::with_capacity(data.len() + 1);
    raw.push(b'/');
    raw.extend_from_slice(data);
    for rules in all_rules() {
        let Ok(out) = normalize(&raw, &rules) else {
            continue;
        };
        let again = normalize(out.as_bytes(), &rules);
        assert_eq!(
            again.as_deref(),
            Ok(out.as_str()),
            "{raw:?} under {rules:?}"
        );
        assert!(out.bytes().all(|b| b.is_ascii_graphic()), "{out:?}");
        if rules == PathRules::default() {
            for bad in ["//", "%2F", "%5C", "\\"] {
                assert!(!out.contains(bad), "{raw:?} -> {out:?}");
            }
            for segment in out.split('/') {
                let name = without_params(segment);
                assert!(name != "." && name != "..", "{raw:?} -> {out:?}");
            }
        }
        has_prefix(&out, "/admin");
        strip_segments(&out, 2);
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
