//! `validate` of a route: the request body's media type (`content_types`, 415
//! otherwise) and a JSON Schema it must satisfy (`body_schema`, draft 2020-12 or
//! draft-07, compiled at load with the `jsonschema` crate; remote `$ref`s are not
//! fetched).
//!
//! The whole body is read and checked before an upstream is chosen or connected
//! (bounded by the route's `max_body`, which validation requires), so a refused body
//! reaches no upstream, not even its head. Malformed JSON (or an object with a key
//! twice, see `strict_json`) gets 400, a body that fails the schema 400 with an
//! `errors` member (at most `MAX_ERRORS` entries of `instance_path`, `schema_path`,
//! `message`); a valid body is sent upstream as it arrived, byte for byte. A request without a body is not
//! checked. A schema file that is missing or does not compile is a config problem.

use http::{header, StatusCode};
use jsonschema::Validator;
use serde_json::{json, Value};
use std::path::Path;

use crate::base::strict_json;
use crate::config::location::{Problems, TomlPath};
use crate::config::raw::ValidateSection;
use crate::stage::{
    BodyChunk, Cx, Declared, Flow, Hooks, Reply, RequestView, Stage, StagesBuilder, Step,
};

/// Schema errors listed in a 400 at most.
const MAX_ERRORS: usize = 10;
/// Characters of one error message at most (messages quote the offending value).
const MAX_MESSAGE: usize = 200;

struct RequestValidation {
    /// Lower-case media types; empty: any.
    content_types: Vec<String>,
    schema: Option<Validator>,
    /// The route's `max_body`: all of a body the schema judges.
    max_body: u64,
}

/// Installs the checks; `max_body` is the route's effective limit (0: none).
pub fn install(
    section: Option<&ValidateSection>,
    max_body: u64,
    at: &TomlPath,
    problems: &mut Problems,
    stages: &mut StagesBuilder,
) {
    let Some(section) = section else { return };
    let at = at.key("validate");
    let schema = section.body_schema.as_deref().and_then(|path| {
        load_schema(path)
            .map_err(|why| problems.push((at.key("body_schema"), why)))
            .ok()
    });
    if schema.is_some() && max_body == 0 {
        problems.push((
            at.key("body_schema"),
            "validation holds the body in memory: the route needs a max_body".into(),
        ));
    }
    stages.add(RequestValidation {
        content_types: section
            .content_types
            .iter()
            .map(|t| t.trim().to_ascii_lowercase())
            .collect(),
        schema,
        max_body,
    });
}

fn load_schema(path: &Path) -> Result<Validator, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let schema: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    jsonschema::validator_for(&schema)
        .map_err(|e| format!("{}: not a valid JSON Schema: {e}", path.display()))
}

