//! Injection detection: the engine behind the `waf` stage (`policy::waf`). A request's
//! fields (`fields`: path, query parameters, headers, cookies, form fields, JSON
//! fields by pointer (`json`), multipart parts) are decoded the ways attackers encode
//! them (`decode`), seen as SQL and shells read them (`views`), then read by the rules
//! (`rules`): libinjection's SQL and XSS tokenizers (the `libinjectionrs` port, made
//! to count at paranoia 1 by `corroboration`) and tollgate's own patterns, each
//! guarded by literals so that a clean value costs little. Each matched rule adds its
//! severity to the request's anomaly score once.
//!
//! The engine is compiled once per process ([`Engine::shared`]); it holds no state
//! per request and cannot fail on any input (a value it cannot decode is read as
//! bytes).

mod catalog;
mod corroboration;
pub mod decode;
pub mod fields;
mod json;
pub mod request;
pub mod rules;
mod shell;
mod ssrf;
mod views;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind};
use regex::bytes::Regex;
use std::sync::OnceLock;

use corroboration::{
    ACTIVE_MARKUP, ACTIVE_MARKUP_LITERALS, LINE_BREAK_HEADER, SQL_SYNTAX, SQL_SYNTAX_LITERALS,
};
use fields::Field;
use rules::{Check, Rule, View};
use views::Views;

/// Each rule's expression's lazy DFA cache at most (the default, 2 MiB, times some
/// 60 expressions would be most of a gateway's memory).
const DFA_CACHE: usize = 64 * 1024;
/// The cache of the two corroborating expressions, which run on most values: large
/// enough that their DFAs, built once, are not thrown away and rebuilt.
const HOT_DFA_CACHE: usize = 1024 * 1024;

/// Bytes of a value quoted in a match's excerpt at most.
pub const MAX_EXCERPT: usize = 64;

/// The rules [`Engine::inspect`] leaves out: those matched already (by their index in
/// [`Engine::rules`]), and those `excluded` says.
#[derive(Clone, Copy)]
pub struct Skip<'a> {
    pub done: u128,
    pub excluded: Option<&'a dyn Fn(&Rule) -> bool>,
}

impl Skip<'_> {
    pub const NONE: Skip<'static> = Skip {
        done: 0,
        excluded: None,
    };
}

/// A rule that matched one field.
#[derive(Debug, Clone)]
pub struct Match {
    pub rule: &'static Rule,
    /// The rule's place in [`Engine::rules`].
    pub index: usize,
    /// `place:name` (see `fields`).
    pub target: String,
    /// Where in the decoded value it matched, at most [`MAX_EXCERPT`] bytes, control
    /// characters escaped.
    pub excerpt: String,
}

/// The rules compiled: their expressions, and one automaton over their literals.
pub struct Engine {
    rules: Vec<Rule>,
    regexes: Vec<Option<Regex>>,
    /// The automaton over the rules' literals, and the rule of each literal.
    prefilter: AhoCorasick,
    owners: Vec<usize>,
    /// The rules with a line break or NUL among their literals.
    control_owners: u128,
    /// The rules without literals (libinjection's uncorroborated and the native
    /// checks).
    unguarded: u128,
    /// What makes libinjection's findings count at paranoia 1 (see `Check`).
    sql_syntax: Regex,
    /// A line break and a header or request line, after truncation (`921160`).
    line_break_header: Regex,
    active_markup: Regex,
}

