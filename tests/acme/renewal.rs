//! Renewal: forced by a short `renew_before` against pebble's validity while a client
//! keeps a connection open; and brought forward by the CA's renewal window (ARI),
//! served by a stand-in in front of pebble, which has none.

use serde_json::Value;
use std::time::{Duration, SystemTime};

use super::{acme_sets, certified, config, http01_listener, served, Ports};
use crate::support::ari::AriFront;
use crate::support::{eventually, metric, tls_client, Tollgate};

#[tokio::test(flavor = "multi_thread")]
async fn renewal_swaps_the_certificate_while_a_connection_stays_open() {
    let ports = Ports::new();
    // 40 s certificates renewed 30 s before expiry: a renewal 10 s after each issue.
    let pebble = ports.pebble(Some(Duration::from_secs(40)), &[]).await;
    let storage = tempfile::tempdir().expect("tempdir");
    let listeners = http01_listener(ports.secure, "[\"a.test\"]");
    let tg = Tollgate::start(&config(&pebble, storage.path(), &ports, "30s", &listeners)).await;
    let first = certified(&tg, Duration::from_secs(60)).await[0]["status"]["not_after"].clone();
    let root = String::from_utf8(pebble.issuing_root().await).expect("PEM");
    let open = tls_client(&root, "a.test", ports.secure, None);
    let url = format!("https://a.test:{}/", ports.secure);
    let old = open.get(&url).send().await.expect("request");
    let old_cert = crate::tls::served_sha256(&old);
    assert_eq!(old.text().await.expect("body"), "hi");

    until_status(&tg, Duration::from_secs(40), "renewed", |s| {
        s["not_after"] != first
    })
    .await;
    // The open connection goes on with the certificate it has.
    let again = open
        .get(&url)
        .send()
        .await
        .expect("request on the open connection");
    assert_eq!(crate::tls::served_sha256(&again), old_cert);
    assert_eq!(again.text().await.expect("body"), "hi");
    // A new handshake gets the new one.
    let fresh = tls_client(&root, "a.test", ports.secure, None)
        .get(&url)
        .send()
        .await
        .expect("request");
    assert_ne!(crate::tls::served_sha256(&fresh), old_cert);
    let metrics = tg.metrics().await;
    assert!(
        metric(&metrics, "tollgate_acme_orders_total{result=\"renewed\"}") >= 1,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cas_renewal_window_brings_renewal_forward_and_names_the_replaced_certificate() {
    let ports = Ports::new();
    let pebble = ports.pebble(None, &[]).await;
    let front = AriFront::start(&pebble).await;
    let storage = tempfile::tempdir().expect("tempdir");
    let listeners = http01_listener(ports.secure, "[\"a.test\"]");
    let body = config(&pebble, storage.path(), &ports, "30d", &listeners)
        .replace(&pebble.directory, &front.directory);
    let tg = Tollgate::start(&body).await;
    certified(&tg, Duration::from_secs(60)).await;
    // Once issued, the certificate's window is asked for; the CA's (two months ahead)
    // comes before renew_before's (30 days before pebble's years of validity).
    let status = until_status(&tg, Duration::from_secs(10), "a window", |s| {
        s["window"].is_object()
    })
    .await;
    let window = &status["window"];
    let first = window["certificate"]
        .as_str()
        .expect("identifier")
        .to_owned();
    assert_eq!(front.asked(), [first.as_str()]);
    let at = window["renew_at"].as_i64().expect("renew_at");
    assert!(window["start"].as_i64() <= Some(at) && Some(at) <= window["end"].as_i64());
    assert_eq!(status["renew_at"].as_i64(), Some(at), "{status}");
    assert!(
        status["not_after"].as_i64() > Some(at + 30 * 86_400),
        "{status}"
    );
    let old = served(ports.secure, "a.test").to_der().expect("der");
    drop(tg);

    // The CA now says it is time (its window has begun): a restart renews at once,
    // then asks about the new one. The order names the certificate it replaces;
    // pebble 2.4 does not say it took it as one, so it is ordered anew.
    let now = SystemTime::now();
    front.set_window(
        &first,
        now - Duration::from_secs(3600),
        now + Duration::from_secs(60),
    );
    let tg = Tollgate::start(&body).await;
    let status = until_status(&tg, Duration::from_secs(60), "renewed", |s| {
        s["window"]["certificate"]
            .as_str()
            .is_some_and(|c| c != first)
    })
    .await;
    let second = status["window"]["certificate"].as_str().expect("id");
    assert_eq!(front.asked(), [first.as_str(), &first, second]);
    assert_ne!(served(ports.secure, "a.test").to_der().expect("der"), old);
    assert!(tg.log().contains("did not take the order as a replacement"));
    let metrics = tg.metrics().await;
    assert_eq!(
        metric(&metrics, "tollgate_acme_orders_total{result=\"renewed\"}"),
        1
    );
    assert_eq!(
        metric(&metrics, "tollgate_acme_orders_total{result=\"issued\"}"),
        0
    );
}

/// Waits until the status of `tg`'s first set satisfies `done` (`what`); that status.
async fn until_status(
    tg: &Tollgate,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let reached = eventually(within, || async { done(&acme_sets(tg).await[0]["status"]) }).await;
    let sets = acme_sets(tg).await;
    assert!(reached, "not {what}: {sets:?}\n{}", tg.log());
    sets[0]["status"].clone()
}
