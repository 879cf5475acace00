//! OpenTelemetry tracing (`[tracing]`): W3C Trace Context in and out, one SERVER span
//! per request and one CLIENT span per try at the upstream, exported over OTLP/HTTP.
//!
//! - `context`: `traceparent` read, made and sampled;
//! - `stage`: the stage every listener runs first (what a request records);
//! - `span`: a finished request as OTLP spans;
//! - `export`: the bounded queue and the background chore that sends batches.
//!
//! Built from its section by [`install`], once per config: a problem (an endpoint that
//! is no http(s) URL or carries credentials, a ratio outside 0..1, a header whose
//! environment variable is not set) is a config error at its place. The exporter is
//! kept across reloads while its destination is unchanged. Nothing here can hold a
//! request or fail it.

mod context;
mod export;
mod span;
mod stage;

use http::{HeaderName, HeaderValue};
use std::sync::Arc;

use crate::base::background::Making;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::TracingSection;
use crate::observability::Metrics;
use crate::stage::StagesBuilder;
use export::{Destination, Exporter};
use stage::Tracing;

/// Installs tracing when the config has a `[tracing]` section.
pub fn install(
    section: Option<&TracingSection>,
    metrics: &Arc<Metrics>,
    background: &Making<'_>,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let Some(section) = section else { return };
    let at = TomlPath::root().key("tracing");
    let before = problems.len();
    let destination = destination(section, &at, problems);
    if !(0.0..=1.0).contains(&section.sample_ratio) {
        problems.push((at.key("sample_ratio"), "must be from 0 to 1".into()));
    }
    if problems.len() > before {
        return;
    }
    let definition = destination.definition();
    let exporter = background.get_or_build("tracing", definition, || {
        Exporter::new(destination, metrics)
    });
    match exporter {
        Ok(exporter) => stages.add(Tracing {
            exporter,
            sample_ratio: section.sample_ratio,
        }),
        Err(e) => problems.push((at, e)),
    }
}

/// Where spans go, every problem with it reported.
fn destination(section: &TracingSection, at: &TomlPath, problems: &mut Problems) -> Destination {
    if let Err(why) = endpoint(&section.endpoint) {
        problems.push((at.key("endpoint"), why));
    }
    if section.service_name.is_empty() {
        problems.push((at.key("service_name"), "must not be empty".into()));
    }
    let mut headers = Vec::new();
    for (name, value) in &section.headers {
        let place = at.key("headers").key(name);
        match header(name, &value.env) {
            Ok(header) => headers.push(header),
            Err(why) => problems.push((place, why)),
        }
    }
    Destination {
        endpoint: section.endpoint.clone(),
        service_name: section.service_name.clone(),
        headers,
    }
}

/// An http(s) URL without credentials, query or fragment (those would show on the
/// admin listener's `/config`: credentials go in `headers`, from the environment).
fn endpoint(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is no URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?}: an http:// or https:// URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err("put credentials in `headers`, from the environment, not in the URL".into());
    }
    if url.fragment().is_some() {
        return Err(format!("{text:?}: a URL without a #fragment"));
    }
    Ok(())
}

/// The header `name` with the value of the environment variable `var`.
fn header(name: &str, var: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    if [
        http::header::CONTENT_TYPE,
        http::header::CONTENT_LENGTH,
        http::header::HOST,
    ]
    .contains(&name)
    {
        return Err(format!("{name} is set by the exporter"));
    }
    let value =
        std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?;
    let mut value =
        HeaderValue::from_str(&value).map_err(|_| format!("{var} is not a valid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_plain_http_urls() {
        assert!(endpoint("http://127.0.0.1:4318/v1/traces").is_ok());
        assert!(endpoint("https://otlp.example.com/v1/traces").is_ok());
        for bad in [
            "127.0.0.1:4318",
            "ftp://x/v1/traces",
            "https://user:pw@otlp.example.com/v1/traces",
            "https://otlp.example.com/v1/traces?key=secret",
            "https://otlp.example.com/v1/traces#x",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_values_come_from_the_environment() {
        assert!(header("x-api-key", "TOLLGATE_TEST_SURELY_UNSET").is_err());
        assert!(header("content-type", "PATH").is_err());
        let (name, value) = header("x-api-key", "PATH").expect("PATH is set");
        assert_eq!(name, "x-api-key");
        assert!(value.is_sensitive());
    }
}
