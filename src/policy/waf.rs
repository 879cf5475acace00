//! `waf` of a route: injection detection with anomaly scoring (the engine is
//! `crate::waf`). The head (path, query, headers, cookies) is inspected when it
//! arrives, the body once whole (up to `max_inspect`, held before anything goes
//! upstream); each matched rule adds its severity once. At `anomaly_threshold` in
//! block mode the request gets 403 problem+json with an `incident` id (the request
//! id) and the upstream sees nothing of it; in detect mode it goes on. Either way a
//! security-log event `waf` names the route, consumer, client, incident, score and
//! rules (id, target, a bounded excerpt, redacted for credentials), and every match
//! is counted in `tollgate_waf_matches_total{route,rule,action}`.
//!
//! A body larger than `max_inspect`, or with a `Content-Encoding` (compressed bytes
//! hide anything), is refused (413, 415) or, with `on_oversize = "pass"`, sent on with
//! only its head inspected. Runs after authentication, so that exclusions can name
//! consumers; a refusal is a 403, which jails count as a strike by default.

use http::{header, StatusCode};
use prometheus::IntCounterVec;
use serde_json::json;
use std::collections::BTreeMap;

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{OnOversize, WafExclusion, WafMode, WafPlace, WafSection};
use crate::observability::{EventFacts, Metrics, SecurityLog};
use crate::stage::{BodyChunk, Cx, Declared, Flow, Hooks, Reply, Stage, StagesBuilder, Step};
use crate::waf::fields::Place;
use crate::waf::request::{body_fields, head_fields, Exclusion, Inspection, Settings};
use crate::waf::{Engine, Match};

/// What every route's WAF stage shares.
pub struct Shared<'a> {
    pub metrics: &'a Metrics,
    pub security_log: &'a SecurityLog,
}

struct Waf {
    /// The `[waf.NAME]`.
    name: String,
    route: String,
    mode: WafMode,
    threshold: u32,
    settings: Settings,
    max_inspect: u64,
    on_oversize: OnOversize,
    matches: IntCounterVec,
    security_log: SecurityLog,
}

