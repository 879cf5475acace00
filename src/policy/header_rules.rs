//! `request_headers` and `response_headers` of a route: headers set (replacing any
//! present) and removed, on the request sent upstream and on every response.
//! Validation checks the rules once (a name or value that does not parse, a header
//! that frames a message such as `content-length` or `host`), so building them here
//! cannot fail.

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
    stages: &mut StagesBuilder,
) {
    let request = build(request);
    if !request.is_empty() {
        stages.add(OnRequest(request));
    }
    let response = build(response);
    if !response.is_empty() {
        stages.add(OnResponse(response));
    }
}

/// The rules of `section`, as validation let them through.
fn build(section: &HeaderRulesSection) -> HeaderRules {
    let set = section.set.iter().filter_map(|(name, value)| {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        Some((
            KnownHeaderName::from(&name),
            HeaderValue::from_str(value).ok()?,
        ))
    });
    let remove = section.remove.iter();
    HeaderRules {
        set: set.collect(),
        remove: remove
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect(),
    }
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
        Declared {
            upstream_headers: self.0.set.len(),
            ..Declared::hooks(Hooks::UPSTREAM)
        }
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
        Declared {
            response_headers: self.0.set.len(),
            ..Declared::hooks(Hooks::RESPONSE)
        }
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

    #[test]
    fn names_are_taken_in_lower_case_and_values_as_written() {
        let section = HeaderRulesSection {
            set: [("X-Served-By".into(), "Edge 1".into())].into(),
            remove: vec!["Server".into()],
        };
        let rules = build(&section);
        let set: Vec<(&str, &str)> = rules
            .set
            .iter()
            .map(|(n, v)| (n.name().as_str(), v.to_str().unwrap_or("?")))
            .collect();
        assert_eq!(set, [("x-served-by", "Edge 1")]);
        assert_eq!(rules.remove, ["server"]);
    }
}
