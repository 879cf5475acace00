//! The PROXY protocol (HAProxy's, v1 text and v2 binary), for listeners behind a TCP
//! load balancer (`proxy_protocol = true`): the balancer sends the client's address
//! in a header before anything else, TLS included.
//!
//! Such a listener is for the balancer alone. A connection from a peer outside
//! `trusted_proxies` is closed at once: its header would be a forged client address.
//! A trusted peer's connection must begin with a valid header, within
//! `header_timeout`; else it is closed. The header's source address becomes the
//! connection's peer address (its socket digest) for everything after: the per-IP
//! limit, IP lists, jails, limits, logs and `X-Forwarded-For`. A v2 `LOCAL` header
//! (the balancer's own health check) keeps the balancer's address. A header that
//! names no TCP client (v1 `UNKNOWN`, a v2 UNIX or UDP address) closes the
//! connection: it would count as the balancer's own, whose headers are believed.
//! Exactly the header's bytes are read, nothing after it.

use async_trait::async_trait;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, UniqueID};
use pingora::{Error, ErrorType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::CurrentLimits;
use crate::base::listen::serves;
use crate::edge::forwarded::TrustedProxies;

/// The listeners that expect a PROXY header (their bound addresses, fixed at start),
/// and the limits that say who may send one and how long it may take. Plain
/// listeners' connections go through [`Self::expect`] in the connection guard, TLS
/// listeners' before their handshake (Pingora's pre-TLS callback).
pub struct ProxyListeners {
    pub bound: Vec<SocketAddr>,
    pub limits: CurrentLimits,
    pub refused: prometheus::IntCounter,
}

impl ProxyListeners {
    /// Reads the header of `stream` when its listener expects one; `Err`: the
    /// connection must be closed (counted; the reason logged at debug level).
    pub async fn expect<S>(&self, stream: &mut S) -> Result<(), ProxyHeaderError>
    where
        S: AsyncRead + Unpin + GetSocketDigest + UniqueID + ?Sized,
    {
        let digest = stream.get_socket_digest();
        let local = digest
            .as_ref()
            .and_then(|d| d.local_addr()?.as_inet().copied());
        if !local.is_some_and(|l| self.bound.iter().any(|b| serves(b, &l))) {
            return Ok(());
        }
        let peer = digest.and_then(|d| d.peer_addr()?.as_inet().copied());
        let limits = (self.limits)();
        let read = accept(stream, peer, &limits.exempt, limits.header_timeout).await;
        if let Err(e) = &read {
            self.refused.inc();
            log::debug!("connection from {peer:?} closed: {e}");
        }
        read
    }
}

#[async_trait]
impl PreTlsProcess for ProxyListeners {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        self.expect(stream)
            .await
            .map_err(|e| Error::explain(ErrorType::AcceptError, e.to_string()))
    }
}

/// The v2 signature; a v1 header begins with `PROXY `.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes, its CRLF included.
const V1_MAX: usize = 107;
/// Address block and TLVs of a v2 header, at most (the protocol allows 64 KiB; a
/// balancer sends a few hundred bytes).
const V2_MAX_LEN: usize = 4096;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("a PROXY header from a peer outside trusted_proxies")]
    Untrusted,
    #[error("no PROXY header")]
    Missing,
    #[error("a malformed PROXY header")]
    Malformed,
    #[error("no PROXY header within header_timeout")]
    TimedOut,
    #[error("the connection closed in its PROXY header")]
    Closed,
    #[error("a PROXY header that names no TCP client (v1 UNKNOWN, or another family)")]
    NoClient,
}

/// What a header says: the client's address, or `None` to keep the peer's (a v2
/// `LOCAL` header: the balancer's own connection, such as a health check).
pub type Source = Option<SocketAddr>;

