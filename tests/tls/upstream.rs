//! TLS to upstream targets: the certificate is verified against the configured CA
//! and name (a wrong CA is a 502 with a log line saying why), SNI is sent, HTTP/2 is
//! negotiated when asked for, and a client certificate is presented when configured.

use crate::support::certs::Ca;
use crate::support::tls_origin::TlsOrigin;
use crate::support::{assert_problem, get, Tollgate};

#[tokio::test]
async fn upstream_tls_verifies_sends_sni_and_presents_client_certificates() {
    let ca = Ca::new("origin ca");
    let wrong = Ca::new("wrong ca");
    let leaf = ca.server(&["origin.test"]);
    let origin = TlsOrigin::start("o", &leaf, None).await;
    let strict = TlsOrigin::start("strict", &leaf, Some(&ca)).await;
    let upstream = |name: &str, target: &str, tls: &str| {
        format!(
            "[upstreams.{name}]\ntargets = [{target}]\ntls = {{ {tls} }}\n\
             [[routes]]\nname = \"{name}\"\npath_prefix = \"/{name}\"\nupstream = \"{name}\"\n"
        )
    };
    let o = origin.target();
    let body = [
        upstream("verified", &o, r#"sni = "origin.test", ca = "$DIR/ca.pem""#),
        upstream("h2", &o, r#"sni = "origin.test", ca = "$DIR/ca.pem", http2 = true"#),
        upstream("wrongca", &o, r#"sni = "origin.test", ca = "$DIR/wrong.pem""#),
        upstream("wrongname", &o, r#"sni = "other.test", ca = "$DIR/ca.pem""#),
        upstream("unverified", &o, r#"sni = "origin.test", verify = false"#),
        upstream(
            "mutual",
            &strict.target(),
            r#"sni = "origin.test", ca = "$DIR/ca.pem", client_cert = "$DIR/me.pem", client_key = "$DIR/me.key""#,
        ),
        upstream("anonymous", &strict.target(), r#"sni = "origin.test", ca = "$DIR/ca.pem""#),
    ]
    .concat();
    let tg = Tollgate::start_full(&body, "", &[], |dir| {
        ca.write(dir, "ca");
        wrong.write(dir, "wrong");
        ca.client("tollgate", &[]).write(dir, "me");
    })
    .await;

    let ok = get(&tg.url("/verified")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("x-sni"), "origin.test");
    assert_eq!(ok.header("x-version"), "HTTP/1.1");
    assert_eq!(get(&tg.url("/h2")).await.header("x-version"), "HTTP/2.0");
    assert_eq!(origin.count(), 2);

    for path in ["/wrongca", "/wrongname"] {
        assert_problem(&get(&tg.url(path)).await, 502);
    }
    assert_eq!(origin.count(), 2, "nothing reached the origin unverified");
    let log = tg.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("certificate verify failed")),
        "{log}"
    );
    // verify = false trusts any certificate (the wrong-CA setup would pass).
    assert_eq!(get(&tg.url("/unverified")).await.status, 200);

    let mutual = get(&tg.url("/mutual")).await;
    assert_eq!(mutual.status, 200, "{}", mutual.body);
    assert_eq!(mutual.header("x-client-cert-cn"), "tollgate");
    assert_problem(&get(&tg.url("/anonymous")).await, 502);
}
