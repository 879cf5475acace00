//! The listeners' connection filter, run on each connection as it is accepted,
//! before any TLS handshake:
//!
//! - The accept loop's turn: after each connection it accepts, a listener's accept
//!   loop waits until the worker has run the tasks already ready and polled for I/O
//!   again, so requests already received go before new handshakes, as nginx's one
//!   accept per pass of its event loop does. Without it, Pingora's accept loop takes
//!   the whole backlog at once, and every new TLS handshake queues ahead of requests
//!   already read: under load a request on a new connection waited behind the
//!   handshakes of every connection accepted with it (load-tests/README.md,
//!   `+https-new` p50).
//! - `max_connections_per_ip`: a connection from an address that holds its limit
//!   (connections open and handshakes under way) is closed here, before it costs a
//!   handshake; otherwise it reserves its slot ([`PerIp::reserve`]), which the guard
//!   claims, or which is given back when the handshake fails or times out
//!   (`connection_lost`). Trusted proxies are not limited. Refusals are counted.

use async_trait::async_trait;
use pingora::listeners::ConnectionFilter;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{CurrentLimits, PerIp};

/// A Pingora connection filter: one accept per turn, and the per-IP limit.
pub struct AcceptFilter {
    pub per_ip: Arc<PerIp>,
    pub limits: CurrentLimits,
    pub refused_per_ip: prometheus::IntCounter,
}

impl AcceptFilter {
    /// Whether the connection from `peer` may go on (its slot reserved if limited).
    fn admits(&self, peer: SocketAddr) -> bool {
        let limits = (self.limits)();
        let Some(max) = limits.max_connections_per_ip else {
            return true;
        };
        if limits.exempt.contains(peer.ip()) || self.per_ip.reserve(peer, max) {
            return true;
        }
        self.refused_per_ip.inc();
        false
    }
}

#[async_trait]
impl ConnectionFilter for AcceptFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        // Tokio wakes a yielded task only after the ready tasks ran and the
        // driver was polled.
        tokio::task::yield_now().await;
        addr.is_none_or(|peer| self.admits(*peer))
    }

    fn connection_lost(&self, addr: Option<&SocketAddr>) {
        if let Some(peer) = addr {
            self.per_ip.release(*peer);
        }
    }
}

impl std::fmt::Debug for AcceptFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptFilter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{ClientLimits, Lingering};
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    fn filter(max: Option<u32>) -> AcceptFilter {
        let limits = Arc::new(ClientLimits {
            header_timeout: Duration::from_secs(10),
            body_min_rate: 0,
            max_connections_per_ip: max,
            keepalive_timeout: Duration::from_secs(60),
            exempt: Default::default(),
            lingering: Lingering {
                time: Duration::ZERO,
                bytes: 0,
            },
        });
        AcceptFilter {
            per_ip: Arc::new(PerIp::default()),
            limits: Box::new(move || limits.clone()),
            refused_per_ip: prometheus::IntCounter::new("refused", "refused").expect("counter"),
        }
    }

    #[test]
    fn it_yields_once_then_accepts() {
        let filter = filter(None);
        let peer: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        let mut accept = filter.should_accept(Some(&peer));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(accept.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(accept.as_mut().poll(&mut cx), Poll::Ready(true));
    }

    #[test]
    fn an_address_over_its_limit_is_refused_at_accept() {
        let filter = filter(Some(1));
        let first: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        let second: SocketAddr = "192.0.2.1:5001".parse().expect("addr");
        assert!(filter.admits(first));
        assert!(!filter.admits(second));
        assert_eq!(filter.refused_per_ip.get(), 1);
        filter.connection_lost(Some(&first));
        assert!(
            filter.admits(second),
            "a lost connection's slot was given back"
        );
    }
}
