//! Each balancing mode's distribution over real origins.

use std::time::Duration;

use crate::support::{client, eventually, send, spread, Origin, Tollgate};

fn config(targets: &str, balance: &str) -> String {
    format!(
        "[upstreams.pool]\ntargets = [{targets}]\n{balance}\n\n\
         [[routes]]\nname = \"all\"\npath_prefix = \"/\"\nupstream = \"pool\"\n"
    )
}

fn targets(origins: &[Origin]) -> String {
    origins
        .iter()
        .map(Origin::target)
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_spreads_evenly() {
    let origins = Origin::start_many("rr", 3).await;
    let tg = Tollgate::start(&config(&targets(&origins), "balance = \"round_robin\"")).await;
    let counts = spread(&tg.url("/"), 30).await;
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_follows_the_weights() {
    let o = Origin::start_many("w", 2).await;
    let targets = format!(
        "{{ addr = {}, weight = 1 }}, {{ addr = {}, weight = 3 }}",
        o[0].target(),
        o[1].target()
    );
    let tg = Tollgate::start(&config(&targets, "balance = \"weighted\"")).await;
    let counts = spread(&tg.url("/"), 40).await;
    assert_eq!((counts["w0"], counts["w1"]), (10, 30), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_uses_every_target() {
    let origins = Origin::start_many("rnd", 2).await;
    let tg = Tollgate::start(&config(&targets(&origins), "balance = \"random\"")).await;
    let counts = spread(&tg.url("/"), 200).await;
    // Binomial(200, 0.5): below 60 has a probability under 1e-8.
    assert!(counts.values().all(|&n| n >= 60), "{counts:?}");
    assert_eq!(counts.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn consistent_hash_pins_a_key_to_one_target() {
    let origins = Origin::start_many("ch", 3).await;
    let tg = Tollgate::start(&config(
        &targets(&origins),
        "balance = \"consistent_hash\"\nhash_key = { header = \"x-tenant\" }",
    ))
    .await;
    let c = client();
    let mut owners = std::collections::BTreeSet::new();
    for tenant in 0..20 {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let r = send(c.get(tg.url("/")).header("x-tenant", format!("t{tenant}"))).await;
            seen.insert(r.header("x-origin").to_owned());
        }
        assert_eq!(
            seen.len(),
            1,
            "tenant t{tenant} moved between targets: {seen:?}"
        );
        owners.extend(seen);
    }
    assert!(owners.len() >= 2, "20 keys all landed on {owners:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn consistent_hash_by_path() {
    let origins = Origin::start_many("chp", 3).await;
    let tg = Tollgate::start(&config(
        &targets(&origins),
        "balance = \"consistent_hash\"\nhash_key = \"path\"",
    ))
    .await;
    for path in ["/a", "/b/c", "/d"] {
        let counts = spread(&tg.url(path), 5).await;
        assert_eq!(counts.len(), 1, "{path}: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn least_conn_avoids_the_busy_target() {
    let origins = Origin::start_many("lc", 2).await;
    let tg = Tollgate::start(&config(&targets(&origins), "balance = \"least_conn\"")).await;
    let slow_url = tg.url("/slow?ms=3000");
    let slow = tokio::spawn(async move { send(client().get(slow_url)).await });
    let arrived = eventually(Duration::from_secs(5), || async {
        origins.iter().any(|o| o.count() == 1)
    })
    .await;
    assert!(arrived, "the slow request never reached an origin");
    let busy = origins
        .iter()
        .find(|o| o.count() == 1)
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let counts = spread(&tg.url("/"), 6).await;
    assert_eq!(
        counts.get(&busy),
        None,
        "least_conn sent requests to the busy {busy}: {counts:?}"
    );
    assert_eq!(slow.await.expect("slow request").status, 200);
}
