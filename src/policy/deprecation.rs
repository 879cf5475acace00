//! `deprecation` of a route: every response says the route is deprecated
//! (`Deprecation: @<unix seconds>`, RFC 9745), when it goes away (`Sunset:
//! <HTTP-date>`, RFC 8594) and where to read about it (`Link: <...>;
//! rel="deprecation"`). Past the sunset, `after_sunset = "block"` answers 410 Gone
//! instead of proxying; `"warn"` keeps serving. Every request to the route is counted
//! by consumer (`tollgate_deprecated_requests_total`) and marked in its access-log
//! line, so an operator sees who still calls it. Times that do not parse, a sunset
//! before `since` and a link that cannot be a header are config problems.

use http::{header, HeaderValue, StatusCode};
use pingora::http::{KnownHeaderName, ResponseHeader};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::location::{Problems, TomlPath};
use crate::config::raw::{AfterSunset, DeprecationSection};
use crate::observability::Metrics;
use crate::stage::{
    Cx, Declared, Flow, Hooks, LogFields, LogValue, Reply, Stage, StagesBuilder, Step,
};

static DEPRECATION: KnownHeaderName = KnownHeaderName::from_static("deprecation");
static SUNSET: KnownHeaderName = KnownHeaderName::from_static("sunset");

struct Deprecation {
    route: Arc<str>,
    metrics: Arc<Metrics>,
    anonymous: prometheus::IntCounter,
    /// The headers every response gets.
    headers: Vec<(KnownHeaderName, HeaderValue)>,
    /// When requests start getting 410 (`after_sunset = "block"`).
    blocked_from: Option<SystemTime>,
}

pub fn install(
    section: Option<&DeprecationSection>,
    route: &str,
    metrics: &Arc<Metrics>,
    at: &TomlPath,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let Some(section) = section else { return };
    let Some((headers, blocked_from)) = build(section, &at.key("deprecation"), problems) else {
        return;
    };
    stages.add(Deprecation {
        route: route.into(),
        metrics: metrics.clone(),
        anonymous: metrics.deprecated_anonymous(route),
        headers,
        blocked_from,
    });
}

type Built = (Vec<(KnownHeaderName, HeaderValue)>, Option<SystemTime>);

fn build(s: &DeprecationSection, at: &TomlPath, problems: &mut Problems) -> Option<Built> {
    let before = problems.len();
    let mut time = |key: &str, text: &str| match humantime::parse_rfc3339(text) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push((
                at.key(key),
                format!(
                    "{text:?} is not an RFC 3339 time ({e}); write e.g. \"2026-06-01T00:00:00Z\""
                ),
            ));
            None
        }
    };
    let since = time("since", &s.since);
    let sunset = s.sunset.as_deref().and_then(|t| time("sunset", t));
    if let (Some(since), Some(sunset)) = (since, sunset) {
        if sunset < since {
            problems.push((at.key("sunset"), "is before `since`".into()));
        }
    }
    if s.sunset.is_none() && s.after_sunset == AfterSunset::Block {
        problems.push((at.key("after_sunset"), "\"block\" needs a `sunset`".into()));
    }
    let link = s.link.as_deref().map(|l| {
        let bad = l.is_empty()
            || l.bytes()
                .any(|b| b <= b' ' || b == b'<' || b == b'>' || b >= 0x7f);
        if bad {
            problems.push((at.key("link"), "must be a URL without spaces or <>".into()));
        }
        format!("<{l}>; rel=\"deprecation\"")
    });
    if problems.len() > before {
        return None;
    }
    let since = since?;
    let mut headers = vec![(
        DEPRECATION.clone(),
        header_value(format!("@{}", unix_seconds(since)))?,
    )];
    if let Some(sunset) = sunset {
        headers.push((
            SUNSET.clone(),
            header_value(httpdate::fmt_http_date(sunset))?,
        ));
    }
    if let Some(link) = link {
        headers.push((KnownHeaderName::from(&header::LINK), header_value(link)?));
    }
    let blocked_from = sunset.filter(|_| s.after_sunset == AfterSunset::Block);
    Some((headers, blocked_from))
}

