//! `strip_prefix` of a route: the upstream gets the normalized path without the
//! route's `path_prefix` segments (`/api/v1/7` under `/api` goes up as `/v1/7`; the
//! prefix's `;params` go with it). The query is the one already bound for the
//! upstream (the client's, less a stripped query credential).

use pingora::http::RequestHeader;

use crate::edge::path::strip_segments;
use crate::edge::target::set_target;
use crate::stage::{Cx, Declared, Hooks, Stage, StagesBuilder};

struct StripPrefix {
    /// Segments in the route's prefix.
    segments: usize,
}

pub fn install(strip_prefix: bool, path_prefix: &str, stages: &mut StagesBuilder) {
    let segments = path_prefix.split('/').filter(|s| !s.is_empty()).count();
    if strip_prefix && segments > 0 {
        stages.add(StripPrefix { segments });
    }
}

impl Stage for StripPrefix {
    fn name(&self) -> &'static str {
        "strip_prefix"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::UPSTREAM)
    }

    fn on_upstream(&self, cx: &mut Cx<'_>, upstream: &mut RequestHeader) -> pingora::Result<()> {
        // From the target's bytes: the Uri holds a lossy copy of a query that is no UTF-8.
        let raw = upstream.raw_path();
        let query = raw
            .iter()
            .position(|&b| b == b'?')
            .map(|i| raw[i + 1..].to_vec());
        set_target(
            upstream,
            strip_segments(&cx.facts().path, self.segments),
            query.as_deref(),
        )
    }
}
