//! What a stage sees of a request: the request head, the [`Facts`] tollgate
//! established about it, and its own typed slot of per-request state.

use pingora::http::RequestHeader;
use pingora::protocols::tls::SslDigest;
use std::any::Any;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::auth::Principal;
use crate::tls::ClientCert;

/// What tollgate established about a request before and while its stages run.
pub struct Facts {
    pub started: Instant,
    /// The same moment on the wall clock (logs, traces).
    pub started_at: SystemTime,
    pub request_id: String,
    /// The TCP peer and whether it is a trusted proxy.
    pub peer_ip: IpAddr,
    pub peer_trusted: bool,
    /// The client as far as we can tell (see `edge::forwarded`).
    pub client_ip: IpAddr,
    /// The connection's TLS session (protocol, cipher, client certificate), if TLS.
    pub tls: Option<Arc<SslDigest>>,
    /// The host the request names, lower case, without port.
    pub host: String,
    /// The normalized path (see `edge::path`); empty until it is computed.
    pub path: String,
    /// Where the query starts in the raw target, found once by hygiene.
    pub query_start: Option<usize>,
    /// The route the request took.
    pub route: Option<Arc<RouteLabel>>,
    /// Who the request is, once authentication accepted (or forbade) it.
    pub principal: Option<Arc<Principal>>,
    /// In the response phase: the response is tollgate's own reply.
    pub own_reply: bool,
    /// Which try at the upstream is under way, from 1 (`Outcome::tries[n - 1]`); 0
    /// before the first.
    pub try_number: usize,
}

/// A route as logs and traces name it.
#[derive(Debug)]
pub struct RouteLabel {
    pub name: Arc<str>,
    /// Its `path_prefix`, as written.
    pub path_prefix: String,
}

impl Facts {
    /// The facts of a request that starts at `started_at` (the clock's reading).
    pub fn new(started_at: SystemTime) -> Self {
        Self {
            started: Instant::now(),
            started_at,
            request_id: String::new(),
            peer_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_trusted: false,
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tls: None,
            host: String::new(),
            path: String::new(),
            query_start: None,
            route: None,
            principal: None,
            own_reply: false,
            try_number: 0,
        }
    }

    /// The verified client certificate of the connection, if it presented one.
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.tls.as_ref()?.extension.get::<ClientCert>()
    }

    /// The authenticated consumer's id.
    pub fn consumer(&self) -> Option<&str> {
        self.principal.as_deref().map(|p| p.id.as_str())
    }

    /// What stages read of the request `req` (the client's head) and these facts.
    pub fn view<'a>(&'a self, req: &'a RequestHeader) -> RequestView<'a> {
        RequestView {
            req,
            path: &self.path,
            query: self.query_start.and_then(|i| req.raw_path().get(i..)),
            host: &self.host,
            client_ip: self.client_ip,
            secure: self.tls.is_some(),
            consumer: self.consumer(),
            own_reply: self.own_reply,
        }
    }
}

/// The request as most stages read it: the head as the client sent it, and what
/// tollgate established about it.
pub struct RequestView<'a> {
    pub req: &'a RequestHeader,
    /// The normalized path: what routing matched and what the upstream receives.
    pub path: &'a str,
    /// The query as the client sent it (forwarded byte for byte).
    pub query: Option<&'a [u8]>,
    pub host: &'a str,
    pub client_ip: IpAddr,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The authenticated consumer, once authentication has run.
    pub consumer: Option<&'a str>,
    /// In the response phase: the response is tollgate's own reply, not the upstream's.
    pub own_reply: bool,
}

impl RequestView<'_> {
    /// Whether the head announces a body: `Transfer-Encoding`, or a `Content-Length`
    /// other than 0 (HTTP/2 bodies without a length show only when they end).
    pub fn announces_body(&self) -> bool {
        let headers = &self.req.headers;
        headers.contains_key(http::header::TRANSFER_ENCODING)
            || headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0")
    }
}

#[cfg(test)]
impl<'a> RequestView<'a> {
    /// A view of `req` as a plain-HTTP request from 192.0.2.1 to `h.example`, its
    /// path taken as normalized.
    pub fn of(req: &'a RequestHeader) -> Self {
        Self {
            req,
            path: req.uri.path(),
            query: req.uri.query().map(str::as_bytes),
            host: "h.example",
            client_ip: Ipv4Addr::new(192, 0, 2, 1).into(),
            secure: false,
            consumer: None,
            own_reply: false,
        }
    }
}

type Slot = Option<Box<dyn Any + Send + Sync>>;

/// The per-request state of one list's stages, a slot per stage, by its place in the
/// list. Empty (no allocation) until a stage stores something.
#[derive(Default)]
pub struct Slots(Vec<Slot>);

/// A stage's access to the request while one of its hooks runs.
pub struct Cx<'a> {
    pub req: &'a RequestHeader,
    facts: &'a mut Facts,
    slots: &'a mut Slots,
    /// The running stage's place in its list: its slot.
    index: usize,
}

impl<'a> Cx<'a> {
    pub fn new(
        req: &'a RequestHeader,
        facts: &'a mut Facts,
        slots: &'a mut Slots,
        index: usize,
    ) -> Self {
        Self {
            req,
            facts,
            slots,
            index,
        }
    }

    pub fn facts(&self) -> &Facts {
        self.facts
    }

    pub fn view(&self) -> RequestView<'_> {
        self.facts.view(self.req)
    }

    /// Records who the request is (authentication).
    pub fn set_principal(&mut self, principal: Arc<Principal>) {
        self.facts.principal = Some(principal);
    }

    /// The running stage's state, if it stored one of type `T`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.slots.0.get(self.index)?.as_ref()?.downcast_ref()
    }

    /// The running stage's state of type `T`, made with `T::default()` on first use
    /// (one box for the request).
    pub fn state_mut<T: Default + Send + Sync + 'static>(&mut self) -> &mut T {
        self.state_or_insert_with(|_| T::default())
    }

    /// The running stage's state of type `T`, made by `make` from the request on
    /// first use (one box for the request).
    pub fn state_or_insert_with<T: Send + Sync + 'static>(
        &mut self,
        make: impl FnOnce(&RequestHeader) -> T,
    ) -> &mut T {
        let req = self.req;
        let slots = &mut self.slots.0;
        if slots.len() <= self.index {
            slots.resize_with(self.index + 1, || None);
        }
        let slot = &mut slots[self.index];
        if !slot.as_ref().is_some_and(|s| s.is::<T>()) {
            *slot = Some(Box::new(make(req)));
        }
        match slot.as_mut().and_then(|s| s.downcast_mut::<T>()) {
            Some(state) => state,
            // Just stored as a `T`.
            None => unreachable!("a slot holds the type just stored in it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(u32);

    #[test]
    fn each_stage_has_its_own_typed_slot() {
        let req = RequestHeader::build("GET", b"/", None).expect("request");
        let (mut facts, mut slots) = (Facts::new(SystemTime::now()), Slots::default());
        assert!(
            slots.0.is_empty(),
            "nothing allocated before a stage stores"
        );
        {
            let mut cx = Cx::new(&req, &mut facts, &mut slots, 2);
            assert!(cx.state::<Count>().is_none());
            cx.state_mut::<Count>().0 += 1;
            cx.state_mut::<Count>().0 += 1;
            assert_eq!(cx.state::<Count>().map(|c| c.0), Some(2));
        }
        let cx = Cx::new(&req, &mut facts, &mut slots, 0);
        assert!(cx.state::<Count>().is_none(), "another stage's slot");
    }
}
