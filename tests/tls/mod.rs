//! TLS termination against the real binary with a CA and certificates generated per
//! test: SNI selection, protocol versions, ALPN, HTTPS redirects and HSTS
//! (`listener`), client certificates and the `mtls` authenticator (`mtls`),
//! certificate rotation by reload and `check` (`rotation`), and TLS to upstreams
//! (`upstream`).

mod listener;
mod mtls;
mod rotation;
mod upstream;

use openssl::hash::MessageDigest;
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslStream, SslVerifyMode};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::support::{eventually, free_port, Tollgate};

/// Starts tollgate with a TLS listener `secure` on a free port, `tls` being the body
/// of its `[listeners.secure.tls]` table; `prepare` writes certificates into the
/// process directory (`$DIR`). Returns the process and the TLS port, once it listens.
pub async fn start_tls(tls: &str, body: &str, prepare: impl FnOnce(&Path)) -> (Tollgate, u16) {
    let port = free_port();
    let tg = Tollgate::start_full(&tls_config(port, tls, body), "", &[], prepare).await;
    wait_listening(&tg, port).await;
    (tg, port)
}

/// Waits until `port`, a listener of `tg` besides `main`, accepts connections.
pub async fn wait_listening(tg: &Tollgate, port: u16) {
    let listening = eventually(Duration::from_secs(10), || async {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(listening, "listener {port} not up:\n{}", tg.log());
}

/// The config body `start_tls` writes (for reloads with changes).
pub fn tls_config(port: u16, tls: &str, body: &str) -> String {
    format!(
        "[listeners.secure]\naddr = \"127.0.0.1:{port}\"\n[listeners.secure.tls]\n{tls}\n\n{body}"
    )
}

/// A TLS handshake with the OpenSSL client, for what reqwest cannot do (no SNI, old
/// protocol versions). Certificates are not verified: the tests look at them.
pub fn handshake(
    port: u16,
    sni: Option<&str>,
    configure: impl FnOnce(&mut SslConnectorBuilder),
) -> Result<SslStream<TcpStream>, String> {
    let mut builder = SslConnector::builder(SslMethod::tls()).expect("connector");
    builder.set_verify(SslVerifyMode::NONE);
    configure(&mut builder);
    let connector = builder.build();
    let mut config = connector.configure().expect("configure");
    config.set_use_server_name_indication(sni.is_some());
    config.set_verify_hostname(false);
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    config
        .connect(sni.unwrap_or("ignored.invalid"), tcp)
        .map_err(|e| e.to_string())
}

/// The subject CN of the certificate a handshake got.
pub fn served_cn(stream: &SslStream<TcpStream>) -> String {
    let cert = stream.ssl().peer_certificate().expect("server certificate");
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    cn.unwrap_or_default()
}

/// Lower-case hex SHA-256 of the certificate the server presented to `resp`'s connection.
pub fn served_sha256(resp: &reqwest::Response) -> String {
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("peer certificate");
    let cert = openssl::x509::X509::from_der(der).expect("der");
    hex::encode(cert.digest(MessageDigest::sha256()).expect("digest"))
}
