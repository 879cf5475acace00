//! A finished request as spans: what the stage records when the request ends (one
//! SERVER span, one CLIENT span per try at the upstream) and how it becomes OTLP's
//! protobuf messages. Attribute names follow OpenTelemetry's HTTP semantic
//! conventions; tollgate's own are under `tollgate.`.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::context::{SpanId, TraceId};

/// One request's spans, as recorded when it ended.
pub struct Finished {
    pub trace_id: TraceId,
    pub server_span: SpanId,
    /// The span of the client's request that this one continues, if any.
    pub parent: Option<SpanId>,
    /// The incoming `tracestate`, kept with the trace.
    pub tracestate: Option<String>,
    pub method: String,
    /// The normalized path (or the path as sent, when it was refused before).
    pub path: String,
    /// The route's `path_prefix` and name.
    pub route: Option<(String, Arc<str>)>,
    pub status: Option<u16>,
    pub client_ip: IpAddr,
    /// `1.0`, `1.1` or `2`.
    pub protocol_version: &'static str,
    pub user_agent: Option<String>,
    pub consumer: Option<String>,
    /// The stage that answered instead of the upstream, and why.
    pub refused: Option<(&'static str, String)>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub tries: Vec<TrySpan>,
}

/// One try at the upstream.
pub struct TrySpan {
    pub span_id: SpanId,
    pub target: SocketAddr,
    pub status: Option<u16>,
    /// The kind of error the try failed with, and what was said of it.
    pub error: Option<(&'static str, String)>,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Finished {
    /// How many spans this request makes.
    pub fn span_count(&self) -> u64 {
        1 + self.tries.len() as u64
    }

    /// Its spans as OTLP messages: the SERVER span, then the CLIENT spans.
    pub fn into_spans(self) -> Vec<Span> {
        let mut spans = Vec::with_capacity(1 + self.tries.len());
        spans.push(self.server());
        for try_span in &self.tries {
            spans.push(self.client(try_span));
        }
        spans
    }

    fn server(&self) -> Span {
        let name = match &self.route {
            Some((prefix, _)) => format!("{} {prefix}", self.method),
            None => self.method.clone(),
        };
        let mut attributes = vec![
            text("http.request.method", &self.method),
            text("url.path", &self.path),
            owned("client.address", ip_text(self.client_ip)),
            text("network.protocol.version", self.protocol_version),
        ];
        if let Some((prefix, route)) = &self.route {
            attributes.push(text("http.route", prefix));
            attributes.push(text("tollgate.route", route));
        }
        if let Some(status) = self.status {
            attributes.push(int("http.response.status_code", status.into()));
        }
        if let Some(agent) = &self.user_agent {
            attributes.push(text("user_agent.original", agent));
        }
        if let Some(consumer) = &self.consumer {
            attributes.push(text("tollgate.consumer", consumer));
        }
        let events = match &self.refused {
            Some((stage, reason)) => vec![Event {
                time_unix_nano: self.end_ns,
                name: "tollgate.refused".to_owned(),
                attributes: vec![
                    text("tollgate.stage", stage),
                    text("tollgate.reason", reason),
                ],
                dropped_attributes_count: 0,
            }],
            None => Vec::new(),
        };
        let failed = self.status.is_none_or(|s| s >= 500);
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.server_span.to_vec(),
            trace_state: self.tracestate.clone().unwrap_or_default(),
            parent_span_id: self.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: SpanKind::Server as i32,
            start_time_unix_nano: self.start_ns,
            end_time_unix_nano: self.end_ns,
            attributes,
            events,
            status: Some(status(failed, None)),
            ..Span::default()
        }
    }

