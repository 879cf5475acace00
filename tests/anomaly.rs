//! Anomaly detection in the running binary, with one-second buckets: a client trying
//! many distinct keys is found (`anomaly` security event, `GET /anomalies`, the
//! metric) and banned by the jail its detector names; a client repeating one wrong
//! key is not. The detectors' judgement over simulated days is unit-tested
//! (src/anomaly/tests.rs); without `[anomaly]`, `GET /anomalies` is 404.

use serde_json::Value;
use std::time::Duration;

use crate::support::{client, eventually, metric, refused_route, Tollgate};

const STUFFER: &str = "198.51.100.66";
const FORGETFUL: &str = "192.0.2.44";

fn body() -> String {
    format!(
        "{}\n[jails.stuffers]\nkey = \"client_ip\"\nmax_strikes = 1000\nwindow = \"1m\"\nban = \"10m\"\n\n\
         [anomaly]\ninterval = \"1s\"\n\
         credential_stuffing = {{ min_credentials = 5, jail = \"stuffers\" }}\n",
        refused_route("/private")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_stuffing_is_found_logged_and_banned_and_one_wrong_key_is_not() {
    let server = "trusted_proxies = [\"127.0.0.1/32\"]\n";
    let tg = Tollgate::start_with_server(&body(), server).await;
    let c = client();
    let send = |from: &'static str, key: String| {
        let req = c.get(tg.url("/private")).header("x-forwarded-for", from);
        async move {
            req.header("x-api-key", key)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    // Within one bucket: from the start of a second (16 requests take milliseconds).
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1_000 - into_second) + 5)).await;
    for i in 0..8 {
        assert_eq!(send(STUFFER, format!("guess-{i}")).await, 401);
        assert_eq!(send(FORGETFUL, "the-old-key".into()).await, 401);
    }
    // A bucket is judged when it is over: the next request after it ends it.
    let anomalies = |log: Vec<Value>| -> Vec<Value> {
        log.into_iter()
            .filter(|l| l["event"] == "anomaly")
            .collect()
    };
    let found = eventually(Duration::from_secs(10), || async {
        send("203.0.113.1", "x".into()).await;
        !anomalies(tg.security_log(1).await).is_empty()
    })
    .await;
    let events = anomalies(tg.security_log(1).await);
    assert!(found, "no anomaly: {}", tg.log());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detector"], "credential_stuffing");
    assert_eq!(events[0]["subject"], format!("client {STUFFER}"));
    assert_eq!(events[0]["observed"], "8");
    assert_eq!(events[0]["window_seconds"], "1");
    let bans: Vec<Value> = (tg.security_log(1).await.into_iter())
        .filter(|l| l["event"] == "jail_ban")
        .collect();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0]["key"], STUFFER);
    assert_eq!(bans[0]["reason"], "anomaly:credential_stuffing");
    assert_eq!(send(STUFFER, "one-more".into()).await, 403, "banned");
    assert_eq!(
        send(FORGETFUL, "the-old-key".into()).await,
        401,
        "not banned"
    );

    let listed = tg.admin_get("/anomalies").await.json();
    assert_eq!(listed[0]["detector"], "credential_stuffing", "{listed}");
    assert_eq!(listed[0]["observed"], 8.0);
    let metrics = tg.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "tollgate_anomalies_total{detector=\"credential_stuffing\"}"
        ),
        1
    );
    assert!(
        !tg.security_log_text().contains("guess-"),
        "no credential in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_section_anomalies_are_off() {
    let tg = Tollgate::start("").await;
    assert_eq!(tg.admin_get("/anomalies").await.status, 404);
}
