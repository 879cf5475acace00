//! TLS-ALPN-01 under TLS 1.2, where OpenSSL asks for the certificate before it
//! chooses the protocol (pebble validates over TLS 1.3 only): pebble's validation
//! connection is held at a relay, so that the validation is surely in flight, while
//! the test makes its own TLS 1.2 handshake offering `acme-tls/1` for the name; then
//! the relay lets pebble through.

use openssl::ssl::SslVersion;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{alpn_listener, certified, config, dns_names, Ports};
use crate::support::{free_port, Tollgate};
use crate::tls::{handshake, wait_listening};

/// `id-pe-acmeIdentifier` (1.3.6.1.5.5.7.1.31) marked critical, as DER.
const CRITICAL_ACME_IDENTIFIER: [u8; 13] = [
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f, 0x01, 0x01, 0xff,
];

/// A TLS 1.2 handshake for `name` on `port` offering `protocols` (ALPN wire format).
fn tls12(
    port: u16,
    name: &str,
    protocols: &'static [u8],
) -> Result<openssl::ssl::SslStream<std::net::TcpStream>, String> {
    handshake(port, Some(name), |b| {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))
            .expect("max");
        b.set_alpn_protos(protocols).expect("alpn");
    })
}

/// Accepts connections on `listener`, says so on `arrived`, and relays each to `to`
/// once `go` is true.
async fn hold_then_relay(
    listener: TcpListener,
    to: u16,
    arrived: mpsc::UnboundedSender<()>,
    go: watch::Receiver<bool>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let _ = arrived.send(());
        let mut go = go.clone();
        tokio::spawn(async move {
            if go.wait_for(|go| *go).await.is_err() {
                return;
            }
            if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_alpn01_is_answered_under_tls_1_2_and_refused_when_no_validation_is_in_flight() {
    let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let ports = Ports {
        alpn: relay.local_addr().expect("addr").port(),
        ..Ports::new()
    };
    let listener_port = free_port();
    let pebble = ports.pebble(None, &[]).await;
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let (go, go_rx) = watch::channel(false);
    tokio::spawn(hold_then_relay(relay, listener_port, arrived_tx, go_rx));
    let storage = tempfile::tempdir().expect("tempdir");
    let listeners = alpn_listener(listener_port, "[\"c.test\"]");
    let tg = Tollgate::start(&config(&pebble, storage.path(), &ports, "30d", &listeners)).await;
    wait_listening(&tg, listener_port).await;

    let validating = tokio::time::timeout(Duration::from_secs(30), arrived.recv()).await;
    assert!(
        matches!(validating, Ok(Some(()))),
        "pebble never validated:\n{}",
        tg.log()
    );
    let answered = tls12(listener_port, "c.test", b"\x0aacme-tls/1").expect("handshake");
    assert_eq!(answered.ssl().version_str(), "TLSv1.2");
    assert_eq!(
        answered.ssl().selected_alpn_protocol(),
        Some(&b"acme-tls/1"[..])
    );
    let challenge = answered.ssl().peer_certificate().expect("a certificate");
    assert_eq!(dns_names(&challenge), ["c.test"]);
    let der = challenge.to_der().expect("der");
    assert!(
        der.windows(CRITICAL_ACME_IDENTIFIER.len())
            .any(|w| w == CRITICAL_ACME_IDENTIFIER),
        "no critical acmeIdentifier in the challenge certificate"
    );
    go.send(true).expect("relay");
    certified(&tg, Duration::from_secs(60)).await;

    // Nothing in flight: acme-tls/1 alone is refused; offered with http/1.1, the
    // handshake is an ordinary one, with the issued certificate.
    assert!(tls12(listener_port, "c.test", b"\x0aacme-tls/1").is_err());
    let ordinary =
        tls12(listener_port, "c.test", b"\x0aacme-tls/1\x08http/1.1").expect("handshake");
    assert_eq!(
        ordinary.ssl().selected_alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    let issued = ordinary.ssl().peer_certificate().expect("a certificate");
    let der = issued.to_der().expect("der");
    assert!(!der
        .windows(CRITICAL_ACME_IDENTIFIER.len())
        .any(|w| w == CRITICAL_ACME_IDENTIFIER));
    assert_ne!(
        issued.issuer_name().to_der().ok(),
        issued.subject_name().to_der().ok()
    );
}
