//! Automatic certificates against a real ACME server (Debian's `pebble`, with its own
//! DNS answering 127.0.0.1 for every name): the test CA checked on its own; two names
//! by HTTP-01 (through a plain listener that redirects everything else) and one by
//! TLS-ALPN-01, served by SNI; a restart that serves the stored certificates and
//! orders nothing; a CA refusing an order, backed off while the other names are
//! served; one order on a fleet. Renewal is in `renewal`, TLS-ALPN-01 under TLS 1.2 in
//! `alpn`.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;

use crate::support::pebble::{Pebble, PebbleSettings};
use crate::support::{client, eventually, free_port, metric, tls_client, Tollgate};
use crate::tls::{handshake, wait_listening};

mod alpn;
mod renewal;

#[tokio::test(flavor = "multi_thread")]
async fn pebble_serves_its_directory_over_tls_from_the_tests_ca() {
    let pebble = Pebble::start(PebbleSettings {
        http_port: free_port(),
        tls_port: free_port(),
        validity: Some(Duration::from_secs(120)),
        blocked: Vec::new(),
    })
    .await;
    let body = pebble
        .client()
        .get(&pebble.directory)
        .send()
        .await
        .expect("directory")
        .bytes()
        .await
        .expect("the directory's body");
    let directory: Value = serde_json::from_slice(&body).expect("a JSON directory");
    for member in ["newNonce", "newAccount", "newOrder", "revokeCert"] {
        assert!(
            directory[member]
                .as_str()
                .is_some_and(|u| u.starts_with("https://127.0.0.1:")),
            "{member} in {directory}"
        );
    }
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(untrusting.get(&pebble.directory).send().await.is_err());
}

/// The ports pebble validates on and a TLS listener ordering by HTTP-01.
struct Ports {
    web: u16,
    alpn: u16,
    secure: u16,
}

impl Ports {
    fn new() -> Self {
        Self {
            web: free_port(),
            alpn: free_port(),
            secure: free_port(),
        }
    }

    async fn pebble(&self, validity: Option<Duration>, blocked: &[&str]) -> Pebble {
        Pebble::start(PebbleSettings {
            http_port: self.web,
            tls_port: self.alpn,
            validity,
            blocked: blocked.iter().map(|b| (*b).to_owned()).collect(),
        })
        .await
    }
}

/// `[acme]` against `pebble`, storing in `storage`, a plain listener on the HTTP-01
/// port that redirects to HTTPS, then `listeners` and a route answering "hi".
fn config(
    pebble: &Pebble,
    storage: &Path,
    ports: &Ports,
    renew_before: &str,
    listeners: &str,
) -> String {
    format!(
        "[acme]\ndirectory = \"{}\"\nca_file = \"{}\"\nstorage = \"{}\"\n\
         contact = [\"mailto:ops@example.com\"]\nrenew_before = \"{renew_before}\"\n\n\
         [listeners.web]\naddr = \"127.0.0.1:{}\"\nredirect_https = true\n\n{listeners}\n\
         [[routes]]\nname = \"hello\"\nrespond = {{ status = 200, body = \"hi\" }}\n",
        pebble.directory,
        pebble.directory_ca.display(),
        storage.display(),
        ports.web,
    )
}

fn http01_listener(port: u16, domains: &str) -> String {
    format!(
        "[listeners.secure]\naddr = \"127.0.0.1:{port}\"\n\
         tls = {{ acme = {{ domains = {domains}, challenge = \"http-01\" }} }}\n"
    )
}

fn alpn_listener(port: u16, domains: &str) -> String {
    format!(
        "[listeners.alpn]\naddr = \"127.0.0.1:{port}\"\n\
         tls = {{ acme = {{ domains = {domains}, challenge = \"tls-alpn-01\" }} }}\n"
    )
}

async fn acme_sets(tg: &Tollgate) -> Vec<Value> {
    let resp = client()
        .get(tg.admin_url("/acme"))
        .send()
        .await
        .expect("GET /acme");
    serde_json::from_slice(&resp.bytes().await.expect("body")).expect("JSON")
}

