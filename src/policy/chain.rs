//! A chain: the policies of one listener or route, per phase, in install order. Built
//! once per snapshot by [`ChainBuilder`]; read-only afterwards. Running a phase
//! stops at the first policy that answers.

use pingora::http::{RequestHeader, ResponseHeader};
use std::sync::Arc;

use super::{
    BodyChunk, BodyPolicy, Reply, RequestPolicy, RequestView, ResponsePolicy, UpstreamPolicy,
};

#[derive(Default)]
pub struct Chain {
    request: Vec<Arc<dyn RequestPolicy>>,
    body: Vec<Arc<dyn BodyPolicy>>,
    upstream: Vec<Arc<dyn UpstreamPolicy>>,
    response: Vec<Arc<dyn ResponsePolicy>>,
    marks: Marks,
}

/// What a chain's policies ask of the stages around them.
#[derive(Default, Clone, Copy)]
struct Marks {
    /// A CORS policy answers preflights, whatever methods the route takes.
    answers_preflights: bool,
    /// The route is deprecated: its access-log lines say so.
    deprecated: bool,
    /// A body policy needs the whole body before any of it goes upstream.
    holds_body: bool,
}

impl Chain {
    pub fn on_request(&self, view: &RequestView<'_>) -> Result<(), Reply> {
        self.request.iter().try_for_each(|p| p.on_request(view))
    }

    pub fn on_body(&self, view: &RequestView<'_>, chunk: &BodyChunk<'_>) -> Result<(), Reply> {
        self.body.iter().try_for_each(|p| p.on_body(view, chunk))
    }

    pub fn has_body_policies(&self) -> bool {
        !self.body.is_empty()
    }

    pub fn answers_preflights(&self) -> bool {
        self.marks.answers_preflights
    }

    pub fn is_deprecated(&self) -> bool {
        self.marks.deprecated
    }

    pub fn holds_body(&self) -> bool {
        self.marks.holds_body
    }

    pub fn on_upstream(
        &self,
        view: &RequestView<'_>,
        upstream: &mut RequestHeader,
    ) -> pingora::Result<()> {
        self.upstream
            .iter()
            .try_for_each(|p| p.on_upstream(view, upstream))
    }

    pub fn on_response(
        &self,
        view: &RequestView<'_>,
        resp: &mut ResponseHeader,
    ) -> pingora::Result<()> {
        self.response
            .iter()
            .try_for_each(|p| p.on_response(view, resp))
    }
}

/// Collects a chain's policies; a policy's `install` adds itself to each phase it
/// implements.
#[derive(Default)]
pub struct ChainBuilder(Chain);

impl ChainBuilder {
    pub fn request(&mut self, policy: Arc<dyn RequestPolicy>) {
        self.0.request.push(policy);
    }

    pub fn body(&mut self, policy: Arc<dyn BodyPolicy>) {
        self.0.body.push(policy);
    }

    pub fn upstream(&mut self, policy: Arc<dyn UpstreamPolicy>) {
        self.0.upstream.push(policy);
    }

    pub fn response(&mut self, policy: Arc<dyn ResponsePolicy>) {
        self.0.response.push(policy);
    }

    pub fn answers_preflights(&mut self) {
        self.0.marks.answers_preflights = true;
    }

    pub fn deprecated(&mut self) {
        self.0.marks.deprecated = true;
    }

    pub fn holds_body(&mut self) {
        self.0.marks.holds_body = true;
    }

    /// Adds every policy of `other`, phase by phase, after those already here.
    pub fn include(&mut self, other: &Chain) {
        self.0.request.extend(other.request.iter().cloned());
        self.0.body.extend(other.body.iter().cloned());
        self.0.upstream.extend(other.upstream.iter().cloned());
        self.0.response.extend(other.response.iter().cloned());
    }

    pub fn finish(self) -> Chain {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its calls; refuses when `refuse` is set.
    struct Probe {
        calls: AtomicUsize,
        refuse: bool,
    }

    impl Probe {
        fn new(refuse: bool) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                refuse,
            })
        }

        fn answer(&self) -> Result<(), Reply> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match self.refuse {
                true => Err(Reply::new(StatusCode::PAYLOAD_TOO_LARGE, "refused")),
                false => Ok(()),
            }
        }
    }

    impl RequestPolicy for Probe {
        fn on_request(&self, _: &RequestView<'_>) -> Result<(), Reply> {
            self.answer()
        }
    }

    impl BodyPolicy for Probe {
        fn on_body(&self, _: &RequestView<'_>, _: &BodyChunk<'_>) -> Result<(), Reply> {
            self.answer()
        }
    }

    #[test]
    fn phases_run_in_install_order_and_stop_at_the_first_answer() {
        let (first, refusing, never) = (Probe::new(false), Probe::new(true), Probe::new(false));
        let mut b = ChainBuilder::default();
        for p in [&first, &refusing, &never] {
            b.request(p.clone());
            b.body(p.clone());
        }
        let chain = b.finish();
        let req = RequestHeader::build("GET", b"/", None).expect("request");
        let view = RequestView::of(&req);
        let refused = chain.on_request(&view).expect_err("the second refuses");
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
        let chunk = BodyChunk {
            data: None,
            received: 0,
            end_of_stream: true,
        };
        assert!(chain.has_body_policies());
        assert!(chain.on_body(&view, &chunk).is_err());
        let calls = |p: &Probe| p.calls.load(Ordering::Relaxed);
        assert_eq!((calls(&first), calls(&refusing), calls(&never)), (2, 2, 0));
        assert!(Chain::default().on_request(&view).is_ok());
    }
}