    fn client(&self, t: &TrySpan) -> Span {
        let address = ip_text(t.target.ip());
        let mut attributes = vec![
            text("http.request.method", &self.method),
            owned("server.address", address.clone()),
            int("server.port", t.target.port().into()),
            owned("network.peer.address", address),
        ];
        if let Some(status) = t.status {
            attributes.push(int("http.response.status_code", status.into()));
        }
        if let Some((kind, _)) = &t.error {
            attributes.push(text("error.type", kind));
        }
        let failed = t.error.is_some() || t.status.is_none_or(|s| s >= 500);
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: t.span_id.to_vec(),
            trace_state: self.tracestate.clone().unwrap_or_default(),
            parent_span_id: self.server_span.to_vec(),
            name: self.method.clone(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: t.start_ns,
            end_time_unix_nano: t.end_ns,
            attributes,
            status: Some(status(failed, t.error.as_ref().map(|(_, m)| m.as_str()))),
            ..Span::default()
        }
    }
}

fn status(failed: bool, message: Option<&str>) -> Status {
    Status {
        message: message.unwrap_or_default().to_owned(),
        code: match failed {
            true => StatusCode::Error as i32,
            false => StatusCode::Unset as i32,
        },
    }
}

pub fn text(key: &str, value: &str) -> KeyValue {
    owned(key, value.to_owned())
}

fn owned(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// An address as text: an IPv4 one written digit by digit (`Display` goes through the
/// formatting machinery, several times slower for what every span carries).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = match octet {
            0..=9 => 2,
            10..=99 => 1,
            _ => 0,
        };
        out.extend(digits[skip..].iter().map(|d| char::from(b'0' + d)));
    }
    out
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: Option<u16>, tries: Vec<TrySpan>) -> Finished {
        Finished {
            trace_id: [1; 16],
            server_span: [2; 8],
            parent: Some([3; 8]),
            tracestate: Some("vendor=x".into()),
            method: "GET".into(),
            path: "/v1/orders/7".into(),
            route: Some(("/v1/orders".into(), "orders".into())),
            status,
            client_ip: "192.0.2.1".parse().expect("ip"),
            protocol_version: "1.1",
            user_agent: Some("curl/8".into()),
            consumer: Some("acme".into()),
            refused: None,
            start_ns: 1_000,
            end_ns: 5_000,
            tries,
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        let kv = span.attributes.iter().find(|kv| kv.key == key)?;
        kv.value.as_ref()?.value.as_ref()
    }

    #[test]
    fn a_server_span_names_its_route_and_client_spans_are_its_children() {
        let tries = vec![
            TrySpan {
                span_id: [4; 8],
                target: "10.0.0.1:80".parse().expect("addr"),
                status: Some(503),
                error: Some(("upstream status to retry", "the target answered 503".into())),
                start_ns: 2_000,
                end_ns: 3_000,
            },
            TrySpan {
                span_id: [5; 8],
                target: "10.0.0.2:80".parse().expect("addr"),
                status: Some(200),
                error: None,
                start_ns: 3_000,
                end_ns: 4_000,
            },
        ];
        let spans = finished(Some(200), tries).into_spans();
        assert_eq!(spans.len(), 3);
        let server = &spans[0];
        assert_eq!(server.name, "GET /v1/orders");
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(server.parent_span_id, vec![3; 8]);
        assert_eq!(
            attribute(server, "http.response.status_code"),
            Some(&Value::IntValue(200))
        );
        assert_eq!(
            attribute(server, "tollgate.consumer"),
            Some(&Value::StringValue("acme".into()))
        );
        assert_eq!(server.status.as_ref().map(|s| s.code), Some(0));
        for (client, code) in spans[1..].iter().zip([2, 0]) {
            assert_eq!(client.kind, SpanKind::Client as i32);
            assert_eq!(client.parent_span_id, vec![2; 8]);
            assert_eq!(client.trace_id, vec![1; 16]);
            assert_eq!(client.status.as_ref().map(|s| s.code), Some(code));
        }
        assert_eq!(
            attribute(&spans[1], "server.address"),
            Some(&Value::StringValue("10.0.0.1".into()))
        );
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "192.0.2.1",
            "10.100.9.255",
            "127.0.0.1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn a_5xx_is_an_error_and_a_refusal_is_an_event() {
        let mut refused = finished(Some(429), Vec::new());
        refused.refused = Some(("limit", "rate limit exceeded".into()));
        let spans = refused.into_spans();
        assert_eq!(spans[0].events.len(), 1);
        assert_eq!(spans[0].events[0].name, "tollgate.refused");
        assert_eq!(spans[0].status.as_ref().map(|s| s.code), Some(0));
        let failed = finished(Some(502), Vec::new()).into_spans();
        assert_eq!(failed[0].status.as_ref().map(|s| s.code), Some(2));
    }
}
