//! JWT: each algorithm family, every rejection, identity headers, credential
//! stripping, scopes and roles, the security log and its metrics.

use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

use super::{assert_unauthorized, bearer};
use crate::support::tokens::{
    claims, jwks, now, sign_hs, tampered, unsigned, KeyPair, AUDIENCE, ISSUER,
};
use crate::support::{client, get, send, Origin, Tollgate};

const SECRET: &str = "a-test-secret-of-more-than-32-bytes!!";

struct Keys {
    rsa: KeyPair,
    ec256: KeyPair,
    ec384: KeyPair,
    ed: KeyPair,
}

fn keys() -> Keys {
    Keys {
        rsa: KeyPair::rsa("rsa-1", Algorithm::RS256),
        ec256: KeyPair::ec("ec-256", Algorithm::ES256),
        ec384: KeyPair::ec("ec-384", Algorithm::ES384),
        ed: KeyPair::ed25519("ed-1"),
    }
}

/// One origin, and routes guarded by a PEM key (RS/PS), a JWKS file (ES256, ES384,
/// EdDSA; no token cache: every token's signature is checked) and an HMAC secret.
async fn gateway(k: &Keys, origin: &Origin) -> Tollgate {
    let body = format!(
        r#"
[upstreams.app]
targets = [{target}]

[auth.rsa]
kind = "jwt"
algorithms = ["RS256", "PS384"]
public_key_file = "$DIR/rsa.pem"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
claim_headers = {{ email = "x-user-email" }}

[auth.jwks]
kind = "jwt"
algorithms = ["ES256", "ES384", "EdDSA"]
jwks_file = "$DIR/jwks.json"
token_cache = 0

[auth.hmac]
kind = "jwt"
algorithms = ["HS256", "HS512"]
secret_env = "TG_TEST_SECRET"
from = {{ cookie = "session" }}

[[routes]]
name = "rsa"
path_prefix = "/rsa"
upstream = "app"
auth = ["rsa"]

[[routes]]
name = "kept"
path_prefix = "/kept"
upstream = "app"
auth = ["rsa"]
keep_credentials = true

[[routes]]
name = "scoped"
path_prefix = "/scoped"
upstream = "app"
auth = ["rsa"]
require_scopes = ["orders:read"]

[[routes]]
name = "admins"
path_prefix = "/admins"
upstream = "app"
auth = ["rsa"]
require_roles = ["admin"]

[[routes]]
name = "jwks"
path_prefix = "/jwks"
upstream = "app"
auth = ["jwks"]

[[routes]]
name = "hmac"
path_prefix = "/hmac"
upstream = "app"
auth = ["hmac"]

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "app"
"#,
        target = origin.target()
    );
    let jwks_doc = jwks(&[&k.ec256, &k.ec384, &k.ed]);
    Tollgate::start_full(&body, "", &[("TG_TEST_SECRET", SECRET)], |dir| {
        std::fs::write(dir.join("rsa.pem"), &k.rsa.public_pem).expect("pem");
        std::fs::write(dir.join("jwks.json"), &jwks_doc).expect("jwks");
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_algorithm_family_is_verified() {
    let k = keys();
    let origin = Origin::start("o").await;
    let tg = gateway(&k, &origin).await;
    let good = claims("alice");

    let rs = k.rsa.sign(&good);
    let ps = k.rsa.sign_with(header(Algorithm::PS384, "rsa-1"), &good);
    for (what, url, token) in [
        ("RS256", "/rsa", rs),
        ("PS384", "/rsa", ps),
        ("ES256", "/jwks", k.ec256.sign(&good)),
        ("ES384", "/jwks", k.ec384.sign(&good)),
        ("EdDSA", "/jwks", k.ed.sign(&good)),
    ] {
        // Twice: the second time from the cache, or (on /jwks) verified again.
        for _ in 0..2 {
            let r = bearer(&tg.url(url), &token).await;
            assert_eq!(r.status, 200, "{what}: {}", r.body);
        }
    }
    for alg in [Algorithm::HS256, Algorithm::HS512] {
        let token = sign_hs(alg, SECRET.as_bytes(), &good);
        let r = send(
            client()
                .get(tg.url("/hmac"))
                .header("cookie", format!("a=1; session={token}")),
        )
        .await;
        assert_eq!(r.status, 200, "{alg:?} from a cookie: {}", r.body);
    }
    // A key of the right type that is not the configured one.
    let stranger = KeyPair::rsa("rsa-1", Algorithm::RS256);
    assert_unauthorized(
        &bearer(&tg.url("/rsa"), &stranger.sign(&good)).await,
        Some("invalid_token"),
    );
    let wrong_secret = sign_hs(
        Algorithm::HS256,
        b"another-secret-of-more-than-32-bytes",
        &good,
    );
    let r = send(
        client()
            .get(tg.url("/hmac"))
            .header("cookie", format!("session={wrong_secret}")),
    )
    .await;
    assert_unauthorized(&r, Some("invalid_token"));
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    h
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_token_is_rejected_with_its_reason() {
    let k = keys();
    let origin = Origin::start("o").await;
    let tg = gateway(&k, &origin).await;
    let rsa = &k.rsa;
    let base = claims("mallory");
    let with = |patch: serde_json::Value| {
        let mut c = base.clone();
        for (key, v) in patch.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("claims").remove(key);
            } else {
                c[key] = v.clone();
            }
        }
        c
    };
    let mut crit = header(Algorithm::RS256, "rsa-1");
    crit.crit = Some(vec!["https://example.com/ext".to_owned()]);
    let confused = sign_hs(Algorithm::HS256, &rsa.public_pem, &base);
    let big = with(json!({ "padding": "x".repeat(9000) }));
    // An unknown kid only means something where keys have kids: the JWKS route.
    let unknown_kid = k.ec256.sign_with(header(Algorithm::ES256, "ec-9"), &base);
    let cases: Vec<(&str, &str, String)> = vec![
        ("alg none", "malformed", unsigned(&base)),
        (
            "RS256 key used as HS256 secret",
            "algorithm_not_allowed",
            confused,
        ),
        (
            "expired",
            "expired",
            rsa.sign(&with(json!({ "exp": now() - 120 }))),
        ),
        (
            "not yet valid",
            "not_yet_valid",
            rsa.sign(&with(json!({ "nbf": now() + 600 }))),
        ),
        (
            "wrong issuer",
            "bad_issuer",
            rsa.sign(&with(json!({ "iss": "https://evil.test/" }))),
        ),
        (
            "missing issuer",
            "bad_issuer",
            rsa.sign(&with(json!({ "iss": null }))),
        ),
        (
            "wrong audience",
            "bad_audience",
            rsa.sign(&with(json!({ "aud": "other-api" }))),
        ),
        (
            "missing audience",
            "bad_audience",
            rsa.sign(&with(json!({ "aud": null }))),
        ),
        (
            "missing exp",
            "missing_exp",
            rsa.sign(&with(json!({ "exp": null }))),
        ),
        ("unknown kid", "unknown_kid", unknown_kid),
        (
            "tampered signature",
            "bad_signature",
            tampered(&rsa.sign(&base)),
        ),
        ("oversized", "token_too_large", rsa.sign(&big)),
        ("unknown crit", "unknown_crit", rsa.sign_with(crit, &base)),
    ];
    let route = |what: &str| if what == "unknown kid" { "jwks" } else { "rsa" };
    for (what, _, token) in &cases {
        let url = tg.url(&format!("/{}", route(what)));
        assert_unauthorized(&bearer(&url, token).await, Some("invalid_token"));
        assert!(origin.count() == 0, "{what} reached the origin");
    }
    let events = tg.security_log(cases.len()).await;
    for ((what, reason, token), event) in cases.iter().zip(&events) {
        assert_eq!(event["reason"], *reason, "{what}: {event}");
        assert_eq!(
            (event["outcome"].as_str(), event["authenticator"].as_str()),
            (Some("reject"), Some(route(what)))
        );
        assert!(
            !tg.security_log_text().contains(token.as_str()),
            "{what}: the token was logged"
        );
    }
    // Within the 30 s default leeway an expired token still passes.
    let r = bearer(
        &tg.url("/rsa"),
        &rsa.sign(&with(json!({ "exp": now() - 10 }))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // No credential at all: a challenge without an error code (RFC 6750 §3.1).
    assert_unauthorized(&get(&tg.url("/rsa")).await, None);
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    let expired =
        r#"tollgate_auth_decisions_total{authenticator="rsa",outcome="reject",reason="expired"} 1"#;
    assert!(metrics.contains(expired), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_reaches_the_upstream_unforged_and_the_token_does_not() {
    let k = keys();
    let origin = Origin::start("o").await;
    let tg = gateway(&k, &origin).await;
    let mut c = claims("alice");
    c["email"] = json!("alice@example.com");
    let token = k.rsa.sign(&c);
    let forged = |req: reqwest::RequestBuilder| {
        req.header("x-consumer-id", "root")
            .header("x-user-email", "root@evil.test")
    };

    assert_eq!(
        send(forged(client().get(tg.url("/rsa"))).bearer_auth(&token))
            .await
            .status,
        200
    );
    assert_eq!(
        send(forged(client().get(tg.url("/kept"))).bearer_auth(&token))
            .await
            .status,
        200
    );
    assert_eq!(
        send(forged(client().get(tg.url("/public")))).await.status,
        200
    );
    let seen = origin.seen();
    let h = &seen[0].headers;
    assert_eq!(
        (
            h["x-consumer-id"].to_str().ok(),
            h["x-user-email"].to_str().ok()
        ),
        (Some("alice"), Some("alice@example.com"))
    );
    assert!(
        h.get("authorization").is_none(),
        "the credential was forwarded"
    );
    assert_eq!(
        seen[1].headers["authorization"],
        format!("Bearer {token}"),
        "keep_credentials"
    );
    let public = &seen[2].headers;
    assert!(
        public.get("x-consumer-id").is_none() && public.get("x-user-email").is_none(),
        "forged identity reached a public route"
    );
    assert_eq!(tg.access_log(1).await[0]["consumer"], "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_scope_or_role_is_403() {
    let k = keys();
    let origin = Origin::start("o").await;
    let tg = gateway(&k, &origin).await;
    let with = |extra: serde_json::Value| {
        let mut c = claims("bob");
        for (key, v) in extra.as_object().expect("object") {
            c[key] = v.clone();
        }
        k.rsa.sign(&c)
    };
    let r = bearer(
        &tg.url("/scoped"),
        &with(json!({ "scope": "orders:read orders:write" })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = bearer(&tg.url("/scoped"), &with(json!({ "scp": ["orders:read"] }))).await;
    assert_eq!(r.status, 200, "scp as an array: {}", r.body);
    let r = bearer(
        &tg.url("/scoped"),
        &with(json!({ "scope": "orders:write" })),
    )
    .await;
    crate::support::assert_problem(&r, 403);
    assert!(
        r.header("www-authenticate")
            .contains("error=\"insufficient_scope\""),
        "{:?}",
        r.headers
    );
    assert_eq!(
        bearer(&tg.url("/admins"), &with(json!({ "roles": ["admin"] })))
            .await
            .status,
        200
    );
    crate::support::assert_problem(
        &bearer(&tg.url("/admins"), &with(json!({ "roles": ["user"] }))).await,
        403,
    );
    let events = tg.security_log(2).await;
    let reasons: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
                e["principal"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("forbid", "missing_scope", "bob"),
            ("forbid", "missing_role", "bob")
        ]
    );
}

#[test]
fn short_hmac_secret_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.toml");
    let text = "[listeners.a]\naddr = \"127.0.0.1:1\"\n[auth.h]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret_env = \"TG_SHORT\"\n";
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(crate::support::tollgate::BIN)
        .args(["check", "-c"])
        .arg(&path)
        .env("TG_SHORT", "too-short")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 32 are required"),
        "{out:?}"
    );
}
