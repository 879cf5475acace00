//! Remote JWKS (`jwks_url`) against a real HTTP endpoint: rotation with overlap, a
//! removed key rejected after the refresh (even if its token was cached), a failed
//! fetch keeping the last good set, and single-flight, rate-limited on-demand fetches.

use jsonwebtoken::Algorithm;
use std::time::Duration;

use super::{assert_unauthorized, bearer};
use crate::support::jwks_server::JwksServer;
use crate::support::tokens::{claims, jwks, KeyPair};
use crate::support::{eventually, Origin, Tollgate};

fn config(origin: &Origin, url: &str, min_refresh: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [{}]\n\n\
         [auth.idp]\nkind = \"jwt\"\nalgorithms = [\"ES256\"]\njwks_url = \"{url}\"\n\
         jwks_refresh = \"1h\"\njwks_min_refresh = \"{min_refresh}\"\n\n\
         [[routes]]\nname = \"api\"\npath_prefix = \"/\"\nupstream = \"app\"\nauth = [\"idp\"]\n",
        origin.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_overlap_removal_and_failed_fetches() {
    let (a, b) = (
        KeyPair::ec("a", Algorithm::ES256),
        KeyPair::ec("b", Algorithm::ES256),
    );
    let server = JwksServer::start(jwks(&[&a])).await;
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, &server.url(), "200ms")).await;
    let url = tg.url("/");
    let (token_a, token_b) = (a.sign(&claims("alice")), b.sign(&claims("bob")));

    let loaded = eventually(Duration::from_secs(5), || async {
        bearer(&url, &token_a).await.status == 200
    })
    .await;
    assert!(loaded, "key a never accepted");

    // Rotation: b is published next to a. Its unknown kid makes tollgate fetch again
    // (the schedule is an hour away), and both keys are accepted during the overlap.
    server.set(Some(jwks(&[&a, &b])));
    let learned = eventually(Duration::from_secs(5), || async {
        bearer(&url, &token_b).await.status == 200
    })
    .await;
    assert!(learned, "the new key b was never fetched");
    assert_eq!(
        bearer(&url, &token_a).await.status,
        200,
        "a during the overlap"
    );

    // a is withdrawn; the next fetch (forced by another unknown kid) drops it, and its
    // token, verified and cached before, is refused from then on.
    server.set(Some(jwks(&[&b])));
    let c = KeyPair::ec("c", Algorithm::ES256);
    let token_c = c.sign(&claims("carol"));
    let dropped = eventually(Duration::from_secs(5), || async {
        bearer(&url, &token_c).await;
        bearer(&url, &token_a).await.status == 401
    })
    .await;
    assert!(dropped, "the withdrawn key a is still accepted");
    assert_unauthorized(&bearer(&url, &token_a).await, Some("invalid_token"));

    // The endpoint breaks: fetches fail, the last good set (b) keeps serving.
    let before = server.fetches();
    server.set(None);
    let failed = eventually(Duration::from_secs(5), || async {
        bearer(&url, &token_c).await;
        server.fetches() > before
    })
    .await;
    assert!(failed, "no fetch was attempted against the broken endpoint");
    assert_eq!(
        bearer(&url, &token_b).await.status,
        200,
        "the last good key set was dropped"
    );
    assert!(
        tg.log().contains("keeping the last good key set"),
        "{}",
        tg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kid_fetches_are_rate_limited_and_single_flight() {
    let a = KeyPair::ec("a", Algorithm::ES256);
    let server = JwksServer::start(jwks(&[&a])).await;
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, &server.url(), "2s")).await;
    let url = tg.url("/");
    let initial = eventually(Duration::from_secs(5), || async { server.fetches() >= 1 }).await;
    assert!(initial, "no fetch at start");

    // A burst of unknown kids within min_refresh of the last fetch fetches nothing.
    let fetched = server.fetches();
    let stranger = KeyPair::ec("x", Algorithm::ES256).sign(&claims("eve"));
    let burst: Vec<_> = (0..20)
        .map(|_| tokio::spawn(bearer_owned(url.clone(), stranger.clone())))
        .collect();
    for r in burst {
        assert_eq!(r.await.expect("request").status, 401);
    }
    assert!(
        server.fetches() <= fetched + 1,
        "{} fetches for one burst",
        server.fetches() - fetched
    );

    // A new key: once min_refresh has passed, one concurrent batch causes exactly one
    // fetch, and every request of the batch waits for it and is accepted. Every fetch so
    // far happened before the burst ended, so min_refresh (2 s) after that the window is
    // open. Nothing can be polled for that (probing would itself fetch): this waits.
    let window_open = tokio::time::Instant::now() + Duration::from_millis(2300);
    let n = KeyPair::ec("n", Algorithm::ES256);
    server.set(Some(jwks(&[&a, &n])));
    let token_n = n.sign(&claims("nina"));
    tokio::time::sleep_until(window_open).await;
    let before = server.fetches();
    let batch: Vec<_> = (0..10)
        .map(|_| tokio::spawn(bearer_owned(url.clone(), token_n.clone())))
        .collect();
    for r in batch {
        let reply = r.await.expect("request");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let n = server.fetches() - before;
    assert_eq!(n, 1, "the batch caused {n} fetches");
}

async fn bearer_owned(url: String, token: String) -> crate::support::Reply {
    bearer(&url, &token).await
}
