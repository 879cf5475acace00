//! Decoding a field's value the way attackers encode it, before detection: percent
//! decoding repeated until nothing changes (at most [`MAX_URL_ROUNDS`], so `%2527` is
//! `'`), `%uXXXX`, HTML entities (named for the characters that matter, decimal and
//! hex), JavaScript and JSON escapes (`\uXXXX`, `\xHH`), overlong UTF-8 for ASCII
//! characters, then lower case and whitespace compressed. Two more views serve one
//! family of rules each: SQL with its comments removed, and a command line with the
//! characters shells ignore removed (`c'a't`, `c\at`, `c^at`).
//!
//! Every function is total: any input gives an output no longer than the input (so
//! a field's views are bounded by the field), and nothing here can fail or panic.

use std::borrow::Cow;

/// Rounds of percent decoding at most.
pub const MAX_URL_ROUNDS: usize = 3;

/// The views of one value that the detectors read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Views<'a> {
    /// Decoded (percent, entities, escapes, overlong UTF-8), case kept: for
    /// libinjection, which knows SQL's and HTML's own syntax. Borrowed where nothing
    /// needed decoding.
    pub decoded: Cow<'a, [u8]>,
    /// `decoded`, lower case, runs of whitespace as one space.
    pub plain: Vec<u8>,
    /// `plain` without SQL comments (`/* */`, `-- `, `#` to the end of a line);
    /// `None` where that is `plain` (no comment).
    sql: Option<Vec<u8>>,
    /// The decoded value as a shell reads it: quotes, backslashes and carets removed,
    /// line breaks as `;`, lower case; `None` where that is `plain`.
    cmd: Option<Vec<u8>>,
    /// What some checks need at least, found in the same pass.
    pub marks: Marks,
}

/// Characters of the decoded value that some checks need to run at all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// CR, LF or NUL (which the plain view turns into spaces).
    pub control: bool,
    /// A character a shell removes from a word: `'`, `"`, `\`, `^`, `$`.
    pub shell_quotes: bool,
    /// A byte above ASCII.
    pub non_ascii: bool,
    /// A colon (a scheme's, a port's).
    pub colon: bool,
}

impl<'a> Views<'a> {
    /// The views of `value`; `in_body` for a body's field, whose line breaks and
    /// backticks are prose and Markdown rather than command separators.
    pub fn of(value: &'a [u8], in_body: bool) -> Self {
        let decoded = decode(value);
        // One pass: the plain view, and what says whether the other views differ
        // from it (comments end at line breaks, so they are found before whitespace
        // is compressed).
        let mut plain = Vec::with_capacity(decoded.len());
        let mut marks = Marks::default();
        let (mut comments, mut shell) = (false, false);
        let (mut previous, mut in_space) = (0u8, false);
        for &b in decoded.iter() {
            match b {
                b'#' => comments = true,
                b'*' if previous == b'/' => comments = true,
                b'-' if previous == b'-' => comments = true,
                b'\\' | b'"' | b'\'' | b'^' | b'$' => {
                    shell = true;
                    marks.shell_quotes = true;
                }
                b'`' => shell = true,
                b'\n' | b'\r' | 0 => {
                    shell |= b != 0;
                    marks.control = true;
                }
                b'/' | b'(' if in_space => shell = true,
                b':' => marks.colon = true,
                0x80..=0xFF => marks.non_ascii = true,
                _ => {}
            }
            let space = is_space(b);
            if !space {
                plain.push(b.to_ascii_lowercase());
            } else if !in_space {
                plain.push(b' ');
            }
            (previous, in_space) = (b, space);
        }
        let sql = comments
            .then(|| compress_whitespace(&remove_sql_comments(&decoded.to_ascii_lowercase())));
        let cmd = shell.then(|| command_line(&decoded, in_body));
        Self {
            decoded,
            plain,
            sql,
            cmd,
            marks,
        }
    }

