//! Open client connections per address, for `[server] max_connections_per_ip`.
//! IPv4 addresses count as they are, IPv6 addresses by their /64 (one host usually
//! holds a whole /64, as for jails). A connection holds an [`IpSlot`]; dropping it
//! gives the slot back. Never fails: an address over its limit gets no slot.
//!
//! A slot is taken at accept, before a TLS handshake ([`PerIp::reserve`], by the
//! listener's connection filter); the connection claims it once it reaches the
//! proxy ([`PerIp::claim`]), or it is given back when the handshake fails or times
//! out (Pingora tells the filter, an addition of the vendored `pingora-core`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::edge::forwarded::client_network;

#[derive(Default)]
pub struct PerIp {
    open: Mutex<HashMap<IpAddr, u32>>,
    /// Slots taken at accept, by the connection's peer address.
    reserved: Mutex<HashMap<SocketAddr, IpSlot>>,
}

impl PerIp {
    /// Takes a slot for the connection from `peer` (unless its address holds `max`
    /// already), for the connection to [`Self::claim`] or [`Self::release`].
    pub fn reserve(self: &Arc<Self>, peer: SocketAddr, max: u32) -> bool {
        let Some(slot) = self.take(peer.ip(), max) else {
            return false;
        };
        // A peer address reused while an old reservation waits replaces it (dropped
        // outside the lock: dropping a slot locks `open`).
        let replaced = lock(&self.reserved).insert(peer, slot);
        drop(replaced);
        true
    }

    /// The slot reserved at accept for the connection from `peer`, if any.
    pub fn claim(&self, peer: SocketAddr) -> Option<IpSlot> {
        lock(&self.reserved).remove(&peer)
    }

    /// Gives back the slot reserved for `peer`, whose connection was lost.
    pub fn release(&self, peer: SocketAddr) {
        let released = self.claim(peer);
        drop(released);
    }

    /// A slot for one more connection from `ip`, unless it holds `max` already.
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<IpSlot> {
        let key = client_network(ip);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            key,
        })
    }

    /// Open connections from `ip`'s key.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        self.lock().get(&client_network(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        lock(&self.open)
    }
}

fn lock<T>(map: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps are consistent between statements: a panic elsewhere poisons nothing.
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// One open connection from an address.
pub struct IpSlot {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_address_gets_max_slots_and_gets_them_back() {
        let table = Arc::new(PerIp::default());
        let a = table.take(ip("192.0.2.1"), 2).expect("first");
        let b = table.take(ip("192.0.2.1"), 2).expect("second");
        assert!(table.take(ip("192.0.2.1"), 2).is_none(), "third refused");
        assert!(table.take(ip("192.0.2.2"), 2).is_some(), "another address");
        drop(a);
        let c = table.take(ip("192.0.2.1"), 2).expect("a slot came back");
        drop((b, c));
        assert_eq!(table.open(ip("192.0.2.1")), 0);
        assert!(table.lock().is_empty(), "no entry is left behind");
    }

    #[test]
    fn slots_reserved_at_accept_are_claimed_or_released() {
        let table = Arc::new(PerIp::default());
        let peer = |port| SocketAddr::new(ip("192.0.2.1"), port);
        assert!(table.reserve(peer(1), 2));
        assert!(table.reserve(peer(2), 2));
        assert!(!table.reserve(peer(3), 2), "two connections at most");
        let claimed = table.claim(peer(1)).expect("reserved");
        assert!(table.claim(peer(1)).is_none(), "claimed once");
        table.release(peer(2));
        assert!(
            table.reserve(peer(3), 2),
            "the lost handshake's slot came back"
        );
        assert_eq!(table.open(ip("192.0.2.1")), 2);
        drop(claimed);
        table.release(peer(3));
        assert_eq!(table.open(ip("192.0.2.1")), 0);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let table = Arc::new(PerIp::default());
        let _a = table.take(ip("2001:db8:1:2::1"), 1).expect("first");
        assert!(
            table.take(ip("2001:db8:1:2:ffff::9"), 1).is_none(),
            "same /64"
        );
        assert!(table.take(ip("2001:db8:1:3::1"), 1).is_some(), "other /64");
        let _b = table.take(ip("::ffff:192.0.2.7"), 1).expect("mapped");
        assert!(table.take(ip("192.0.2.7"), 1).is_none(), "the same address");
    }
}
