//! [`Stages`]: the stages of one listener or route in install order, indexed by the
//! hooks they declared, and the runner of each phase. Built once per snapshot by
//! [`StagesBuilder`]; read-only afterwards. A request or body phase stops at the first
//! stage that answers; the others run every stage.

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use std::sync::Arc;

use super::{BodyChunk, Cx, Facts, Hooks, LogFields, Outcome, Reply, Slots, Stage, Step};

#[derive(Default)]
pub struct Stages {
    all: Vec<Arc<dyn Stage>>,
    /// The places in `all` of the stages that have each hook.
    request: Vec<usize>,
    body: Vec<usize>,
    upstream: Vec<usize>,
    response: Vec<usize>,
    response_body: Vec<usize>,
    done: Vec<usize>,
    log: Vec<usize>,
    answers_preflights: bool,
    whole_body: bool,
    holds_body: u64,
    refuses_after_head: bool,
    upstream_headers: usize,
    response_headers: usize,
}

/// A stage answered the request instead of letting it go on.
pub struct Refused {
    pub stage: &'static str,
    pub reply: Reply,
}

impl Stages {
    /// Whether a stage answers CORS preflights (routing sends them here).
    pub fn answers_preflights(&self) -> bool {
        self.answers_preflights
    }

    /// Whether a stage needs the whole body before any of it goes upstream.
    pub fn whole_body(&self) -> bool {
        self.whole_body
    }

    /// Body bytes the stages judge before an upstream is chosen (see `Declared`).
    pub fn holds_body(&self) -> u64 {
        self.holds_body
    }

    /// Whether a stage may refuse the request from its body.
    pub fn refuses_after_head(&self) -> bool {
        self.refuses_after_head
    }

    /// Headers the stages usually add to the upstream request, all together.
    pub fn upstream_headers(&self) -> usize {
        self.upstream_headers
    }

    /// Headers the stages usually add to a response, all together.
    pub fn response_headers(&self) -> usize {
        self.response_headers
    }

    pub fn has_body_hooks(&self) -> bool {
        !self.body.is_empty()
    }

    pub fn has_response_body_hooks(&self) -> bool {
        !self.response_body.is_empty()
    }

    /// The request phase: each stage in turn until one answers.
    pub async fn request(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
    ) -> Result<(), Box<Refused>> {
        for &i in &self.request {
            let stage = &self.all[i];
            let mut cx = Cx::new(req, facts, slots, i);
            let flow = match stage.on_request(&mut cx) {
                Step::Continue => Ok(()),
                Step::Reply(reply) => Err(reply),
                Step::Wait(future) => future.await,
            };
            flow.map_err(|reply| refused(stage.as_ref(), reply))?;
        }
        Ok(())
    }

    /// One chunk of the body: each stage in turn until one refuses.
    pub fn body(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        chunk: &BodyChunk<'_>,
    ) -> Result<(), Box<Refused>> {
        for &i in &self.body {
            let stage = &self.all[i];
            stage
                .on_body(&mut Cx::new(req, facts, slots, i), chunk)
                .map_err(|reply| refused(stage.as_ref(), reply))?;
        }
        Ok(())
    }

    /// The request about to go to the upstream, on every try.
    pub fn upstream(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        upstream: &mut RequestHeader,
    ) -> pingora::Result<()> {
        for &i in &self.upstream {
            self.all[i].on_upstream(&mut Cx::new(req, facts, slots, i), upstream)?;
        }
        Ok(())
    }

    /// A response head of the request, whoever wrote it.
    pub fn response(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        resp: &mut ResponseHeader,
    ) -> pingora::Result<()> {
        for &i in &self.response {
            self.all[i].on_response(&mut Cx::new(req, facts, slots, i), resp)?;
        }
        Ok(())
    }

    /// A piece of the response body.
    pub fn response_body(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> pingora::Result<()> {
        for &i in &self.response_body {
            let cx = &mut Cx::new(req, facts, slots, i);
            self.all[i].on_response_body(cx, body, end_of_stream)?;
        }
        Ok(())
    }

    /// The end of the request, for every stage with a `done` hook.
    pub async fn done(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        outcome: &Outcome<'_>,
    ) {
        for &i in &self.done {
            let mut cx = Cx::new(req, facts, slots, i);
            let waiting = self.all[i].on_done(&mut cx, outcome);
            if let Some(waiting) = waiting {
                waiting.await;
            }
        }
    }

    /// What the stages add to the access-log line.
    pub fn log_fields(
        &self,
        req: &RequestHeader,
        facts: &mut Facts,
        slots: &mut Slots,
        fields: &mut LogFields,
    ) {
        for &i in &self.log {
            self.all[i].log_fields(&Cx::new(req, facts, slots, i), fields);
        }
    }
}

fn refused(stage: &dyn Stage, reply: Reply) -> Box<Refused> {
    Box::new(Refused {
        stage: stage.name(),
        reply,
    })
}

/// Collects the stages of a list, in the order they run.
#[derive(Default)]
pub struct StagesBuilder(Vec<Arc<dyn Stage>>);

impl StagesBuilder {
    pub fn add(&mut self, stage: impl Stage + 'static) {
        self.0.push(Arc::new(stage));
    }