/// `GET /readyz`: its status and body.
async fn readyz(tg: &Tollgate) -> (u16, String) {
    let resp = client()
        .get(tg.admin_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// Waits until every set of `tg` has a certificate; their statuses by name.
async fn certified(tg: &Tollgate, within: Duration) -> Vec<Value> {
    let done = eventually(within, || async {
        let sets = acme_sets(tg).await;
        !sets.is_empty() && sets.iter().all(|s| s["status"]["not_after"].is_i64())
    })
    .await;
    let sets = acme_sets(tg).await;
    assert!(done, "not certified: {sets:?}\n{}", tg.log());
    sets
}

/// The certificate a handshake with `sni` on `port` is given, unverified.
fn served(port: u16, sni: &str) -> openssl::x509::X509 {
    let stream = handshake(port, Some(sni), |_| ()).expect("handshake");
    stream.ssl().peer_certificate().expect("a certificate")
}

fn dns_names(cert: &openssl::x509::X509) -> Vec<String> {
    let mut names: Vec<String> = (cert.subject_alt_names().expect("names").iter())
        .filter_map(|n| n.dnsname().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn http01_and_tls_alpn01_certificates_are_served_by_sni_and_a_restart_orders_nothing() {
    let ports = Ports::new();
    let pebble = ports.pebble(None, &[]).await;
    let storage = tempfile::tempdir().expect("tempdir");
    let listeners = http01_listener(ports.secure, "[\"a.test\", \"b.test\"]")
        + &alpn_listener(ports.alpn, "[\"c.test\"]");
    let body = config(&pebble, storage.path(), &ports, "30d", &listeners);
    let tg = Tollgate::start(&body).await;
    wait_listening(&tg, ports.web).await;
    certified(&tg, Duration::from_secs(60)).await;

    let root = String::from_utf8(pebble.issuing_root().await).expect("PEM");
    for (port, name, names) in [
        (ports.secure, "a.test", vec!["a.test", "b.test"]),
        (ports.secure, "b.test", vec!["a.test", "b.test"]),
        (ports.alpn, "c.test", vec!["c.test"]),
    ] {
        assert_eq!(dns_names(&served(port, name)), names, "{name}");
        // A client trusting pebble's root only gets through.
        let resp = tls_client(&root, name, port, None)
            .get(format!("https://{name}:{port}/"))
            .send()
            .await
            .expect("a verified request");
        assert_eq!(resp.text().await.expect("body"), "hi");
    }
    // A name the listener does not certify gets no certificate.
    assert!(
        handshake(ports.secure, Some("other.test"), |_| ()).is_ok_and(|s| {
            dns_names(&s.ssl().peer_certificate().expect("cert")) == ["a.test", "b.test"]
        })
    );
    // The challenge path answers before the redirect; a token not in flight is 404.
    let web = format!("http://127.0.0.1:{}", ports.web);
    let unknown = client()
        .get(format!("{web}/.well-known/acme-challenge/not-a-token"))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), 404);
    let other = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{web}/x"))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 308);
    let metrics = tg.metrics().await;
    assert_eq!(
        metric(&metrics, "tollgate_acme_orders_total{result=\"issued\"}"),
        2
    );
    let expiry = metric(
        &metrics,
        "tollgate_certificate_expiry_seconds{certificate=\"a.test\",listener=\"secure\",source=\"acme\"}",
    );
    assert!(expiry > 1_700_000_000, "{metrics}");
    assert_eq!(readyz(&tg).await.0, 200);
    let first = served(ports.secure, "a.test").to_der().expect("der");
    drop(tg);

    // A restart serves what is stored at once and orders nothing.
    let tg = Tollgate::start(&body).await;
    wait_listening(&tg, ports.secure).await;
    let sets = certified(&tg, Duration::from_secs(10)).await;
    assert_eq!(sets.len(), 2);
    assert_eq!(served(ports.secure, "a.test").to_der().expect("der"), first);
    assert_eq!(dns_names(&served(ports.alpn, "c.test")), ["c.test"]);
    let metrics = tg.metrics().await;
    assert!(!metrics.contains("tollgate_acme_orders_total"), "{metrics}");
    let status = tollgate_acme_status(&tg);
    assert!(
        status.contains("a.test (a.test, b.test, listeners secure, http-01)"),
        "{status}"
    );
    assert!(
        status.contains("expires:") && status.contains("renewal:"),
        "{status}"
    );
}

/// `tollgate acme status -c FILE` on `tg`'s config.
fn tollgate_acme_status(tg: &Tollgate) -> String {
    let out = crate::support::tollgate::cli(&["acme", "status", "-c"], Some(&tg.config_path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_order_backs_off_while_other_names_are_served() {
    let ports = Ports::new();
    let pebble = ports.pebble(None, &["blocked.test"]).await;
    let storage = tempfile::tempdir().expect("tempdir");
    let listeners = http01_listener(ports.secure, "[\"a.test\"]")
        + &alpn_listener(ports.alpn, "[\"blocked.test\"]");
    let tg = Tollgate::start(&config(&pebble, storage.path(), &ports, "30d", &listeners)).await;
    let refused = eventually(Duration::from_secs(60), || async {
        let sets = acme_sets(&tg).await;
        let by = |name: &str| {
            sets.iter()
                .find(|s| s["name"] == name)
                .cloned()
                .unwrap_or_default()
        };
        by("a.test")["status"]["not_after"].is_i64()
            && by("blocked.test")["status"]["failures"] == 1
    })
    .await;
    let sets = acme_sets(&tg).await;
    assert!(refused, "{sets:?}\n{}", tg.log());
    let blocked = sets
        .iter()
        .find(|s| s["name"] == "blocked.test")
        .expect("set");
    let error = blocked["status"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("rejectedIdentifier") || error.contains("blocked"),
        "{error}"
    );
    // The next attempt is minutes away, not a loop.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let next = blocked["status"]["next_attempt"]
        .as_i64()
        .expect("next attempt");
    assert!(next >= now + 240, "next attempt at {next}, now {now}");
    // The certified name is served; the refused one has no handshake; readyz says why.
    let root = String::from_utf8(pebble.issuing_root().await).expect("PEM");
    let resp = tls_client(&root, "a.test", ports.secure, None)
        .get(format!("https://a.test:{}/", ports.secure))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert!(handshake(ports.alpn, Some("blocked.test"), |_| ()).is_err());
    let (status, text) = readyz(&tg).await;
    assert_eq!(status, 503);
    assert!(
        text.contains("waiting for a certificate for blocked.test"),
        "{text}"
    );
    let metrics = tg.metrics().await;
    assert_eq!(
        metric(&metrics, "tollgate_acme_orders_total{result=\"failed\"}"),
        1
    );
    assert!(tg.log().contains("blocked.test"), "{}", tg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_orders_once_and_every_node_serves_the_certificate() {
    const CLUSTER: &str = "acme-test";
    let etcd = crate::support::etcd::Etcd::start().await;
    let ports = Ports::new();
    let pebble = ports.pebble(None, &[]).await;
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&pebble.directory_ca, shared.path().join("directory-ca.pem")).expect("copy");
    let document = format!(
        "[acme]\ndirectory = \"{}\"\nca_file = \"directory-ca.pem\"\nstorage = \"etcd\"\n\n\
         [listeners.main]\naddr = \"127.0.0.1:1\"\n[listeners.web]\naddr = \"127.0.0.1:2\"\n\
         [listeners.secure]\naddr = \"127.0.0.1:3\"\n\
         tls = {{ acme = {{ domains = [\"a.test\"], challenge = \"http-01\" }} }}\n\n\
         [[routes]]\nname = \"hello\"\nrespond = {{ status = 200, body = \"hi\" }}\n",
        pebble.directory,
    );
    let file = shared.path().join("cluster.toml");
    std::fs::write(&file, document).expect("write");
    let url = etcd.url();
    let out = crate::support::tollgate::cli(
        &["push", "--etcd", &url, "--cluster", CLUSTER, "-c"],
        Some(&file),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Pebble validates on the first node's plain listener, whichever node orders.
    let node = |web: u16, secure: u16| {
        format!(
            "[fleet]\netcd = [\"{url}\"]\ncluster = \"{CLUSTER}\"\ncache = \"$DIR/cache\"\n\
             [listeners.web]\naddr = \"127.0.0.1:{web}\"\n\
             [listeners.secure]\naddr = \"127.0.0.1:{secure}\"\n"
        )
    };
    let other_secure = free_port();
    let (first, second) = (
        node(ports.web, ports.secure),
        node(free_port(), other_secure),
    );
    let (a, b) = tokio::join!(Tollgate::start(&first), Tollgate::start(&second));
    certified(&a, Duration::from_secs(60)).await;
    certified(&b, Duration::from_secs(60)).await;
    let served_a = served(ports.secure, "a.test").to_der().expect("der");
    let served_b = served(other_secure, "a.test").to_der().expect("der");
    assert_eq!(served_a, served_b, "both nodes serve the one certificate");
    let issued =
        |metrics: String| metric(&metrics, "tollgate_acme_orders_total{result=\"issued\"}");
    let orders = issued(a.metrics().await) + issued(b.metrics().await);
    assert_eq!(orders, 1, "{}\n{}", a.log(), b.log());
}
