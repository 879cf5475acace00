//! Places in the config file: TOML paths (`routes[2].upstream`), byte spans, and the
//! `line:column` an operator can jump to.
//!
//! Works on toml's span-keeping parse tree (`DeTable`); it never fails, it only finds
//! the most precise place it can (falling back to the enclosing table).

use std::fmt;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Problems found in a config, each with the path of the value at fault.
pub type Problems = Vec<(TomlPath, String)>;

/// One step of a TOML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A TOML path such as `upstreams.orders.targets[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TomlPath(pub Vec<Seg>);

impl TomlPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        Self(segs)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }
}

impl fmt::Display for TomlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The span of the value at `path`, or of its closest existing ancestor.
pub fn span_of(root: &Spanned<DeTable<'_>>, path: &TomlPath) -> Range<usize> {
    let mut span = root.span();
    let mut current: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for seg in &path.0 {
        let next = match (seg, table, current) {
            (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        span = next.span();
        current = Some(next.get_ref());
        table = next.get_ref().as_table();
    }
    span
}

/// The deepest path whose key or value contains `span`: names the field a serde error
/// points at (serde's messages name the field but not the table it sits in). Table
/// spans cover only their `[header]`, so the whole tree is searched.
pub fn path_at(root: &Spanned<DeTable<'_>>, span: &Range<usize>) -> TomlPath {
    let mut best = TomlPath::root();
    search_table(root.get_ref(), span, &mut TomlPath::root(), &mut best);
    best
}

fn search_table(t: &DeTable<'_>, span: &Range<usize>, path: &mut TomlPath, best: &mut TomlPath) {
    for (key, v) in t.iter() {
        path.0.push(Seg::Key(key.get_ref().to_string()));
        search_value(v, contains(&key.span(), span), span, path, best);
        path.0.pop();
    }
}

fn search_value(
    v: &Spanned<DeValue<'_>>,
    key_hit: bool,
    span: &Range<usize>,
    path: &mut TomlPath,
    best: &mut TomlPath,
) {
    if (key_hit || contains(&v.span(), span)) && path.0.len() > best.0.len() {
        *best = path.clone();
    }
    match v.get_ref() {
        DeValue::Table(t) => search_table(t, span, path, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.0.push(Seg::Index(i));
                search_value(item, false, span, path, best);
                path.0.pop();
            }
        }
        _ => {}
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[server]\nworkers = 2\n\n[[routes]]\nname = \"a\"\n\n[[routes]]\nname = \"b\"\nupstream = \"x\"\n";

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn finds_span_of_nested_path_and_back() {
        let root = DeTable::parse(DOC).expect("parses");
        let path = TomlPath::root().key("routes").index(1).key("upstream");
        let span = span_of(&root, &path);
        assert_eq!(&DOC[span.clone()], "\"x\"");
        assert_eq!(line_column(DOC, span.start), (9, 12));
        assert_eq!(path_at(&root, &span).to_string(), "routes[1].upstream");
    }

    #[test]
    fn missing_path_falls_back_to_closest_ancestor() {
        let root = DeTable::parse(DOC).expect("parses");
        let span = span_of(&root, &TomlPath::root().key("server").key("nope"));
        assert_eq!(&DOC[span], "[server]");
    }
}