    /// Adds every stage of `other`, after those already here.
    pub fn include(&mut self, other: &Stages) {
        self.0.extend(other.all.iter().cloned());
    }

    pub fn finish(self) -> Stages {
        let mut stages = Stages::default();
        for (i, stage) in self.0.iter().enumerate() {
            let declared = stage.declares();
            let lists = [
                (Hooks::REQUEST, &mut stages.request),
                (Hooks::BODY, &mut stages.body),
                (Hooks::UPSTREAM, &mut stages.upstream),
                (Hooks::RESPONSE, &mut stages.response),
                (Hooks::RESPONSE_BODY, &mut stages.response_body),
                (Hooks::DONE, &mut stages.done),
                (Hooks::LOG, &mut stages.log),
            ];
            for (hook, list) in lists {
                if declared.hooks.has(hook) {
                    list.push(i);
                }
            }
            stages.answers_preflights |= declared.answers_preflights;
            stages.whole_body |= declared.whole_body;
            stages.holds_body = stages.holds_body.max(declared.holds_body);
            stages.refuses_after_head |= declared.refuses_after_head;
            stages.upstream_headers += declared.upstream_headers;
            stages.response_headers += declared.response_headers;
        }
        stages.all = self.0;
        stages
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Declared, Flow};
    use super::*;
    use futures::FutureExt;
    use http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its calls; refuses when `refuse` is set; awaits when `waits` is set.
    struct Probe {
        calls: Arc<AtomicUsize>,
        refuse: bool,
        waits: bool,
    }

    fn probe(refuse: bool, waits: bool) -> (Probe, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let probe = Probe {
            calls: calls.clone(),
            refuse,
            waits,
        };
        (probe, calls)
    }

    impl Probe {
        fn answer(&self) -> Flow {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match self.refuse {
                true => Err(Reply::new(StatusCode::PAYLOAD_TOO_LARGE, "refused")),
                false => Ok(()),
            }
        }
    }

    impl Stage for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }

        fn declares(&self) -> Declared {
            Declared::hooks(Hooks::REQUEST.and(Hooks::BODY))
        }

        fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
            *cx.state_mut::<usize>() += 1;
            match self.waits {
                true => Step::Wait(async move { self.answer() }.boxed()),
                false => self.answer().into(),
            }
        }

        fn on_body(&self, _: &mut Cx<'_>, _: &BodyChunk<'_>) -> Flow {
            self.answer()
        }

        fn on_response(&self, _: &mut Cx<'_>, _: &mut ResponseHeader) -> pingora::Result<()> {
            panic!("not declared, never called")
        }
    }

    #[test]
    fn phases_run_in_install_order_and_stop_at_the_first_answer() {
        let (first, first_calls) = probe(false, false);
        let (waiting, waiting_calls) = probe(false, true);
        let (refusing, refusing_calls) = probe(true, false);
        let (never, never_calls) = probe(false, false);
        let mut b = StagesBuilder::default();
        for p in [first, waiting, refusing, never] {
            b.add(p);
        }
        let stages = b.finish();
        let req = RequestHeader::build("GET", b"/", None).expect("request");
        let (mut facts, mut slots) = (Facts::new(std::time::SystemTime::now()), Slots::default());
        let refused = stages
            .request(&req, &mut facts, &mut slots)
            .now_or_never()
            .expect("nothing really waits")
            .expect_err("the third refuses");
        assert_eq!(refused.stage, "probe");
        assert_eq!(refused.reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        let chunk = BodyChunk {
            data: None,
            received: 0,
            end_of_stream: true,
        };
        assert!(stages.body(&req, &mut facts, &mut slots, &chunk).is_err());
        let mut resp = ResponseHeader::build(200, None).expect("response");
        stages
            .response(&req, &mut facts, &mut slots, &mut resp)
            .expect("no response hooks");
        let calls = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        assert_eq!(
            [&first_calls, &waiting_calls, &refusing_calls, &never_calls].map(|c| calls(c)),
            [2, 2, 2, 0]
        );
        assert!(Stages::default()
            .request(&req, &mut facts, &mut slots)
            .now_or_never()
            .is_some_and(|r| r.is_ok()));
    }
}
