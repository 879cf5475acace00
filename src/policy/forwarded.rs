//! What every upstream request is told about the client, as a server-wide stage:
//! `X-Forwarded-For`, `-Proto` and `-Host` (see `edge::forwarded`: replaced unless the
//! peer is a trusted proxy), the request id as `X-Request-Id`, and a verified client
//! certificate (`tls::forward_client_cert`: its headers are always replaced, never
//! taken from the client).

use pingora::http::RequestHeader;

use crate::edge::forwarded::{self, Forwarded};
use crate::edge::request_id;
use crate::stage::{Cx, Declared, Hooks, Stage, StagesBuilder};
use crate::tls::forward_client_cert;

struct ForwardedHeaders {
    /// `client_ip_header` is not `X-Forwarded-For`: the client believed is passed on.
    named_elsewhere: bool,
}

pub fn install(named_elsewhere: bool, stages: &mut StagesBuilder) {
    stages.add(ForwardedHeaders { named_elsewhere });
}

impl Stage for ForwardedHeaders {
    fn name(&self) -> &'static str {
        "forwarded"
    }

    fn declares(&self) -> Declared {
        Declared {
            // The forwarded headers and `X-Request-Id` (client certificates are rarer).
            upstream_headers: forwarded::ADDED + 1,
            ..Declared::hooks(Hooks::UPSTREAM)
        }
    }

    fn on_upstream(&self, cx: &mut Cx<'_>, upstream: &mut RequestHeader) -> pingora::Result<()> {
        let facts = cx.facts();
        let forwarded = Forwarded {
            peer: facts.peer_ip,
            peer_trusted: facts.peer_trusted,
            named_client: self.named_elsewhere.then_some(facts.client_ip),
            proto: if facts.tls.is_some() { "https" } else { "http" },
        };
        forwarded.apply(upstream)?;
        upstream.insert_known_header(&request_id::HEADER_NAME, &facts.request_id)?;
        forward_client_cert(facts.client_cert(), upstream)
    }
}