    /// `plain` without SQL comments.
    pub fn sql(&self) -> &[u8] {
        self.sql.as_deref().unwrap_or(&self.plain)
    }

    /// The value as a shell reads it.
    pub fn cmd(&self) -> &[u8] {
        self.cmd.as_deref().unwrap_or(&self.plain)
    }

    /// The plain view, and the SQL and shell views where they differ from it.
    pub fn distinct(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.plain[..])
            .chain(self.sql.as_deref())
            .chain(self.cmd.as_deref())
    }
}

/// Whitespace as the plain view compresses it (NUL, vertical tab and form feed too).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0 | 0x0B | 0x0C)
}

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

/// Runs of whitespace (and NUL, vertical tab, form feed) as one space.
pub fn compress_whitespace(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut in_space = false;
    for &b in s {
        let space = is_space(b);
        if space {
            if !in_space {
                out.push(b' ');
            }
        } else {
            out.push(b);
        }
        in_space = space;
    }
    out
}

/// SQL comments removed: `/* ... */` (unterminated: to the end), and `--` or `#` to
/// the end of the line. Each comment leaves a space, as SQL reads it.
pub fn remove_sql_comments(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with(b"/*") {
            let end = rest[2..].windows(2).position(|w| w == b"*/");
            i += end.map_or(rest.len(), |e| e + 4);
            out.push(b' ');
            continue;
        }
        if rest.starts_with(b"--") || rest[0] == b'#' {
            let end = rest.iter().position(|&b| b == b'\n');
            i += end.unwrap_or(rest.len());
            out.push(b' ');
            continue;
        }
        out.push(rest[0]);
        i += 1;
    }
    out
}

/// As a shell reads a command: `\\`, `"`, `'` and `^` removed (a backslash before a
/// line break removes both: a continued line), empty expansions (`$()`, `${}`, `$@`)
/// removed, line breaks as `;` (they separate commands; in a body, prose, they are
/// spaces, and backticks Markdown, removed), spaces before `/` and `(` removed,
/// whitespace compressed, lower case.
pub fn command_line(s: &[u8], in_body: bool) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let removed = match rest {
            [b'\\', b'\n', ..] | [b'$', b'@', ..] => 2,
            [b'$', b'(', b')', ..] | [b'$', b'{', b'}', ..] => 3,
            _ => 0,
        };
        if removed > 0 {
            i += removed;
            continue;
        }
        match rest[0] {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b'`' if in_body => {}
            b'\n' | b'\r' if in_body => out.push(b' '),
            b'\n' | b'\r' => out.push(b';'),
            b'/' | b'(' => {
                while matches!(out.last(), Some(b' ' | b'\t')) {
                    out.pop();
                }
                out.push(rest[0]);
            }
            b => out.push(b.to_ascii_lowercase()),
        }
        i += 1;
    }
    compress_whitespace(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: &[u8]) -> Vec<u8> {
        decode(s).into_owned()
    }

    fn views(s: &str) -> Views<'_> {
        Views::of(s.as_bytes(), false)
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
    fn the_views_lower_case_compress_and_strip() {
        let v = views("UNION/**/SELECT\t\n password -- x");
        assert_eq!(v.plain, b"union/**/select password -- x");
        assert_eq!(v.sql(), b"union select password ");
        let v = views("x\nc'a't /e\"t\"c/pa\\sswd;i^d");
        assert_eq!(v.cmd(), b"x;cat/etc/passwd;id");
        let v = views("cat /et\\\nc/pa\\\nsswd; who$()ami");
        assert_eq!(v.cmd(), b"cat/etc/passwd; whoami");
        let body = Views::of(b"```bash\nnpm ci\n```", true);
        assert_eq!(body.cmd(), b"bash npm ci ");
    }

    #[test]
    fn nothing_grows_and_nothing_panics_on_truncated_escapes() {
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
            let v = Views::of(input, false);
            assert!(v.decoded.len() <= input.len(), "{input:?}");
        }
    }
}