/// Reads the PROXY header of `stream`, whose peer is `peer`, within `within`, and
/// makes its source the stream's peer address.
async fn accept<S>(
    stream: &mut S,
    peer: Option<SocketAddr>,
    trusted: &TrustedProxies,
    within: Duration,
) -> Result<(), ProxyHeaderError>
where
    S: AsyncRead + Unpin + GetSocketDigest + UniqueID + ?Sized,
{
    if !peer.is_some_and(|p| trusted.contains(p.ip())) {
        return Err(ProxyHeaderError::Untrusted);
    }
    let source = tokio::time::timeout(within, read_header(stream))
        .await
        .map_err(|_| ProxyHeaderError::TimedOut)??;
    if let Some(client) = source {
        let digest = SocketDigest::from_raw_fd(stream.id());
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().cloned());
        // Both cells are new: `set` cannot fail.
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(client)));
        let _ = digest.local_addr.set(local);
        stream.set_socket_digest(digest);
    }
    Ok(())
}

/// Reads one header, v1 or v2, and nothing after it.
async fn read_header<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
) -> Result<Source, ProxyHeaderError> {
    let mut start = [0u8; 6];
    read_exact(stream, &mut start).await?;
    if &start == b"PROXY " {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(ProxyHeaderError::Malformed);
            }
            let mut byte = [0u8; 1];
            read_exact(stream, &mut byte).await?;
            line.push(byte[0]);
        }
        return parse_v1(&line);
    }
    if start != V2_SIGNATURE[..6] {
        return Err(ProxyHeaderError::Missing);
    }
    let mut head = [0u8; 16];
    head[..6].copy_from_slice(&start);
    read_exact(stream, &mut head[6..]).await?;
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if len > V2_MAX_LEN {
        return Err(ProxyHeaderError::Malformed);
    }
    let mut body = vec![0u8; len];
    read_exact(stream, &mut body).await?;
    parse_v2(&head, &body)
}

