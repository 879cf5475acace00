//! Which listener a connection arrived on, from its local address. Fixed at start-up:
//! listeners cannot change without a restart or upgrade.

use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use std::net::SocketAddr;

use crate::config::raw::ListenerSection;

#[derive(Debug, Default)]
pub struct ListenerMap(Vec<(SocketAddr, String)>);

impl ListenerMap {
    pub fn new<'a>(listeners: impl IntoIterator<Item = (&'a String, &'a ListenerSection)>) -> Self {
        Self(
            listeners
                .into_iter()
                .map(|(n, l)| (l.addr, n.clone()))
                .collect(),
        )
    }

    /// The listener bound to `local` (exact address, or a wildcard address on its port).
    pub fn name_for(&self, local: Option<&PeerAddr>) -> &str {
        let Some(local) = local.and_then(PeerAddr::as_inet) else {
            return "";
        };
        self.0
            .iter()
            .find(|(a, _)| a == local)
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(a, _)| a.port() == local.port() && a.ip().is_unspecified())
            })
            .map_or("", |(_, n)| n.as_str())
    }
}
