//! Client certificates: `client_auth = "require"` refuses a handshake without one or
//! with an untrusted one and forwards a good one's identity; the `mtls`
//! authenticator maps certificates to consumers on an `optional` listener.

use super::start_tls;
use crate::support::certs::Ca;
use crate::support::{tls_client, Origin};

#[tokio::test]
async fn require_refuses_missing_and_untrusted_certificates_and_forwards_identity() {
    let ca = Ca::new("server ca");
    let clients = Ca::new("client ca");
    let stranger = Ca::new("someone else");
    let origin = Origin::start("o").await;
    let tls = r#"certificates = [{ cert = "$DIR/s.pem", key = "$DIR/s.key" }]
client_ca = "$DIR/clients.pem"
client_auth = "require""#;
    let body = format!(
        "[upstreams.o]\ntargets = [{}]\n[[routes]]\nname = \"o\"\nupstream = \"o\"\n",
        origin.target()
    );
    let (tg, port) = start_tls(tls, &body, |dir| {
        ca.server(&["s.test"]).write(dir, "s");
        clients.write(dir, "clients");
    })
    .await;
    let url = format!("https://s.test:{port}/");
    let client = |identity| tls_client(&ca.pem(), "s.test", port, identity);

    let none = client(None).get(&url).send().await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let untrusted = stranger.client("mallory", &["mallory.test"]);
    let refused = client(Some(untrusted.identity())).get(&url).send().await;
    assert!(refused.is_err(), "untrusted certificate: {refused:?}");
    assert_eq!(origin.count(), 0);

    let alice = clients.client("alice", &["alice.test", "spiffe://example/alice"]);
    let resp = client(Some(alice.identity()))
        .get(&url)
        .header("x-client-cert-subject", "CN=admin")
        .header("x-client-cert-sha256", "00")
        .send()
        .await
        .expect("request with a trusted certificate");
    assert_eq!(resp.status(), 200);
    let seen = &origin.seen()[0].headers;
    assert_eq!(seen["x-client-cert-subject"], "CN=alice");
    assert_eq!(seen["x-client-cert-sha256"], alice.sha256().as_str());
    assert_eq!(
        seen["x-client-cert-sans"],
        "DNS:alice.test,URI:spiffe://example/alice"
    );
    let logged = tg.access_log(1).await;
    assert_eq!(logged[0]["client_cert_sha256"], alice.sha256());
    assert_eq!(logged[0]["client_cert_subject"], "CN=alice");

    // Without a TLS client certificate, forged headers are removed, not forwarded.
    let plain = crate::support::send(
        crate::support::client()
            .get(tg.url("/"))
            .header("x-client-cert-subject", "CN=admin"),
    )
    .await;
    assert_eq!(plain.status, 200);
    assert!(origin.seen()[1]
        .headers
        .get("x-client-cert-subject")
        .is_none());
}

#[tokio::test]
async fn mtls_authenticator_maps_certificates_to_consumers() {
    let ca = Ca::new("server ca");
    let clients = Ca::new("client ca");
    let origin = Origin::start("o").await;
    let acme = clients.client("acme-gateway", &["gw.acme.test"]);
    let pinned = clients.client("pinned", &[]);
    let tls = r#"certificates = [{ cert = "$DIR/s.pem", key = "$DIR/s.key" }]
client_ca = "$DIR/clients.pem"
client_auth = "optional""#;
    let body = format!(
        r#"[upstreams.o]
targets = [{target}]

[auth.partners]
kind = "mtls"
consumers = [
  {{ id = "acme", san = "gw.acme.test", scopes = ["orders:read"] }},
  {{ id = "pinned", sha256 = "{fingerprint}", scopes = [] }},
  {{ id = "retired", subject_cn = "old-partner", disabled = true }},
]

[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "o"
auth = ["partners"]
require_scopes = ["orders:read"]

[[routes]]
name = "open"
upstream = "o"
"#,
        target = origin.target(),
        fingerprint = pinned.sha256()
    );
    let (tg, port) = start_tls(tls, &body, |dir| {
        ca.server(&["s.test"]).write(dir, "s");
        clients.write(dir, "clients");
    })
    .await;
    let get_as = |identity: Option<reqwest::Identity>, path: &str| {
        let client = tls_client(&ca.pem(), "s.test", port, identity);
        let url = format!("https://s.test:{port}{path}");
        async move { crate::support::send(client.get(url)).await }
    };

    // `optional`: a client without a certificate is served on public routes...
    assert_eq!(get_as(None, "/").await.status, 200);
    // ...and asked for one where the route requires it.
    let anonymous = get_as(None, "/orders").await;
    crate::support::assert_problem(&anonymous, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        "ClientCertificate realm=\"tollgate\""
    );

    let ok = get_as(Some(acme.identity()), "/orders/1").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen = origin.seen();
    assert_eq!(seen.last().expect("seen").headers["x-consumer-id"], "acme");

    // Matched by fingerprint but without the route's scope: 403.
    crate::support::assert_problem(&get_as(Some(pinned.identity()), "/orders").await, 403);
    // Disabled, and trusted-but-unknown certificates: 401.
    let retired = clients.client("old-partner", &[]);
    crate::support::assert_problem(&get_as(Some(retired.identity()), "/orders").await, 401);
    let unknown = clients.client("someone", &["someone.test"]);
    crate::support::assert_problem(&get_as(Some(unknown.identity()), "/orders").await, 401);

    let reasons: Vec<String> = tg
        .security_log(4)
        .await
        .iter()
        .map(|l| l["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "missing_credentials",
            "missing_scope",
            "disabled_consumer",
            "unknown_certificate"
        ]
    );
}
