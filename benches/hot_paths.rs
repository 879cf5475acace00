//! The hot pure functions of the request path, so that a regression shows without a
//! load test: path normalization, route lookup (10 routes; 10,000 on one host, with
//! distinct first segments or all under `/api`; 10,000 on 1,000 hosts), a GCRA take,
//! the lookup of a cached token (its digest and the cache get), an RS256 signature
//! check with jsonwebtoken's provider (the key parsed each time) and with tollgate's
//! (src/auth/parsed_keys.rs, the key parsed once), for a DER key and for one given as
//! JWK components, and the request phase of 8 stages
//! that decide at once, against the same 8 stages each boxing a future (what a trait
//! with `async fn` hooks costs per stage per request), the local rate-limit key of a
//! client IP, the forwarded headers added to a request parsed as Pingora parses it
//! (with and without its room for added headers), and one access-log line.
//!
//! `cargo bench --bench hot_paths`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use futures::FutureExt;
use http::{HeaderValue, Method, StatusCode};
use pingora::http::RequestHeader;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tollgate::config::limit_key::KeyPart;
use tollgate::edge::forwarded::Forwarded;
use tollgate::edge::path::{normalize, PathRules};
use tollgate::observability::{AccessRecord, LogFields};
use tollgate::ratelimit::gcra::Quota;
use tollgate::ratelimit::{BucketIdentity, Buckets, KeyInput};
use tollgate::routing::{Route, RouteAction, Router, StaticResponse};
use tollgate::stage::{Cx, Declared, Facts, Hooks, Slots, Stage, Stages, StagesBuilder, Step};

fn path_normalization(c: &mut Criterion) {
    let rules = PathRules::default();
    c.bench_function("normalize a plain path", |b| {
        b.iter(|| normalize(black_box(b"/api/v1/orders/12345/items"), &rules))
    });
    c.bench_function("normalize an encoded path", |b| {
        b.iter(|| normalize(black_box(b"/api//v1/%6Frders/12345/it%65ms;v=2"), &rules))
    });
}

/// A router with `prefixes` routes under one host, or spread over `hosts` hosts, each
/// prefix under `root`.
fn router(hosts: usize, prefixes: usize, root: &str) -> Router {
    let mut router = Router::default();
    let listeners = vec!["main".to_owned()];
    for h in 0..hosts {
        for p in 0..prefixes {
            let answer = StaticResponse {
                status: StatusCode::OK,
                body: Bytes::from_static(b"ok"),
                content_type: HeaderValue::from_static("text/plain"),
            };
            let name = format!("r{h}-{p}");
            let route = Route::new(
                &name,
                &format!("{root}/svc{p}/v1"),
                vec![],
                RouteAction::Respond(answer),
                Stages::default(),
            );
            router.add(&listeners, &[format!("h{h}.example.com")], Arc::new(route));
        }
    }
    router.finish();
    router
}

fn route_lookup(c: &mut Criterion) {
    for (label, hosts, prefixes, root) in [
        ("10 routes", 1, 10, ""),
        ("10,000 routes on one host", 1, 10_000, ""),
        (
            "10,000 routes on one host, all under /api",
            1,
            10_000,
            "/api",
        ),
        ("10,000 routes on 1,000 hosts", 1_000, 10, ""),
    ] {
        let router = router(hosts, prefixes, root);
        let host = format!("h{}.example.com", hosts / 2);
        let path = format!("{root}/svc{}/v1/orders", prefixes / 2);
        c.bench_function(&format!("find a route among {label}"), |b| {
            b.iter(|| {
                router
                    .find("main", black_box(&host), black_box(&path), &Method::GET)
                    .is_ok()
            })
        });
    }
}

fn gcra(c: &mut Criterion) {
    let quota = Quota::new(100, Duration::from_secs(1), 20);
    c.bench_function("gcra take", |b| {
        b.iter(|| quota.take(black_box(5_000_000_000), black_box(5_010_000_000), 1))
    });
}

fn token_cache_hit(c: &mut Criterion) {
    let cache = quick_cache::sync::Cache::<[u8; 32], Arc<String>>::new(10_000);
    let token = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.{}",
        "a".repeat(300),
        "b".repeat(342)
    );
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    cache.insert(digest, Arc::new("principal".to_owned()));
    c.bench_function("token cache hit (digest + get)", |b| {
        b.iter(|| {
            let digest: [u8; 32] = Sha256::digest(black_box(token.as_bytes())).into();
            cache.get(&digest)
        })
    });
}

