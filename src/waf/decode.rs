//! Decoding a field's value the way attackers encode it, before detection: percent
//! decoding repeated until nothing changes (at most [`MAX_URL_ROUNDS`], so `%2527` is
//! `'`), `%uXXXX`, HTML entities (named for the characters that matter, decimal and
//! hex), JavaScript and JSON escapes (`\uXXXX`, `\xHH`), overlong UTF-8 for ASCII
//! characters. The views the rules read are made from the result (`views`).
//!
//! Every function is total: any input gives an output no longer than the input (so
//! a field's views are bounded by the field), and nothing here can fail or panic.

use std::borrow::Cow;

/// Rounds of percent decoding at most.
pub const MAX_URL_ROUNDS: usize = 3;

/// Percent decoding (repeated), then escapes, entities and overlong UTF-8, repeated
/// while it changes anything (an entity inside a percent encoding and the reverse).
pub fn decode(value: &[u8]) -> Cow<'_, [u8]> {
    let encoded = value
        .iter()
        .any(|b| matches!(b, b'%' | b'+' | b'\\' | b'&' | 0xC0 | 0xC1));
    if !encoded {
        return Cow::Borrowed(value);
    }
    let mut current = value.to_vec();
    for _ in 0..MAX_URL_ROUNDS {
        let next = overlong_utf8(&html_entities(&js_escapes(&percent(&current))));
        if next == current {
            break;
        }
        current = next;
    }
    Cow::Owned(current)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `n` hex digits at the start of `s`, as a number.
fn hex_number(s: &[u8], n: usize) -> Option<u32> {
    let digits = s.get(..n)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc * 16 + u32::from(hex(d)?)))
}

/// Pushes `c` as UTF-8 (code points that are no characters become U+FFFD).
fn push_char(out: &mut Vec<u8>, c: u32) {
    let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// One round of `%HH`, `%uHHHH` and `+` as a space.
pub fn percent(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let rest = &s[i + 1..];
                if let Some(b) = hex_number(rest, 2) {
                    out.push(b as u8);
                    i += 3;
                    continue;
                }
                if matches!(rest.first(), Some(b'u' | b'U')) {
                    if let Some(c) = hex_number(&rest[1..], 4) {
                        push_char(&mut out, c);
                        i += 6;
                        continue;
                    }
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// `\uHHHH`, `\xHH` and the one-letter escapes of JavaScript and JSON.
pub fn js_escapes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let rest = &s[i + 1..];
            match rest.first() {
                Some(b'u') => {
                    if let Some(c) = hex_number(&rest[1..], 4) {
                        push_char(&mut out, c);
                        i += 6;
                        continue;
                    }
                }
                Some(b'x') => {
                    if let Some(b) = hex_number(&rest[1..], 2) {
                        out.push(b as u8);
                        i += 4;
                        continue;
                    }
                }
                Some(&e @ (b'n' | b'r' | b't' | b'/' | b'"' | b'\'')) => {
                    out.push(match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// The named entities attacks use (what HTML would turn into markup or a URL).
const NAMED: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"amp", b'&'),
    (b"colon", b':'),
    (b"sol", b'/'),
    (b"bsol", b'\\'),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"tab", b'\t'),
    (b"newline", b'\n'),
    (b"semi", b';'),
    (b"equals", b'='),
    (b"period", b'.'),
    (b"grave", b'`'),
];

/// `&#DD;`, `&#xHH;` (the `;` optional, as browsers read them) and [`NAMED`].
pub fn html_entities(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&' {
            if let Some((decoded, used)) = entity(&s[i + 1..]) {
                push_char(&mut out, decoded);
                i += 1 + used;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// The entity at the start of `s` (after `&`): its code point and the bytes it took.
fn entity(s: &[u8]) -> Option<(u32, usize)> {
    if s.first() == Some(&b'#') {
        let (radix, start) = match s.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = s[start..]
            .iter()
            .take(8)
            .take_while(|b| match radix {
                16 => b.is_ascii_hexdigit(),
                _ => b.is_ascii_digit(),
            })
            .count();
        if digits == 0 {
            return None;
        }
        let text = std::str::from_utf8(&s[start..start + digits]).ok()?;
        let c = u32::from_str_radix(text, radix).ok()?;
        let end = start + digits;
        let used = end + usize::from(s.get(end) == Some(&b';'));
        return Some((c, used));
    }
    NAMED.iter().find_map(|(name, c)| {
        let n = name.len();
        let matches = s.len() > n && s[..n].eq_ignore_ascii_case(name) && s[n] == b';';
        matches.then_some((u32::from(*c), n + 1))
    })
}

/// Two-byte overlong encodings of ASCII (`%C0%AE` is `.`), which lenient decoders
/// accept, as the ASCII character.
pub fn overlong_utf8(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if let [a @ (0xC0 | 0xC1), b, ..] = s[i..] {
            if b & 0xC0 == 0x80 {
                out.push(((a & 0x1F) << 6) | (b & 0x3F));
                i += 2;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// `decoded` with each character above U+00FF whose low byte is CR, LF or a space
/// (`Ċ` U+010A, `č` U+010D, `Ġ` U+0120, `嘊` U+560A, ...) as that byte, which is what
/// parsers that keep only a code unit's low byte read; `None` when none is CR or LF.
pub fn truncated_line_breaks(decoded: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(decoded);
    let mut out = Vec::with_capacity(decoded.len());
    let mut breaks = false;
    for c in text.chars() {
        let code = u32::from(c);
        match (code > 0xFF, (code & 0xFF) as u8) {
            (true, low @ (b'\r' | b'\n')) => {
                breaks = true;
                out.push(low);
            }
            (true, b' ') => out.push(b' '),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    breaks.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: &[u8]) -> Vec<u8> {
        decode(s).into_owned()
    }

    #[test]
    fn percent_decoding_is_repeated_and_knows_u_escapes() {
        assert_eq!(decoded(b"%2527%20or%201%3D1"), b"' or 1=1");
        assert_eq!(decoded(b"%252e%252e%252f"), b"../");
        assert_eq!(decoded(b"%u003cscript%u003e"), b"<script>");
        assert_eq!(decoded(b"100%"), b"100%", "a lone % stays");
        assert_eq!(decoded(b"a+b"), b"a b");
    }

    #[test]
    fn entities_escapes_and_overlong_utf8() {
        assert_eq!(
            decoded(b"&lt;svg&#x2f;onload&#61;alert(1)&gt;"),
            b"<svg/onload=alert(1)>"
        );
        assert_eq!(
            decoded(b"javascript&colon;alert&lpar;1&rpar;"),
            b"javascript:alert(1)"
        );
        assert_eq!(
            decoded(b"&#106&#97&#118&#97"),
            b"java",
            "without semicolons"
        );
        assert_eq!(decoded(br"\u003cimg src=x\x3e"), b"<img src=x>");
        assert_eq!(decoded(b"%C0%AE%C0%AE%C0%AF"), b"../");
        assert_eq!(
            decoded(b"Tom &amp Jerry"),
            b"Tom &amp Jerry",
            "no ; no named entity"
        );
    }

    #[test]
    fn decoding_never_grows_nor_panics_on_truncated_escapes() {
        for input in [
            &b"%"[..],
            b"%u12",
            b"\\u12",
            b"\\x",
            b"&#",
            b"&#x;",
            b"&lt",
            b"\xC0",
            b"/*",
            b"--",
            b"&#99999999999;",
        ] {
            assert!(decode(input).len() <= input.len(), "{input:?}");
        }
    }
}
