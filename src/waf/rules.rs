//! The rule set: each rule with its CRS-like id, severity, paranoia level, the view
//! of a value it reads (see `views`) and how it decides: libinjection's SQL and XSS
//! tokenizers, a regular expression guarded by literals, or a native check (SSRF
//! targets, scanners' user agents). Ids follow the OWASP Core Rule Set's families
//! (913 scanners, 921 protocol, 930 LFI, 932 RCE, 933 PHP, 934 Node and SSRF, 941
//! XSS, 942 SQLi, 944 Java) so that an operator who knows CRS knows where a rule
//! belongs; the patterns are tollgate's own.
//!
//! A regular expression runs only on a value that contains one of its rule's
//! literals (one Aho-Corasick pass per view finds them all), and libinjection at
//! paranoia 1 only on a value with something of SQL or of active markup in it, so a
//! clean value costs little more than a scan per view.

use super::fields::Place;

/// A matched rule's weight in the anomaly score (CRS's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub fn score(self) -> u32 {
        match self {
            Severity::Critical => 5,
            Severity::Error => 4,
            Severity::Warning => 3,
            Severity::Notice => 2,
        }
    }
}

/// Which view of a value a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Decoded, case and whitespace kept (CR and LF matter here).
    Decoded,
    /// Decoded, lower case, whitespace compressed.
    Plain,
    /// `Plain` without SQL comments.
    Sql,
    /// The decoded value as a shell reads it.
    Cmd,
}

/// How a rule decides.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// libinjection's SQL tokenizer on the decoded value; with `corroborated`, only
    /// where the value also has something of SQL (a quote, a comment, a keyword), so
    /// that arithmetic and formulas pass.
    Sqli { corroborated: bool },
    /// libinjection's HTML5 tokenizer on the decoded value; with `corroborated`, only
    /// where the markup also has something active (a script, an event handler, a
    /// script URL), so that rich text with styles, frames and images passes.
    Xss { corroborated: bool },
    /// A URL (or address) naming the host itself, its network or a cloud metadata
    /// service (see `ssrf`).
    Ssrf { private_networks: bool },
    /// A command spelled with what a shell removes (see `shell`).
    SpelledCommand,
    /// Characters some parsers truncate to CR or LF (U+010A is `Ċ`, whose low byte is
    /// LF) followed by a header or a request line: request splitting.
    TruncatedLineBreak,
    /// One of `literals` (lower case) in `view`, compared case-insensitively: names
    /// (of scanners, say) that need no expression.
    Literals {
        view: View,
        literals: &'static [&'static str],
    },
    /// A regular expression over `view`, run only when the value has one of
    /// `literals` (lower case; for `Decoded`, compared case-insensitively).
    Pattern {
        view: View,
        literals: &'static [&'static str],
        pattern: &'static str,
    },
}

/// Places a rule looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    /// Everything but bodies (where prose and code legitimately hold what a header or
    /// a parameter should not).
    NotBody,
    /// The `User-Agent` header.
    UserAgent,
    /// One header, by its lower-case name.
    Header(&'static str),
    /// The list of the request's header names (one field, see `request`).
    HeaderNames,
    /// The path.
    Path,
    /// Everything but the headers whose syntax an RFC defines and the HTTP stack
    /// parses (`Accept`, `Signature-Input`, `Cache-Control`, ...).
    NotStructuredHeaders,
}

/// Headers with a syntax of their own, read by the HTTP stack rather than the
/// application: libinjection's tokenizers misread their punctuation.
const STRUCTURED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-type",
    "content-length",
    "content-digest",
    "signature",
    "signature-input",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "range",
    "prefer",
    "link",
    "traceparent",
    "tracestate",
    "baggage",
    "sec-ch-ua",
    "sec-ch-ua-platform",
    "sec-ch-ua-mobile",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "priority",
    "authorization",
    "date",
    "digest",
    "etag",
    "forwarded",
    "te",
    "upgrade",
    "www-authenticate",
    "x-request-id",
];

impl Scope {
    /// Whether the rule reads the field at `place` named `name`; `structured`: it is a
    /// header in [`STRUCTURED_HEADERS`] (see [`is_structured`]), worked out once a field.
    pub fn covers(self, place: Place, name: &str, structured: bool) -> bool {
        match self {
            Scope::All => true,
            // The header names (one field, no name) are lines by design.
            Scope::NotBody => place != Place::Body && !(place == Place::Header && name.is_empty()),
            Scope::UserAgent => place == Place::Header && name == "user-agent",
            Scope::Header(wanted) => place == Place::Header && name == wanted,
            Scope::HeaderNames => place == Place::Header && name.is_empty(),
            Scope::Path => place == Place::Path,
            Scope::NotStructuredHeaders => !structured,
        }
    }
}

/// Whether the field at `place` named `name` is a header with a syntax of its own.
pub fn is_structured(place: Place, name: &str) -> bool {
    place == Place::Header && STRUCTURED_HEADERS.contains(&name)
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: u32,
    /// `sqli`, `xss`, `lfi`, `rce`, `php`, `java`, `node`, `ssrf`, `protocol`, `scanner`.
    pub class: &'static str,
    pub severity: Severity,
    pub paranoia: u8,
    pub scope: Scope,
    pub check: Check,
    pub message: &'static str,
}
