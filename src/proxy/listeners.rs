//! Which listener a connection arrived on, from its local address. Fixed at start-up:
//! listeners cannot change without a restart or upgrade.

use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use std::net::SocketAddr;

use crate::base::listen::serves;

#[derive(Debug, Default)]
pub struct ListenerMap(Vec<(SocketAddr, String)>);

impl ListenerMap {
    /// The map of `listeners`: each one's address and name.
    pub fn new(listeners: impl IntoIterator<Item = (SocketAddr, String)>) -> Self {
        Self(listeners.into_iter().collect())
    }

    /// The listener bound to `local` (exact address, or a wildcard address on its port).
    pub fn name_for(&self, local: Option<&PeerAddr>) -> &str {
        let Some(local) = local.and_then(PeerAddr::as_inet) else {
            return "";
        };
        // An exact address first: it wins over a wildcard on the same port.
        self.0
            .iter()
            .find(|(a, _)| a == local)
            .or_else(|| self.0.iter().find(|(a, _)| serves(a, local)))
            .map_or("", |(_, n)| n.as_str())
    }
}