impl Engine {
    /// The rule set, compiled on first use.
    pub fn shared() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| Engine::new(catalog::all()))
    }

    fn new(rules: Vec<Rule>) -> Self {
        assert!(rules.len() <= 128, "candidates are a u128");
        let regexes = rules
            .iter()
            .map(|r| match r.check {
                // The patterns are constants, tested to compile.
                Check::Pattern { pattern, .. } => Some(compile(pattern, DFA_CACHE)),
                _ => None,
            })
            .collect();
        // One automaton over every rule's literals (lower case, as the views it
        // reads), run on the plain view and on the SQL and shell views where they
        // differ from it. Line breaks and NUL, which the plain view turns into spaces,
        // are looked for in the decoded value. A literal found in the wrong view only
        // runs a rule's expression for nothing.
        let mut literals = Vec::new();
        let mut owners = Vec::new();
        let mut control_owners: u128 = 0;
        for (i, rule) in rules.iter().enumerate() {
            if let Some(l) = guard(&rule.check) {
                for literal in l {
                    match literal.bytes().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                        true => control_owners |= 1 << i,
                        false => {
                            literals.push(*literal);
                            owners.push(i);
                        }
                    }
                }
            }
        }
        let unguarded = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| guard(&r.check).is_none())
            .fold(0u128, |mask, (i, _)| mask | 1 << i);
        // A DFA (900 KB, once per process): 12% fewer instructions per request than
        // the contiguous NFA (80 KB). Without a prefilter: short literals (`'`, `=`)
        // bring an overlapping search (every literal found) back to its start state
        // at most bytes, and each return there would call one.
        let prefilter = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&literals)
            .expect("literals build an automaton");
        Self {
            rules,
            regexes,
            prefilter,
            owners,
            control_owners,
            unguarded,
            sql_syntax: compile(SQL_SYNTAX, HOT_DFA_CACHE),
            line_break_header: compile(LINE_BREAK_HEADER, DFA_CACHE),
            active_markup: compile(ACTIVE_MARKUP, HOT_DFA_CACHE),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Runs the rules of paranoia `paranoia` or lower on `field`, except those `skip`
    /// says (matched already, or excluded), adding what matched to `out`.
    pub fn inspect(
        &'static self,
        field: &Field<'_>,
        paranoia: u8,
        skip: Skip<'_>,
        out: &mut Vec<Match>,
    ) {
        if field.value.is_empty() {
            return;
        }
        let views = Views::of(&field.value, field.place == fields::Place::Body);
        let structured = rules::is_structured(field.place, &field.name);
        let marks = views.marks;
        let mut candidates: u128 = 0;
        for text in views.distinct() {
            for found in self.prefilter.find_overlapping_iter(text) {
                candidates |= 1 << self.owners[found.pattern().as_usize()];
            }
        }
        if marks.control {
            candidates |= self.control_owners;
        }
        // The rules to run: those whose literals are there, and those without any.
        let mut to_run = (candidates | self.unguarded) & !skip.done;
        while to_run != 0 {
            let i = to_run.trailing_zeros() as usize;
            to_run &= to_run - 1;
            let rule = &self.rules[i];
            let runs = rule.paranoia <= paranoia
                && rule.scope.covers(field.place, &field.name, structured);
            if !runs || skip.excluded.is_some_and(|excluded| excluded(rule)) {
                continue;
            }
            let found = match rule.check {
                // The corroboration first: a scan, where libinjection tokenizes.
                Check::Sqli { corroborated } => ((!corroborated
                    || self.sql_syntax.is_match(&views.plain))
                    && libinjectionrs::detect_sqli(&views.decoded).is_injection())
                .then_some((&views.decoded[..], 0..views.decoded.len())),
                Check::Xss { corroborated } => ((!corroborated
                    || self.active_markup.is_match(&views.plain))
                    && libinjectionrs::detect_xss(&views.decoded).is_injection())
                .then_some((&views.decoded[..], 0..views.decoded.len())),
                Check::Ssrf { private_networks } => (marks.colon
                    && ssrf::reaches_inside(&views.plain, private_networks))
                .then_some((&views.plain[..], 0..views.plain.len())),
                Check::TruncatedLineBreak => marks
                    .non_ascii
                    .then(|| decode::truncated_line_breaks(&views.decoded))
                    .flatten()
                    .filter(|text| self.line_break_header.is_match(text))
                    .map(|_| (&views.decoded[..], 0..views.decoded.len())),
                Check::SpelledCommand => (marks.shell_quotes
                    && shell::spelled_command(&views.plain))
                .then_some((&views.plain[..], 0..views.plain.len())),
                Check::Literals { view, .. } => {
                    let text = view_of(&views, view);
                    Some((text, 0..text.len()))
                }
                Check::Pattern { view, .. } => {
                    let text = view_of(&views, view);
                    self.regexes[i]
                        .as_ref()
                        .and_then(|r| r.find(text))
                        .map(|m| (text, m.range()))
                }
            };
            if let Some((text, range)) = found {
                out.push(Match {
                    rule,
                    index: i,
                    target: field.target(),
                    excerpt: excerpt(text, range),
                });
            }
        }
    }
}

/// The literals one of which a value needs for `check` to run: a pattern's, and the
/// corroboration's for libinjection at paranoia 1.
fn guard(check: &Check) -> Option<&'static [&'static str]> {
    match *check {
        Check::Pattern { literals, .. } | Check::Literals { literals, .. } => Some(literals),
        Check::Sqli { corroborated: true } => Some(SQL_SYNTAX_LITERALS),
        Check::Xss { corroborated: true } => Some(ACTIVE_MARKUP_LITERALS),
        _ => None,
    }
}

/// A constant pattern (the rules', tested to compile) as bytes, ASCII classes, its
/// lazy DFA's cache at most `cache` bytes.
fn compile(pattern: &str, cache: usize) -> Regex {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .dfa_size_limit(cache)
        .build()
        .expect("a constant pattern compiles")
}

