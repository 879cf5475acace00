//! The accept loop's turn: after each connection it accepts, a listener's accept
//! loop waits until the worker has run the tasks already ready and polled for I/O
//! again, so requests already received go before new handshakes, as nginx's one
//! accept per pass of its event loop does.
//!
//! Without it, Pingora's accept loop takes the whole backlog at once, and every new
//! TLS handshake queues ahead of requests already read: under load a request on a
//! new connection waited behind the handshakes of every connection accepted with
//! it (load-tests/README.md, `+https-new` p50). It never refuses a connection.

use async_trait::async_trait;
use pingora::listeners::ConnectionFilter;
use std::net::SocketAddr;

/// A Pingora connection filter that accepts every connection, one per turn.
#[derive(Debug, Default)]
pub struct OneAcceptPerTurn;

#[async_trait]
impl ConnectionFilter for OneAcceptPerTurn {
    async fn should_accept(&self, _addr: Option<&SocketAddr>) -> bool {
        // Tokio wakes a yielded task only after the ready tasks ran and the
        // driver was polled.
        tokio::task::yield_now().await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn it_yields_once_then_accepts() {
        let filter = OneAcceptPerTurn;
        let mut accept = filter.should_accept(None);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(accept.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(accept.as_mut().poll(&mut cx), Poll::Ready(true));
    }
}
