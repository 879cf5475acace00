//! `request_headers` and `response_headers` of a route: headers set (replacing any
//! present) and removed, on the request sent upstream and on every response. The
//! headers that frame a message (`content-length`, `host`, ...) are refused by
//! validation; a name or value that does not parse is a config error at its place.

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::HeaderRulesSection;
use crate::stage::{Cx, Declared, Hooks, Stage, StagesBuilder};
use http::{HeaderName, HeaderValue};
use pingora::http::{KnownHeaderName, RequestHeader, ResponseHeader};

/// Headers to set and to remove.
#[derive(Default)]
struct HeaderRules {
    set: Vec<(KnownHeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

struct OnRequest(HeaderRules);
struct OnResponse(HeaderRules);

/// Installs the rules that are not empty, each in its phase.
pub fn install(
    request: &HeaderRulesSection,
    response: &HeaderRulesSection,
    at: &TomlPath,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let request = build(request, &at.key("request_headers"), problems);
    if !request.is_empty() {
        stages.add(OnRequest(request));
    }
    let response = build(response, &at.key("response_headers"), problems);
    if !response.is_empty() {
        stages.add(OnResponse(response));
    }
}

fn build(section: &HeaderRulesSection, at: &TomlPath, problems: &mut Problems) -> HeaderRules {
    let mut rules = HeaderRules::default();
    for (name, value) in &section.set {
        let place = at.key("set").key(name);
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => rules.set.push((KnownHeaderName::from(&n), v)),
            _ => problems.push((place, format!("invalid header {name:?} = {value:?}"))),
        }
    }
    for (i, name) in section.remove.iter().enumerate() {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => rules.remove.push(n),
            Err(_) => problems.push((
                at.key("remove").index(i),
                format!("invalid header name {name:?}"),
            )),
        }
    }
    rules
}

impl HeaderRules {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

impl Stage for OnRequest {
    fn name(&self) -> &'static str {
        "request_headers"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::UPSTREAM)
    }

    fn on_upstream(&self, _: &mut Cx<'_>, upstream: &mut RequestHeader) -> pingora::Result<()> {
        for name in &self.0.remove {
            upstream.remove_header(name);
        }
        for (name, value) in &self.0.set {
            upstream.insert_known_header(name, value.clone())?;
        }
        Ok(())
    }
}

impl Stage for OnResponse {
    fn name(&self) -> &'static str {
        "response_headers"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::RESPONSE)
    }

    fn on_response(&self, _: &mut Cx<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        for name in &self.0.remove {
            resp.remove_header(name);
        }
        for (name, value) in &self.0.set {
            resp.insert_known_header(name, value.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::HeaderRulesSection;

    #[test]
    fn bad_names_and_values_are_reported_at_their_place() {
        let section = HeaderRulesSection {
            set: [("x-ok".into(), "v".into()), ("bad name".into(), "v".into())].into(),
            remove: vec!["also bad".into()],
        };
        let mut problems = Problems::new();
        let rules = build(&section, &TomlPath::root().key("r"), &mut problems);
        let places: Vec<String> = problems.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(places, ["r.set.bad name", "r.remove[0]"]);
        assert_eq!(rules.set.len(), 1);
    }
}
