//! One request's inspection: which places to read, the rules to skip (exclusions),
//! and the score of what matched. The head (path, query, headers, cookies) is read
//! when it arrives, the body when it is whole; each rule counts once, at its first
//! match.

use super::fields::{self, BodyKind, Field, Place};
use super::rules::Rule;
use super::{Engine, Match, Skip};

/// A rule switched off, for one target or all: `rule` is an id or a prefix ending in
/// `*` (`941*`); `target` a target (`body:/comment`, `header:x-data`) or a prefix
/// ending in `*` (`cookie:*`), `None` for every target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub rule: String,
    pub target: Option<String>,
    /// Only for this consumer's requests.
    pub consumer: Option<String>,
}

impl Exclusion {
    fn covers(&self, rule: &Rule, target: &str, consumer: Option<&str>) -> bool {
        wildcard(&self.rule, &rule.id.to_string())
            && self.target.as_deref().is_none_or(|t| wildcard(t, target))
            && self.consumer.as_deref().is_none_or(|c| Some(c) == consumer)
    }

    /// Whether it names at least one of `rules`.
    pub fn names_a_rule(&self, rules: &[Rule]) -> bool {
        rules
            .iter()
            .any(|r| wildcard(&self.rule, &r.id.to_string()))
    }
}

/// `pattern` is `value`, or a prefix of it ending in `*`.
fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// What to read and how hard.
#[derive(Debug, Clone)]
pub struct Settings {
    pub paranoia: u8,
    /// Places read (`Place::Body` included: the body is read).
    pub places: Vec<Place>,
    pub exclusions: Vec<Exclusion>,
}

impl Settings {
    /// Every place read at `paranoia`, nothing excluded.
    pub fn everywhere(paranoia: u8) -> Self {
        Self {
            paranoia,
            places: vec![
                Place::Path,
                Place::Query,
                Place::Header,
                Place::Cookie,
                Place::Body,
            ],
            exclusions: Vec::new(),
        }
    }

    pub fn reads(&self, place: Place) -> bool {
        self.places.contains(&place)
    }
}

/// The matches of one request so far.
#[derive(Debug, Default)]
pub struct Inspection {
    pub matches: Vec<Match>,
}

impl Inspection {
    /// The anomaly score: the sum of the matched rules' severities.
    pub fn score(&self) -> u32 {
        self.matches.iter().map(|m| m.rule.severity.score()).sum()
    }

    /// Reads `fields` of a request by `consumer`, with the exclusions of `settings`.
    pub fn read(&mut self, settings: &Settings, consumer: Option<&str>, fields: &[Field<'_>]) {
        let engine = Engine::shared();
        for field in fields.iter().filter(|f| settings.reads(f.place)) {
            let done = self
                .matches
                .iter()
                .fold(0u128, |mask, m| mask | 1 << m.index);
            // Named once per field, and only where exclusions may need it.
            let target = match settings.exclusions.is_empty() {
                true => String::new(),
                false => field.target(),
            };
            let excluded = |rule: &Rule| {
                settings
                    .exclusions
                    .iter()
                    .any(|e| e.covers(rule, &target, consumer))
            };
            let skip = Skip {
                done,
                excluded: (!settings.exclusions.is_empty())
                    .then_some(&excluded as &dyn Fn(&Rule) -> bool),
            };
            engine.inspect(field, settings.paranoia, skip, &mut self.matches);
        }
    }
}

/// A request head's fields: the path, each query parameter, each header (by its
/// lower-case name), each cookie, and the header names (one field, target `header`).
pub fn head_fields<'a>(
    path: &'a str,
    query: Option<&'a [u8]>,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Vec<Field<'a>> {
    let mut out = vec![Field {
        place: Place::Path,
        name: "".into(),
        value: path.as_bytes().into(),
    }];
    if let Some(query) = query {
        fields::urlencoded(
            Place::Query,
            query.strip_prefix(b"?").unwrap_or(query),
            &mut out,
        );
    }
    let mut names = Vec::new();
    for (name, value) in headers {
        names.extend_from_slice(name.as_bytes());
        names.push(b'\n');
        match name {
            "cookie" => fields::cookies(value, &mut out),
            _ => out.push(Field {
                place: Place::Header,
                name: name.into(),
                value: value.into(),
            }),
        }
    }
    // The header names, one a line: some scanners name themselves there.
    out.push(Field {
        place: Place::Header,
        name: "".into(),
        value: names.into(),
    });
    out
}

/// A body's fields, read by its `Content-Type`.
pub fn body_fields<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Vec<Field<'a>> {
    let mut out = Vec::new();
    fields::body(&BodyKind::of(content_type), body, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(exclusions: Vec<Exclusion>) -> Settings {
        Settings {
            exclusions,
            ..Settings::everywhere(1)
        }
    }

    fn score(settings: &Settings, body: &str) -> (u32, Vec<(u32, String)>) {
        let mut inspection = Inspection::default();
        let fields = body_fields(Some(b"application/json"), body.as_bytes());
        inspection.read(settings, None, &fields);
        let found = inspection
            .matches
            .iter()
            .map(|m| (m.rule.id, m.target.clone()))
            .collect();
        (inspection.score(), found)
    }

    #[test]
    fn a_rule_counts_once_and_exclusions_name_rule_and_target() {
        let body = r#"{"a": "' or 1=1--", "b": "1' or '1'='1"}"#;
        let (total, found) = score(&settings(vec![]), body);
        assert_eq!(
            found.iter().filter(|(id, _)| *id == 942100).count(),
            1,
            "{found:?}"
        );
        assert!(total >= 5);
        let off_for_a = Exclusion {
            rule: "942100".into(),
            target: Some("body:/a".into()),
            consumer: None,
        };
        let (_, found) = score(&settings(vec![off_for_a]), body);
        assert!(found.contains(&(942100, "body:/b".into())), "{found:?}");
        let family_off = Exclusion {
            rule: "942*".into(),
            target: None,
            consumer: None,
        };
        let (total, _) = score(&settings(vec![family_off]), body);
        assert_eq!(total, 0);
    }

    #[test]
    fn places_not_read_are_skipped() {
        let mut s = settings(vec![]);
        s.places = vec![Place::Query];
        let mut inspection = Inspection::default();
        inspection.read(&s, None, &body_fields(None, b"<script>alert(1)</script>"));
        assert_eq!(inspection.score(), 0);
    }
}
