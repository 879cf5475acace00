//! A TLS listener: certificate by SNI (exact, wildcard, explicit names, default),
//! TLS 1.2+ only (or 1.3 only), HTTP/2 by ALPN, HTTPS redirects and HSTS, and failed
//! handshakes summarized in the log and counted.

use openssl::ssl::SslVersion;
use reqwest::Version;
use std::time::Duration;

use super::{handshake, served_cn, start_tls, wait_listening};
use crate::support::certs::Ca;
use crate::support::{eventually, free_port, get, peer_cert_cn, raw_request, tls_client, Origin};

#[tokio::test]
async fn sni_picks_exact_wildcard_named_or_default_certificate() {
    let ca = Ca::new("test ca");
    let tls = r#"certificates = [
  { cert = "$DIR/default.pem", key = "$DIR/default.key" },
  { cert = "$DIR/api.pem", key = "$DIR/api.key" },
  { cert = "$DIR/wild.pem", key = "$DIR/wild.key" },
  { cert = "$DIR/named.pem", key = "$DIR/named.key", server_names = ["named.test"] },
]"#;
    let body = "[[routes]]\nname = \"hello\"\nrespond = { status = 200, body = \"hi\" }\n";
    let (_tg, port) = start_tls(tls, body, |dir| {
        ca.server(&["default.test"]).write(dir, "default");
        ca.server(&["api.test"]).write(dir, "api");
        ca.server(&["*.wild.test"]).write(dir, "wild");
        ca.server(&["san-only.test"]).write(dir, "named");
    })
    .await;

    for (host, expected) in [
        ("api.test", "api.test"),
        ("API.Test", "api.test"),
        ("x.wild.test", "*.wild.test"),
        ("named.test", "san-only.test"),
        ("unknown.test", "default.test"),
        ("deep.x.wild.test", "default.test"),
    ] {
        let stream = handshake(port, Some(host), |_| ()).expect("handshake");
        assert_eq!(served_cn(&stream), expected, "SNI {host}");
    }
    let no_sni = handshake(port, None, |_| ()).expect("handshake without SNI");
    assert_eq!(served_cn(&no_sni), "default.test");

    // A verifying client gets a chain it trusts and a request through.
    let resp = tls_client(&ca.pem(), "x.wild.test", port, None)
        .get(format!("https://x.wild.test:{port}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(peer_cert_cn(&resp), "*.wild.test");
    assert_eq!(resp.text().await.expect("body"), "hi");
}

#[tokio::test]
async fn old_protocol_versions_are_refused_and_failures_summarized() {
    let ca = Ca::new("test ca");
    let strict = free_port();
    let body = format!(
        "[listeners.strict]\naddr = \"127.0.0.1:{strict}\"\n\
         tls = {{ certificates = [{{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }}], min_version = \"1.3\" }}\n\
         [[routes]]\nname = \"hello\"\nrespond = {{ status = 200 }}\n"
    );
    let (tg, port) = start_tls(
        "certificates = [{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }]",
        &body,
        |dir| {
            ca.server(&["s.test"]).write(dir, "s");
        },
    )
    .await;
    let legacy = |max: SslVersion| {
        move |b: &mut openssl::ssl::SslConnectorBuilder| {
            // Let this client offer what old clients offer; the server must refuse.
            b.set_security_level(0);
            b.set_cipher_list("DEFAULT:@SECLEVEL=0").expect("ciphers");
            b.set_min_proto_version(Some(SslVersion::TLS1))
                .expect("min");
            b.set_max_proto_version(Some(max)).expect("max");
        }
    };
    for old in [SslVersion::TLS1, SslVersion::TLS1_1] {
        let err = handshake(port, Some("s.test"), legacy(old)).expect_err("old TLS refused");
        assert!(err.contains("protocol version"), "{err}");
    }
    // The same client settings with TLS 1.2 allowed get through: the refusal is the server's.
    let tls12 = handshake(port, Some("s.test"), legacy(SslVersion::TLS1_2)).expect("TLS 1.2");
    assert_eq!(tls12.ssl().version_str(), "TLSv1.2");
    let tls13 = handshake(port, Some("s.test"), |_| ()).expect("TLS 1.3");
    assert_eq!(tls13.ssl().version_str(), "TLSv1.3");
    // Key exchange: Mozilla intermediate's groups only.
    let groups = |list: &'static str| {
        move |b: &mut openssl::ssl::SslConnectorBuilder| b.set_groups_list(list).expect("groups")
    };
    handshake(port, Some("s.test"), groups("X25519")).expect("X25519");
    handshake(port, Some("s.test"), groups("P-384")).expect("P-384");
    handshake(port, Some("s.test"), groups("ffdhe2048")).expect_err("finite-field group");
    handshake(port, Some("s.test"), groups("X448")).expect_err("X448");
    // min_version = "1.3": TLS 1.2 is refused too.
    handshake(strict, Some("s.test"), legacy(SslVersion::TLS1_2)).expect_err("1.3 only");
    handshake(strict, Some("s.test"), |_| ()).expect("TLS 1.3 on the strict listener");

    // Failures are counted by cause and summarized, not logged one error line each.
    let metrics = || async { get(&tg.admin_url("/metrics")).await.body };
    let counted = eventually(Duration::from_secs(5), || async {
        metrics()
            .await
            .contains("tollgate_tls_handshake_failures_total{cause=\"protocol_version\"} 3")
    })
    .await;
    assert!(counted, "{}", metrics().await);
    let text = metrics().await;
    assert!(
        text.contains("tollgate_tls_handshakes_total{listener=\"secure\",version=\"TLSv1.3\"} 3")
    );
    // Certificate expiry, for alerting: the test CA issues for 30 days.
    let expiry: i64 = text
        .lines()
        .find(|l| {
            l.starts_with("tollgate_certificate_expiry_seconds{")
                && l.contains("listener=\"strict\"")
                && l.contains("source=\"file\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no expiry gauge:\n{text}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let days = (expiry - now) / 86_400;
    assert!((29..=30).contains(&days), "expires in {days} days");
    let log = tg.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("ERROR") && l.contains("handshake")),
        "{log}"
    );
    // Six failures or more above; one summary line per 10 s (two if this test was
    // slow enough to straddle a window).
    let summaries = log.matches("TLS handshake(s) failed").count();
    assert!(
        (1..=2).contains(&summaries),
        "{summaries} summaries:\n{log}"
    );
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_unless_disabled() {
    let ca = Ca::new("test ca");
    let origin = Origin::start("o").await;
    let h1_port = free_port();
    let body = format!(
        "[listeners.h1]\naddr = \"127.0.0.1:{h1_port}\"\n\
         tls = {{ certificates = [{{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }}], http2 = false }}\n\
         [upstreams.o]\ntargets = [{}]\n\
         [[routes]]\nname = \"o\"\nupstream = \"o\"\n",
        origin.target()
    );
    let (_tg, port) = start_tls(
        "certificates = [{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }]",
        &body,
        |dir| {
            ca.server(&["s.test"]).write(dir, "s");
        },
    )
    .await;
    let h2 = tls_client(&ca.pem(), "s.test", port, None)
        .get(format!("https://s.test:{port}/two"))
        .send()
        .await
        .expect("h2 request");
    assert_eq!(h2.version(), Version::HTTP_2);
    assert_eq!(h2.text().await.expect("body"), "o");
    let h1 = tls_client(&ca.pem(), "s.test", h1_port, None)
        .get(format!("https://s.test:{h1_port}/one"))
        .send()
        .await
        .expect("h1 request");
    assert_eq!(h1.version(), Version::HTTP_11);
    let seen: Vec<_> = origin
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(seen, ["/two", "/one"]);
    // The upstream learns the client came over HTTPS.
    assert_eq!(origin.seen()[0].headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn plain_listener_redirects_to_https_and_hsts_is_sent_over_tls_only() {
    let ca = Ca::new("test ca");
    let plain = free_port();
    let tls_port = free_port();
    let body = format!(
        "[listeners.plain]\naddr = \"127.0.0.1:{plain}\"\nredirect_https = true\nhttps_port = {tls_port}\n\
         [listeners.secure]\naddr = \"127.0.0.1:{tls_port}\"\n\
         tls.certificates = [{{ cert = \"$DIR/s.pem\", key = \"$DIR/s.key\" }}]\n\
         [[routes]]\nname = \"hello\"\nrespond = {{ status = 200, body = \"hi\" }}\n\
         hsts = {{ max_age = \"365d\", include_subdomains = true }}\n"
    );
    let tg = crate::support::Tollgate::start_full(&body, "", &[], |dir| {
        ca.server(&["s.test"]).write(dir, "s");
    })
    .await;
    wait_listening(&tg, plain).await;
    wait_listening(&tg, tls_port).await;

    let reply = raw_request(
        plain,
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains(&format!("location: https://s.test:{tls_port}/a/b?c=1\r\n")),
        "{reply}"
    );

    let resp = tls_client(&ca.pem(), "s.test", tls_port, None)
        .get(format!("https://s.test:{tls_port}/"))
        .send()
        .await
        .expect("https");
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    // Over plain HTTP (the harness's `main` listener) there is no HSTS (RFC 6797 §7.2).
    let plain_reply = get(&tg.url("/")).await;
    assert_eq!(plain_reply.status, 200);
    assert_eq!(plain_reply.header("strict-transport-security"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_at_max_connections_per_ip_gets_no_handshake() {
    let ca = Ca::new("test ca");
    let port = free_port();
    let tls = r#"certificates = [{ cert = "$DIR/s.pem", key = "$DIR/s.key" }]"#;
    let body = "[[routes]]\nname = \"hello\"\nrespond = { status = 200, body = \"hi\" }\n";
    let server = "max_connections_per_ip = 10\nheader_timeout = \"30s\"";
    let tg = crate::support::Tollgate::start_full(
        &super::tls_config(port, tls, body),
        server,
        &[],
        |dir| {
            ca.server(&["s.test"]).write(dir, "s");
        },
    )
    .await;
    wait_listening(&tg, port).await;
    // The probe's connection above was lost in its handshake: its slot comes back.
    let connect = move || handshake(port, Some("s.test"), |_| ());
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut last = Err(String::new());
        let done = eventually(Duration::from_secs(5), || {
            last = tokio::task::block_in_place(connect);
            let ok = last.is_ok();
            async move { ok }
        })
        .await;
        assert!(done, "a handshake within the limit failed: {last:?}");
        held.push(last.expect("handshake"));
    }
    let refused = tokio::task::block_in_place(connect);
    assert!(refused.is_err(), "an 11th connection got a handshake");
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    let line = "tollgate_connections_refused_total{reason=\"max_connections_per_ip\"}";
    assert!(crate::support::metric(&metrics, line) >= 1, "{metrics}");
    drop(held.pop());
    let freed = eventually(Duration::from_secs(5), || {
        let ok = tokio::task::block_in_place(connect).is_ok();
        async move { ok }
    })
    .await;
    assert!(freed, "a closed connection's slot never came back");
}
