//! The views of a decoded value that the rules read: lower case with whitespace
//! compressed (`plain`), SQL with its comments removed, and a command line as a shell
//! reads it, with the characters shells ignore removed (`c'a't`, `c\at`, `c^at`); the
//! last two only where they differ from `plain`. Made in one pass over the value,
//! which also finds the characters some checks need to run at all ([`Marks`]).
//!
//! Total: any input gives views no longer than the input, and nothing here can fail.

use std::borrow::Cow;

use super::decode::decode;

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

    fn views(s: &str) -> Views<'_> {
        Views::of(s.as_bytes(), false)
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
    fn views_are_no_longer_than_the_value() {
        for input in ["%", "/*", "--", "a\\\nb", "$()x", "%C0%AE", "&lt;b&gt;"] {
            let v = views(input);
            for view in [&v.decoded[..], &v.plain, v.sql(), v.cmd()] {
                assert!(view.len() <= input.len(), "{input:?}: {view:?}");
            }
        }
    }
}