fn rs256_signature_check(c: &mut Criterion) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use jsonwebtoken::crypto::{aws_lc, CryptoProvider};
    use jsonwebtoken::{Algorithm, DecodingKey};

    let pair = KeyPair::generate(KeySize::Rsa2048).expect("key pair");
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9";
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message,
        &mut signature,
    )
    .expect("sign");
    let key = DecodingKey::from_rsa_der(pair.public_key().as_ref());
    let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk = DecodingKey::from_rsa_raw_components(&parts.n, &parts.e);
    let parsed_once = tollgate::auth::parsed_keys::provider();
    let cases: [(&str, &CryptoProvider, &DecodingKey); 4] = [
        (
            "jsonwebtoken's provider, key parsed each time",
            &aws_lc::DEFAULT_PROVIDER,
            &key,
        ),
        ("keys parsed once", parsed_once, &key),
        (
            "JWK components, jsonwebtoken's provider",
            &aws_lc::DEFAULT_PROVIDER,
            &jwk,
        ),
        ("JWK components, keys parsed once", parsed_once, &jwk),
    ];
    for (label, provider, key) in cases {
        c.bench_function(&format!("RS256 signature check, {label}"), |b| {
            b.iter(|| {
                (provider.verifier_factory)(&Algorithm::RS256, key)
                    .expect("verifier")
                    .verify(black_box(message), &signature)
                    .is_ok()
            })
        });
    }
}

/// A stage that lets every request go on: at once, or through a boxed future.
struct Pass {
    boxed: bool,
}

impl Stage for Pass {
    fn name(&self) -> &'static str {
        "pass"
    }

    fn declares(&self) -> Declared {
        Declared::hooks(Hooks::REQUEST)
    }

    fn on_request<'a>(&'a self, cx: &'a mut Cx<'_>) -> Step<'a> {
        match self.boxed {
            true => Step::Wait(
                async move {
                    black_box(cx.facts());
                    Ok(())
                }
                .boxed(),
            ),
            false => Step::Continue,
        }
    }
}

fn stages(c: &mut Criterion) {
    let req = RequestHeader::build("GET", b"/", None).expect("request");
    for (label, boxed) in [("decide at once", false), ("box a future each", true)] {
        let mut list = StagesBuilder::default();
        for _ in 0..8 {
            list.add(Pass { boxed });
        }
        let list = list.finish();
        c.bench_function(&format!("request phase of 8 stages that {label}"), |b| {
            b.iter(|| {
                let (mut facts, mut slots) = (Facts::new(SystemTime::UNIX_EPOCH), Slots::default());
                list.request(&req, &mut facts, &mut slots)
                    .now_or_never()
                    .is_some_and(|r| r.is_ok())
            })
        });
    }
}

fn limit_key(c: &mut Criterion) {
    let buckets = Buckets::new(BucketIdentity {
        name: "per-ip".to_owned(),
        rate: 100,
        per: Duration::from_secs(1),
        burst: 100,
        key: vec![KeyPart::parse("client_ip").expect("key")],
    });
    let req = RequestHeader::build("GET", b"/", None).expect("request");
    let input = KeyInput {
        client_ip: "203.0.113.7".parse().expect("ip"),
        principal: None,
        route: "all",
        req: &req,
    };
    c.bench_function("local limit key of a client IP", |b| {
        b.iter(|| buckets.local_key(black_box(&input)))
    });
}

fn forwarded_headers(c: &mut Criterion) {
    let room = pingora::protocols::http::PARSED_HEADER_HEADROOM;
    let forwarded = Forwarded {
        peer: "203.0.113.7".parse().expect("ip"),
        peer_trusted: false,
        named_client: None,
        proto: "http",
    };
    for (label, size) in [("with room", 1 + room), ("built to size", 1)] {
        c.bench_function(&format!("forwarded headers, parsed map {label}"), |b| {
            b.iter(|| {
                let mut req = RequestHeader::build("GET", b"/", Some(size)).expect("request");
                req.append_header("Host", "api.example.com").expect("host");
                forwarded.apply(&mut req).expect("apply");
                req
            })
        });
    }
}

fn access_log_line(c: &mut Criterion) {
    let extra = LogFields::default();
    let record = AccessRecord {
        time: "2026-12-06T21:00:00.123Z".to_owned(),
        request_id: "0b9f6c1e-4d7a-4c55-9a0e-3f1d2b6c7a88",
        client_ip: "203.0.113.7".parse().expect("ip"),
        method: "GET",
        host: "api.example.com",
        path: "/api/v1/orders/12345",
        status: 200,
        route: Some("orders"),
        consumer: Some("bench"),
        tls: None,
        client_cert_subject: None,
        client_cert_sha256: None,
        upstream: Some("127.0.0.1:8080".parse().expect("addr")),
        bytes: 1234,
        duration_ms: 0.42,
        extra: &extra,
    };
    c.bench_function("access log line", |b| {
        b.iter(|| serde_json::to_string(black_box(&record)).expect("json"))
    });
}

criterion_group!(
    benches,
    path_normalization,
    route_lookup,
    gcra,
    token_cache_hit,
    rs256_signature_check,
    stages,
    limit_key,
    forwarded_headers,
    access_log_line
);
criterion_main!(benches);