fn header_value(text: String) -> Option<HeaderValue> {
    HeaderValue::from_str(&text).ok()
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Deprecation {
    /// Whether a request at `now` is refused because the sunset has passed.
    fn is_blocked(&self, now: SystemTime) -> bool {
        self.blocked_from.is_some_and(|sunset| now >= sunset)
    }
}

impl Deprecation {
    /// 410 once the sunset has passed (`after_sunset = "block"`).
    fn check(&self, now: SystemTime) -> Flow {
        match self.is_blocked(now) {
            true => Err(Reply::new(
                StatusCode::GONE,
                "this API was deprecated and its sunset has passed; see the Link header",
            )),
            false => Ok(()),
        }
    }
}

impl Stage for Deprecation {
    fn name(&self) -> &'static str {
        "deprecation"
    }

    fn declares(&self) -> Declared {
        Declared {
            response_headers: self.headers.len(),
            ..Declared::hooks(Hooks::REQUEST.and(Hooks::RESPONSE).and(Hooks::LOG))
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.check(cx.facts().started_at).into()
    }

    /// Every access-log line of the route says it is deprecated.
    fn log_fields(&self, _: &Cx<'_>, fields: &mut LogFields) {
        fields.add("deprecated", LogValue::Flag(true));
    }

    fn on_response(&self, cx: &mut Cx<'_>, resp: &mut ResponseHeader) -> pingora::Result<()> {
        if resp.status.is_informational() {
            // A 100 Continue comes before the request's one final response.
            return Ok(());
        }
        match cx.facts().consumer() {
            Some(consumer) => self.metrics.deprecated_request(&self.route, consumer),
            None => self.anonymous.inc(),
        }
        for (name, value) in &self.headers {
            match *name.name() == header::LINK {
                // The upstream's own links (pagination, ...) stay.
                true => resp.append_known_header(name, value.clone())?,
                false => resp.insert_known_header(name, value.clone())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(sunset: Option<&str>, after_sunset: AfterSunset) -> DeprecationSection {
        DeprecationSection {
            since: "2026-06-01T00:00:00Z".into(),
            sunset: sunset.map(str::to_owned),
            link: Some("https://developer.example.com/migrate".into()),
            after_sunset,
        }
    }

    #[test]
    fn headers_follow_rfc_9745_and_8594() {
        let mut problems = Problems::new();
        let s = section(Some("2027-01-01T00:00:00Z"), AfterSunset::Block);
        let (headers, blocked_from) = build(&s, &TomlPath::root(), &mut problems).expect("built");
        let text: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{}: {}", n.name(), v.to_str().expect("v")))
            .collect();
        assert_eq!(
            text,
            [
                "deprecation: @1780272000",
                "sunset: Fri, 01 Jan 2027 00:00:00 GMT",
                "link: <https://developer.example.com/migrate>; rel=\"deprecation\"",
            ]
        );
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let policy = Deprecation {
            route: "r".into(),
            anonymous: metrics.deprecated_anonymous("r"),
            metrics,
            headers,
            blocked_from,
        };
        let sunset = humantime::parse_rfc3339("2027-01-01T00:00:00Z").expect("t");
        assert!(!policy.is_blocked(sunset - Duration::from_secs(1)));
        assert!(policy.is_blocked(sunset));
    }

    #[test]
    fn bad_times_and_links_are_problems_at_their_place() {
        let mut problems = Problems::new();
        let mut s = section(Some("2026-01-01T00:00:00Z"), AfterSunset::Warn);
        s.link = Some("https://x.example/a b".into());
        assert!(build(&s, &TomlPath::root(), &mut problems).is_none());
        s.since = "June 2026".into();
        s.sunset = None;
        s.link = None;
        s.after_sunset = AfterSunset::Block;
        assert!(build(&s, &TomlPath::root(), &mut problems).is_none());
        let places: Vec<String> = problems.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(places, ["sunset", "link", "since", "after_sunset"]);
    }
}