/// Reports each exclusion of the `[waf]` sections that names no rule of the set.
pub fn check_rules(sections: &BTreeMap<String, WafSection>, problems: &mut Problems) {
    if sections.is_empty() {
        // Without a WAF the rules are never compiled.
        return;
    }
    let rules = Engine::shared().rules();
    for (name, section) in sections {
        for (i, e) in section.exclude.iter().enumerate() {
            if !exclusion(e).names_a_rule(rules) {
                let at = TomlPath::root()
                    .key("waf")
                    .key(name)
                    .key("exclude")
                    .index(i);
                let known: Vec<String> = rules.iter().map(|r| r.id.to_string()).collect();
                problems.push((
                    at.key("rule"),
                    format!(
                        "no rule {} in the rule set (rules: {})",
                        e.rule.text(),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
}

fn exclusion(e: &WafExclusion) -> Exclusion {
    Exclusion {
        rule: e.rule.text(),
        target: e.target.clone(),
        consumer: e.consumer.clone(),
    }
}

/// Installs `[waf.NAME]` (`named`) on the route `route` (at `at`), with the
/// exclusions that apply to it.
pub fn install(
    named: Option<(&str, &WafSection)>,
    route: &str,
    at: &TomlPath,
    shared: &Shared<'_>,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let Some((name, section)) = named else { return };
    let exclusions = section
        .exclude
        .iter()
        .filter(|e| e.route.as_deref().is_none_or(|r| r == route))
        .map(exclusion)
        .collect();
    let matches = shared.metrics.counter_vec(
        "waf_matches_total",
        "WAF rules matched, by route, rule and what was done (block, detect, pass: below the threshold)",
        &["route", "rule", "action"],
    );
    let matches = match matches {
        Ok(m) => m,
        Err(e) => {
            problems.push((
                at.clone(),
                format!("cannot register the WAF's counter: {e}"),
            ));
            return;
        }
    };
    stages.add(Waf {
        name: name.to_owned(),
        route: route.to_owned(),
        mode: section.mode,
        threshold: section.anomaly_threshold,
        settings: Settings {
            paranoia: section.paranoia,
            places: section.inspect.iter().map(|p| place(*p)).collect(),
            exclusions,
        },
        max_inspect: section.max_inspect,
        on_oversize: section.on_oversize,
        matches,
        security_log: shared.security_log.clone(),
    });
}

fn place(p: WafPlace) -> Place {
    match p {
        WafPlace::Path => Place::Path,
        WafPlace::Query => Place::Query,
        WafPlace::Headers => Place::Header,
        WafPlace::Cookies => Place::Cookie,
        WafPlace::Body => Place::Body,
    }
}

/// A request whose body is still to come: what its head matched.
#[derive(Default)]
struct Pending {
    inspection: Inspection,
    /// Judged already (refused, over the threshold in detect mode, or the body not
    /// inspected): the body hook does nothing more.
    settled: bool,
}

impl Waf {
    /// Inspects the head; `Some(inspection)` when the body is to be inspected too.
    fn inspect_head(&self, cx: &mut Cx<'_>) -> Result<Option<Inspection>, Reply> {
        let mut inspection = Inspection::default();
        let view = cx.view();
        let headers = view
            .req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        let fields = head_fields(view.path, view.query, headers);
        inspection.read(&self.settings, view.consumer, &fields);
        // An HTTP/2 body needs no length header: such a request may still have one.
        let http2 = view.req.version == http::Version::HTTP_2;
        let body = self.settings.reads(Place::Body) && (view.announces_body() || http2);
        if !body || (self.mode == WafMode::Block && inspection.score() >= self.threshold) {
            self.settle(cx, &inspection)?;
            return Ok(None);
        }
        let headers = &view.req.headers;
        let encoded = headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if encoded || length.is_some_and(|l| l > self.max_inspect) {
            self.oversize(cx, &inspection, encoded)?;
            return Ok(None);
        }
        Ok(Some(inspection))
    }

    /// The body was not inspected: refused per `on_oversize`, or judged on the head.
    fn oversize(&self, cx: &mut Cx<'_>, inspection: &Inspection, encoded: bool) -> Flow {
        if self.on_oversize == OnOversize::Block {
            return Err(match encoded {
                true => Reply::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the request body is encoded (Content-Encoding), which this route's WAF cannot inspect",
                ),
                false => Reply::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than this route's WAF inspects ({} bytes)", self.max_inspect),
                ),
            });
        }
        self.settle(cx, inspection)
    }

    /// The verdict on what was inspected: counted, logged at the threshold, refused
    /// there in block mode.
    fn settle(&self, cx: &Cx<'_>, inspection: &Inspection) -> Flow {
        if inspection.matches.is_empty() {
            return Ok(());
        }
        let score = inspection.score();
        let over = score >= self.threshold;
        let action = match (over, self.mode) {
            (false, _) => "pass",
            (true, WafMode::Block) => "block",
            (true, WafMode::Detect) => "detect",
        };
        for m in &inspection.matches {
            let id = m.rule.id.to_string();
            self.matches
                .with_label_values(&[self.route.as_str(), id.as_str(), action])
                .inc();
        }
        if !over {
            return Ok(());
        }
        let facts = cx.facts();
        let event = EventFacts {
            request_id: &facts.request_id,
            client_ip: facts.client_ip,
            route: Some(&self.route),
        };
        let rules: Vec<_> = inspection.matches.iter().map(logged).collect();
        self.security_log.policy_with(
            "waf",
            &event,
            &[
                ("waf", self.name.clone()),
                ("action", action.to_owned()),
                ("consumer", facts.consumer().unwrap_or("").to_owned()),
                ("incident", facts.request_id.clone()),
            ],
            &[("score", json!(score)), ("rules", json!(rules))],
        );
        match self.mode {
            WafMode::Detect => Ok(()),
            WafMode::Block => Err(Reply::new(
                StatusCode::FORBIDDEN,
                "the request was refused by the web application firewall",
            )
            .with_member("incident", json!(facts.request_id))),
        }
    }
}

/// A match as the security log shows it; credentials' excerpts withheld.
fn logged(m: &Match) -> serde_json::Value {
    let excerpt = match holds_credentials(&m.target) {
        true => "[redacted]".to_owned(),
        false => m.excerpt.clone(),
    };
    json!({"id": m.rule.id, "target": m.target, "excerpt": excerpt, "message": m.rule.message})
}

/// Whether a target's value may be a secret (cookies, credential headers, fields
/// named like passwords, tokens or keys).
fn holds_credentials(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("cookie")
        || [
            "authorization",
            "password",
            "passwd",
            "secret",
            "token",
            "key",
            "session",
            "credential",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

impl Stage for Waf {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn declares(&self) -> Declared {
        let body = self.settings.reads(Place::Body);
        Declared {
            whole_body: body,
            holds_body: if body { self.max_inspect } else { 0 },
            ..Declared::hooks(match body {
                true => Hooks::REQUEST.and(Hooks::BODY),
                false => Hooks::REQUEST,
            })
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        match self.inspect_head(cx) {
            Err(reply) => Step::Reply(reply),
            Ok(None) => Step::Continue,
            Ok(Some(inspection)) => {
                cx.state_mut::<Pending>().inspection = inspection;
                Step::Continue
            }
        }
    }

    fn on_body(&self, cx: &mut Cx<'_>, chunk: &BodyChunk<'_>) -> Flow {
        let Some(pending) = cx.state::<Pending>() else {
            return Ok(());
        };
        if pending.settled {
            return Ok(());
        }
        if chunk.received > self.max_inspect {
            let inspection = std::mem::take(&mut cx.state_mut::<Pending>().inspection);
            cx.state_mut::<Pending>().settled = true;
            return self.oversize(cx, &inspection, false);
        }
        if !chunk.end_of_stream {
            return Ok(());
        }
        let mut inspection = std::mem::take(&mut cx.state_mut::<Pending>().inspection);
        cx.state_mut::<Pending>().settled = true;
        let view = cx.view();
        let content_type = view
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes());
        let body = chunk.data.map_or(&[][..], |d| &d[..]);
        inspection.read(
            &self.settings,
            view.consumer,
            &body_fields(content_type, body),
        );
        self.settle(cx, &inspection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_quoted() {
        for t in [
            "cookie:session",
            "header:authorization",
            "body:/password",
            "query:api_key",
            "header:x-auth-token",
        ] {
            assert!(holds_credentials(t), "{t}");
        }
        for t in ["query:q", "body:/comment", "header:user-agent", "path"] {
            assert!(!holds_credentials(t), "{t}");
        }
    }
}
