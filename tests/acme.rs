//! ACME: the real test CA (Debian's `pebble`, with its own DNS) that the tests of
//! automatic certificates run against, checked on its own first: its directory over
//! TLS for a client that trusts the test's CA, and refused to one that does not.

use crate::support::free_port;
use crate::support::pebble::{Pebble, PebbleSettings};

#[tokio::test(flavor = "multi_thread")]
async fn pebble_serves_its_directory_over_tls_from_the_tests_ca() {
    let pebble = Pebble::start(PebbleSettings {
        http_port: free_port(),
        tls_port: free_port(),
        validity: Some(std::time::Duration::from_secs(120)),
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
    let directory: serde_json::Value = serde_json::from_slice(&body).expect("a JSON directory");
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