async fn read_exact<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut [u8],
) -> Result<(), ProxyHeaderError> {
    stream
        .read_exact(buf)
        .await
        .map(|_| ())
        .map_err(|_| ProxyHeaderError::Closed)
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`, `PROXY UNKNOWN ...\r\n`.
fn parse_v1(line: &[u8]) -> Result<Source, ProxyHeaderError> {
    let text = std::str::from_utf8(line).map_err(|_| ProxyHeaderError::Malformed)?;
    let text = text
        .strip_suffix("\r\n")
        .ok_or(ProxyHeaderError::Malformed)?;
    let mut parts = text.split(' ');
    let (Some("PROXY"), Some(family)) = (parts.next(), parts.next()) else {
        return Err(ProxyHeaderError::Malformed);
    };
    if family == "UNKNOWN" {
        // The balancer does not know the client: the connection would count as the
        // balancer's own, a trusted proxy whose headers are believed.
        return Err(ProxyHeaderError::NoClient);
    }
    let fields: Vec<&str> = parts.collect();
    let [source, destination, source_port, destination_port] = fields[..] else {
        return Err(ProxyHeaderError::Malformed);
    };
    let ip = |s: &str| s.parse::<IpAddr>().map_err(|_| ProxyHeaderError::Malformed);
    let port = |s: &str| match s.starts_with('0') && s.len() > 1 {
        true => Err(ProxyHeaderError::Malformed),
        false => s.parse::<u16>().map_err(|_| ProxyHeaderError::Malformed),
    };
    let (source, destination) = (ip(source)?, ip(destination)?);
    port(destination_port)?;
    let v4 = matches!((source, destination), (IpAddr::V4(_), IpAddr::V4(_)));
    let v6 = matches!((source, destination), (IpAddr::V6(_), IpAddr::V6(_)));
    match family {
        "TCP4" if v4 => Ok(Some(SocketAddr::new(source, port(source_port)?))),
        "TCP6" if v6 => Ok(Some(SocketAddr::new(source, port(source_port)?))),
        _ => Err(ProxyHeaderError::Malformed),
    }
}

/// The 16 bytes of a v2 header, then its address block (and TLVs, ignored).
fn parse_v2(head: &[u8; 16], body: &[u8]) -> Result<Source, ProxyHeaderError> {
    if head[..12] != V2_SIGNATURE || head[12] >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed);
    }
    match head[12] & 0x0f {
        0 => return Ok(None), // LOCAL
        1 => {}               // PROXY
        _ => return Err(ProxyHeaderError::Malformed),
    }
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match head[13] {
        // TCP over IPv4: source, destination, their ports.
        0x11 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(ip.into(), port(8))))
        }
        // TCP over IPv6.
        0x21 if body.len() >= 36 => {
            let octets: [u8; 16] = body[..16]
                .try_into()
                .map_err(|_| ProxyHeaderError::Malformed)?;
            Ok(Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                port(32),
            )))
        }
        0x11 | 0x21 => Err(ProxyHeaderError::Malformed),
        // UNSPEC, UDP, UNIX sockets: no TCP client to take (see v1 UNKNOWN).
        _ => Err(ProxyHeaderError::NoClient),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<Source, ProxyHeaderError>, Vec<u8>) {
        let mut stream = bytes;
        let header = read_header(&mut stream).await;
        (header, stream.to_vec())
    }

    fn addr(s: &str) -> Source {
        Some(s.parse().expect("addr"))
    }

    #[tokio::test]
    async fn v1_headers_give_the_client_and_leave_what_follows() {
        let (source, rest) = read(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /").await;
        assert_eq!(source, Ok(addr("192.0.2.1:56324")));
        assert_eq!(rest, b"GET /");
        let (source, _) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n").await;
        assert_eq!(source, Ok(addr("[2001:db8::1]:4000")));
        let unknown = Err(ProxyHeaderError::NoClient);
        assert_eq!(read(b"PROXY UNKNOWN\r\n").await.0, unknown);
        assert_eq!(
            read(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").await.0,
            unknown
        );
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 065535 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.1 70000 2\r\n",
            b"PROXY TCP5 192.0.2.1 198.51.100.1 1 2\r\n",
            b"PROXY TCP4  192.0.2.1 198.51.100.1 1 2\r\n",
        ] {
            assert_eq!(
                read(bad).await.0,
                Err(ProxyHeaderError::Malformed),
                "{bad:?}"
            );
        }
        let endless = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(read(&endless).await.0, Err(ProxyHeaderError::Malformed));
        assert_eq!(
            read(b"GET / HTTP/1.1\r\n").await.0,
            Err(ProxyHeaderError::Missing)
        );
        assert_eq!(
            read(b"PROXY TCP4 1.2").await.0,
            Err(ProxyHeaderError::Closed)
        );
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend((body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn v2_headers_give_the_client_and_skip_their_tlvs() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb];
        body.extend([0x04, 0x00, 0x01, 0x00]); // a TLV (NOOP) after the addresses
        let mut bytes = v2(1, 0x11, &body);
        bytes.extend(b"\x16\x03\x01");
        let (source, rest) = read(&bytes).await;
        assert_eq!(source, Ok(addr("192.0.2.1:56324")));
        assert_eq!(rest, b"\x16\x03\x01", "the TLS ClientHello is left to read");
        let mut six = vec![0x20, 0x01, 0x0d, 0xb8];
        six.extend([0; 11]);
        six.push(1);
        six.extend([0; 16]);
        six.extend([0x0f, 0xa0, 0x01, 0xbb]);
        assert_eq!(
            read(&v2(1, 0x21, &six)).await.0,
            Ok(addr("[2001:db8::1]:4000"))
        );
        assert_eq!(read(&v2(0, 0x00, &[])).await.0, Ok(None), "LOCAL");
        let unix = read(&v2(1, 0x31, &[0; 216])).await.0;
        assert_eq!(unix, Err(ProxyHeaderError::NoClient), "a UNIX socket");
        assert_eq!(
            read(&v2(1, 0x11, &[1, 2, 3])).await.0,
            Err(ProxyHeaderError::Malformed)
        );
        assert_eq!(
            read(&v2(2, 0x11, &body)).await.0,
            Err(ProxyHeaderError::Malformed)
        );
        let mut too_long = v2(1, 0x11, &[]);
        too_long[14..16].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(read(&too_long).await.0, Err(ProxyHeaderError::Malformed));
    }
}