impl RequestValidation {
    fn check_content_type(&self, view: &RequestView<'_>) -> Result<(), Reply> {
        if self.content_types.is_empty() {
            return Ok(());
        }
        let media_type = view
            .req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match media_type {
            Some(t) if self.content_types.contains(&t) => Ok(()),
            _ => Err(Reply::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the request body must be one of: {}",
                    self.content_types.join(", ")
                ),
            )),
        }
    }

    fn check_body(&self, body: &[u8]) -> Result<(), Reply> {
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        let value = strict_json::parse(body).map_err(|e| {
            Reply::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        if schema.is_valid(&value) {
            // The common case, without collecting errors.
            return Ok(());
        }
        let errors: Vec<Value> = schema
            .iter_errors(&value)
            .take(MAX_ERRORS)
            .map(|e| {
                let message: String = e.to_string().chars().take(MAX_MESSAGE).collect();
                json!({
                    "instance_path": e.instance_path().to_string(),
                    "schema_path": e.schema_path().to_string(),
                    "message": message,
                })
            })
            .collect();
        match errors.is_empty() {
            true => Ok(()),
            false => Err(Reply::new(
                StatusCode::BAD_REQUEST,
                "the body does not match the route's schema",
            )
            .with_member("errors", Value::Array(errors))),
        }
    }
}

impl RequestValidation {
    /// The head of a request that announces a body: its media type.
    fn check_head(&self, view: &RequestView<'_>) -> Flow {
        match view.announces_body() {
            true => self.check_content_type(view),
            false => Ok(()),
        }
    }
}

impl Stage for RequestValidation {
    fn name(&self) -> &'static str {
        "validation"
    }

    fn declares(&self) -> Declared {
        Declared {
            whole_body: self.schema.is_some(),
            holds_body: match self.schema {
                Some(_) => self.max_body,
                None => 0,
            },
            refuses_after_head: false,
            ..Declared::hooks(Hooks::REQUEST.and(Hooks::BODY))
        }
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        self.check_head(&cx.view()).into()
    }

    fn on_body(&self, cx: &mut Cx<'_>, chunk: &BodyChunk<'_>) -> Flow {
        if !chunk.end_of_stream || chunk.received == 0 {
            return Ok(());
        }
        self.check_content_type(&cx.view())?;
        self.check_body(chunk.data.map_or(&[][..], |d| &d[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;

    fn validation(schema: Value) -> RequestValidation {
        RequestValidation {
            content_types: vec!["application/json".into()],
            schema: Some(jsonschema::validator_for(&schema).expect("schema")),
            max_body: 1024,
        }
    }

    #[test]
    fn schema_errors_are_listed_with_their_paths() {
        let v = validation(json!({
            "type": "object",
            "required": ["sku", "qty"],
            "properties": {"qty": {"type": "integer", "minimum": 1}}
        }));
        assert!(v.check_body(br#"{"sku":"a","qty":2}"#).is_ok());
        let bad = v.check_body(br#"{"qty":0}"#).expect_err("invalid");
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let errors = &bad.members[0].1;
        let paths: Vec<(&str, &str)> = errors
            .as_array()
            .expect("array")
            .iter()
            .map(|e| {
                (
                    e["instance_path"].as_str().unwrap_or("?"),
                    e["schema_path"].as_str().unwrap_or("?"),
                )
            })
            .collect();
        assert!(paths.contains(&("", "/required")), "{paths:?}");
        assert!(
            paths.contains(&("/qty", "/properties/qty/minimum")),
            "{paths:?}"
        );
        let malformed = v.check_body(b"{\"qty\":").expect_err("malformed");
        assert!(malformed.members.is_empty());
    }

    #[test]
    fn at_most_ten_errors_are_listed() {
        let v = validation(json!({"type": "array", "items": {"type": "integer"}}));
        let body = serde_json::to_vec(&vec!["x"; 50]).expect("json");
        let bad = v.check_body(&body).expect_err("invalid");
        assert_eq!(bad.members[0].1.as_array().map(Vec::len), Some(MAX_ERRORS));
    }

    #[test]
    fn content_types_are_compared_without_parameters() {
        let v = validation(json!({}));
        let mut req = RequestHeader::build("POST", b"/", None).expect("request");
        req.insert_header("content-length", "2").expect("h");
        req.insert_header("content-type", "Application/JSON; charset=utf-8")
            .expect("h");
        assert!(v.check_head(&RequestView::of(&req)).is_ok());
        req.insert_header("content-type", "text/plain").expect("h");
        let refused = v.check_head(&RequestView::of(&req)).expect_err("415");
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        req.insert_header("content-length", "0").expect("h");
        assert!(
            v.check_head(&RequestView::of(&req)).is_ok(),
            "no body, nothing to check"
        );
    }

    #[test]
    fn a_schema_that_does_not_compile_is_a_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"{"type": 12}"#).expect("write");
        assert!(load_schema(&path).is_err());
        assert!(load_schema(&dir.path().join("missing.json")).is_err());
    }
}
