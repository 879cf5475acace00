//! `redirect_https` of a plain listener: every request is answered with a 308 to the
//! same normalized path and query over HTTPS, on `https_port` (443 is left out of the
//! URL); a request that names no host (HTTP/1.0 without `Host`) gets 400.

use http::{header, StatusCode};

use crate::stage::{Cx, Declared, Flow, Hooks, Reply, RequestView, Stage, StagesBuilder, Step};

struct HttpsRedirect {
    port: u16,
}

pub fn install(redirect_https: bool, https_port: u16, stages: &mut StagesBuilder) {
    if redirect_https {
        stages.add(HttpsRedirect { port: https_port });
    }
}

impl Stage for HttpsRedirect {
    fn name(&self) -> &'static str {
        "https_redirect"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::REQUEST)
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        redirect(&cx.view(), self.port).into()
    }
}

/// Every request's answer: a 308 to its HTTPS URL.
fn redirect(view: &RequestView<'_>, port: u16) -> Flow {
    if view.host.is_empty() {
        // An HTTP/1.0 request without Host: there is no URL to send it to.
        return Err(Reply::new(
            StatusCode::BAD_REQUEST,
            "a Host header is needed to redirect to HTTPS",
        ));
    }
    Err(Reply::new(
        StatusCode::PERMANENT_REDIRECT,
        "this resource is served over HTTPS",
    )
    .with_header(header::LOCATION, location(view, port)))
}

/// `https://host[:port]/path?query`.
fn location(view: &RequestView<'_>, port: u16) -> String {
    let authority = match port {
        443 => view.host.to_owned(),
        _ => format!("{}:{port}", view.host),
    };
    match view.query {
        Some(q) => format!(
            "https://{authority}{}?{}",
            view.path,
            String::from_utf8_lossy(q)
        ),
        None => format!("https://{authority}{}", view.path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;

    #[test]
    fn location_keeps_path_and_query_and_drops_port_443() {
        let req = RequestHeader::build("GET", b"/a?b=1", None).expect("request");
        let view = |query| RequestView {
            query,
            ..RequestView::of(&req)
        };
        assert_eq!(
            location(&view(Some(b"b=1".as_slice())), 443),
            "https://h.example/a?b=1"
        );
        assert_eq!(location(&view(None), 8443), "https://h.example:8443/a");
    }
}