/// Runs everything the WAF does to untrusted bytes on `data`, at the highest
/// paranoia: the fuzz target's body (`fuzz/`), replayed on its corpus by the tests.
/// The first byte picks how the rest is read: as a body of one of the media types,
/// or as a value in one of the head's places.
#[cfg(any(test, fuzzing))]
pub fn exercise(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let settings = request::Settings::everywhere(4);
    let mut inspection = request::Inspection::default();
    let content_types: [&[u8]; 4] = [
        b"application/json",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=b",
        b"text/plain",
    ];
    match selector % 8 {
        n @ 0..=3 => {
            let fields = request::body_fields(Some(content_types[n as usize]), rest);
            inspection.read(&settings, None, &fields);
        }
        4 => {
            let text = String::from_utf8_lossy(rest);
            let fields = request::head_fields(&text, Some(rest), std::iter::empty());
            inspection.read(&settings, None, &fields);
        }
        5 => {
            let headers = [("cookie", rest), ("user-agent", rest), ("range", rest)];
            let fields = request::head_fields("/", None, headers.into_iter());
            inspection.read(&settings, None, &fields);
        }
        _ => {
            let views = Views::of(rest, selector % 2 == 0);
            assert!(views.decoded.len() <= rest.len(), "decoding grew the value");
            let _ = libinjectionrs::detect_sqli(rest);
            let _ = libinjectionrs::detect_xss(rest);
        }
    }
}

fn view_of<'v>(views: &'v Views<'_>, view: View) -> &'v [u8] {
    match view {
        View::Decoded => &views.decoded,
        View::Plain => &views.plain,
        View::Sql => views.sql(),
        View::Cmd => views.cmd(),
    }
}

/// `text` around `range`, at most [`MAX_EXCERPT`] bytes, printable.
fn excerpt(text: &[u8], range: std::ops::Range<usize>) -> String {
    let start = range.start.saturating_sub(16).min(text.len());
    let end = (start + MAX_EXCERPT).min(text.len());
    text[start..end]
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fields::Place;
    use super::*;
    use std::borrow::Cow;

    fn matches(place: Place, name: &str, value: &str, paranoia: u8) -> Vec<u32> {
        let field = Field {
            place,
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(value.as_bytes()),
        };
        let mut out = Vec::new();
        Engine::shared().inspect(&field, paranoia, Skip::NONE, &mut out);
        out.iter().map(|m| m.rule.id).collect()
    }

    #[test]
    fn every_pattern_compiles_and_ids_are_unique() {
        let engine = Engine::shared();
        // The automaton reads the lower-case views, comparing bytes as they are.
        for rule in engine.rules() {
            for literal in guard(&rule.check).unwrap_or_default() {
                assert_eq!(*literal, literal.to_lowercase(), "rule {}", rule.id);
            }
        }
        let mut ids: Vec<u32> = engine.rules().iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), engine.rules().len());
    }

    #[test]
    fn each_class_is_found_in_its_encodings() {
        let q = Place::Query;
        assert!(matches(q, "q", "admin%27%20Or%201%3D1--", 1).contains(&942100));
        assert!(matches(q, "q", "%253Cscript%253Ealert(1)%253C/script%253E", 1).contains(&941110));
        assert!(matches(q, "f", "..%252f..%252fetc%252fpasswd", 1).contains(&930100));
        assert!(matches(q, "h", "example.com;c'a't /etc/passwd", 1).contains(&932100));
        assert!(matches(q, "u", "http%3A%2F%2F2130706433%2F", 1).contains(&934120));
        assert!(
            matches(Place::Header, "x-api", "${${lower:j}ndi:ldap://x/a}", 1).contains(&944150)
        );
        assert!(matches(Place::Header, "user-agent", "sqlmap/1.8.4#stable", 1).contains(&913100));
        assert!(matches(Place::Body, "/x", "/__proto__/isAdmin", 1).contains(&934130));
    }

    #[test]
    fn prose_code_and_urls_pass_at_paranoia_1() {
        for value in [
            "The union members will drop by; select a time that works for everyone",
            "1 or 2 people might join, not more than 5 or 6 total",
            "<p>See <a href=\"https://docs.example.com/guide#setup\">the guide</a>.</p>",
            "https://hooks.example.com/services/T000/B000/XXXX",
            "| id | name | time |",
            "O'Brien's café",
        ] {
            let found = matches(Place::Body, "/text", value, 1);
            assert!(found.is_empty(), "{value}: {found:?}");
        }
    }

    #[test]
    fn a_rule_above_the_paranoia_level_does_not_run() {
        let value = "see system(\"ls\") there";
        assert!(!matches(Place::Body, "/c", value, 1).contains(&933160));
        assert!(matches(Place::Body, "/c", value, 2).contains(&933160));
    }

    /// The fuzz target's minimized corpus (`fuzz/corpus/waf`), never empty.
    pub(super) fn fuzz_corpus() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/waf");
        let corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .expect("fuzz/corpus/waf")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
            .collect();
        assert!(!corpus.is_empty(), "no corpus in {}", dir.display());
        corpus
    }

    #[test]
    fn the_fuzz_corpus_replays() {
        for data in fuzz_corpus() {
            exercise(&data);
        }
    }

    #[test]
    fn excerpts_are_bounded_and_printable() {
        let long = format!("{}\r\n<script>{}", "a".repeat(100), "b".repeat(100));
        let e = excerpt(long.as_bytes(), 102..110);
        assert!(e.len() <= MAX_EXCERPT * 4);
        assert!(e.contains("\\r\\n<script>"), "{e}");
    }
}
