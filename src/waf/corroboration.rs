//! What makes libinjection's findings count at paranoia 1 (`rules::Check`): SQL
//! syntax that query languages, formulas and prose lack, and markup that runs
//! something; and, for truncated Unicode line breaks, a header or request line after
//! one. Each corroborating expression comes with literals one of which is in every
//! value it matches, so that the engine's one automaton keeps it from running on
//! values without any (a test checks the literals cover the expression).

/// Something of SQL that query languages, formulas and prose lack: a quote that closes
/// a value followed by SQL (an operator, a keyword, a comment: a way out of a string),
/// comments, statement separators before a statement, statements, the functions attacks read data with, a
/// boolean operator before a literal.
pub(super) const SQL_SYNTAX: &str = r#"[\w)]['"`]\s*(?:\)\s*(?:;|--|#|/\*|\)|\b(?:union|select|having)\b)|;|--|#|/\*|\|\||&&|=|\b(?:union|select|having|(?:order|group)\s+by\s+\d|where|like|rlike|regexp|limit|into|procedure|waitfor|sleep|benchmark|div)\b|\b(?:or|and|xor)\s+(?:[\d'"(]|\w+\s*(?:=|<|>|\blike\b)))|['")\d]\s*(?:--|#|/\*)|--(?:\s|$)|/\*.*?\*/|;\s*(?:select|insert|update|delete|drop|exec|execute|declare|shutdown|create|alter|waitfor|begin)\b|@@|\bunion\b|\bselect\b.*\bfrom\b|\binsert\s+into\b|\bupdate\s+\w+\s+set\b|\bdelete\s+from\b|\bdrop\s+(?:table|database)\b|\b(?:sleep|benchmark|waitfor|pg_sleep|exec|execute|xp_\w+|having|information_schema|load_file|outfile|substr|substring|ascii|unhex|hex|mid|ord|database|user|version|schema|concat|char|length|if|elt|extractvalue|updatexml)\s*\(|\b(?:or|and|xor)\s+[\d'"(]|['"`](?:or|and|xor|like|rlike|regexp|div|union)\b|['"`]\s*(?:\|\||&&|=|<>|!=)"#;
/// One of these is in every value [`SQL_SYNTAX`] matches (lower case, whitespace
/// compressed): the corroborated SQL rule runs only where the automaton found one.
#[rustfmt::skip]
pub(super) const SQL_SYNTAX_LITERALS: &[&str] = &[
    "'", "\"", "`", ";", "--", "#", "/*", "||", "&&", "=", "@@", "(", "union", "select", "having",
    "order", "group", "where", "like", "regexp", "limit", "into", "procedure", "waitfor", "sleep",
    "benchmark", "div", "or ", "and ", "insert", "update", "delete", "drop",
];
/// A line break, then a header or a request line.
pub(super) const LINE_BREAK_HEADER: &str =
    r#"(?i)[\r\n]\s*(?:[a-z0-9-]+\s*:|(?:get|post|put|delete|head|options|patch)\s+\S+\s+http/)"#;
/// Markup that runs something.
pub(super) const ACTIVE_MARKUP: &str = r"<script|\bon[a-z]{3,25}\s*=|(?:java|vb|live)script:|data:\s*(?:text/html|image/svg|application/(?:x-)?javascript)|expression\s*\(|srcdoc|formaction|<(?:object|embed|applet|base|meta|frameset|isindex)\b|xlink:href|-moz-binding|@import";

/// One of these is in every value [`ACTIVE_MARKUP`] matches.
#[rustfmt::skip]
pub(super) const ACTIVE_MARKUP_LITERALS: &[&str] = &[
    "<script", "=", "script:", "data:", "expression", "srcdoc", "formaction", "<object", "<embed",
    "<applet", "<base", "<meta", "<frameset", "<isindex", "xlink:href", "-moz-binding", "@import",
];

#[cfg(test)]
mod tests {
    use super::super::{views::Views, Engine};
    use super::*;

    /// Every value the corroboration expressions match holds one of their literals
    /// (else the guard would hide a finding): checked on the fuzz corpus and on values
    /// made to match each alternative.
    #[test]
    fn the_corroboration_guards_cover_their_expressions() {
        let engine = Engine::shared();
        let guards = [
            (&engine.sql_syntax, SQL_SYNTAX_LITERALS),
            (&engine.active_markup, ACTIVE_MARKUP_LITERALS),
        ];
        let mut values = super::super::tests::fuzz_corpus();
        for made in [
            "x' union",
            "a;b",
            "1 -- x",
            "a#b",
            "/*c*/",
            "a||b",
            "a&&b",
            "a=b",
            "@@version",
            "char(65)",
            "select a from b",
            "group by 2",
            "xor\t1",
            "or\n'a'",
            "and (1",
            "drop table t",
            "delete from t",
            "update t set a",
            "insert into t",
            "a\"or\"",
            "<script>",
            "<svg onload =x>",
            "vbscript:x",
            "data: text/html,x",
            "expression(x)",
            "srcdoc",
            "<base href",
            "xlink:href",
            "-moz-binding",
            "@import 'x'",
        ] {
            values.push(made.as_bytes().to_vec());
        }
        let mut matched = 0;
        for value in &values {
            let views = Views::of(value, false);
            for (expression, literals) in guards {
                if !expression.is_match(&views.plain) {
                    continue;
                }
                matched += 1;
                let plain = String::from_utf8_lossy(&views.plain).to_ascii_lowercase();
                assert!(
                    literals.iter().any(|l| plain.contains(l)),
                    "{plain:?} matches without a literal"
                );
            }
        }
        assert!(matched > 100, "only {matched} values matched");
    }
}
