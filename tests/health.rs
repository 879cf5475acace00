//! Active health checks: a dead target is skipped once its check fails and used
//! again once it recovers; with every target down the route answers 503.

use std::time::Duration;

use crate::support::{assert_problem, client, eventually, get, send, Origin, Tollgate};

fn config(targets: &str, health: &str) -> String {
    format!(
        "[upstreams.pool]\ntargets = [{targets}]\nretries = 0\nhealth = {health}\n\n\
         [[routes]]\nname = \"all\"\npath_prefix = \"/\"\nupstream = \"pool\"\n"
    )
}

/// True when `n` requests in a row all succeed on `only`.
async fn all_served_by(url: &str, only: &str, n: usize) -> bool {
    let c = client();
    for _ in 0..n {
        let r = send(c.get(url)).await;
        if r.status != 200 || r.header("x-origin") != only {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_target_is_skipped_then_comes_back() {
    for kind in ["tcp", "http"] {
        let mut o = Origin::start_many(kind, 2).await;
        let targets = format!("{}, {}", o[0].target(), o[1].target());
        let health = format!(
            "{{ kind = \"{kind}\", {}interval = \"100ms\", timeout = \"500ms\", unhealthy_threshold = 1, healthy_threshold = 1 }}",
            if kind == "http" { "path = \"/healthz\", " } else { "" }
        );
        let tg = Tollgate::start(&config(&targets, &health)).await;
        let url = tg.url("/");
        let both = eventually(Duration::from_secs(5), || async {
            crate::support::spread(&url, 4).await.len() == 2
        })
        .await;
        assert!(both, "{kind}: both targets serve at first");

        o[1].stop().await;
        let skipped = eventually(Duration::from_secs(5), || {
            all_served_by(&url, &o[0].name, 4)
        })
        .await;
        assert!(skipped, "{kind}: the dead target is still picked");
        assert!(
            all_served_by(&url, &o[0].name, 10).await,
            "{kind}: once marked down it stays skipped"
        );

        o[1].restart().await;
        let back = eventually(Duration::from_secs(5), || async {
            get(&url).await.header("x-origin") == o[1].name
        })
        .await;
        assert!(back, "{kind}: the recovered target gets traffic again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_target_down_is_503_logged_once_per_change() {
    let mut o = Origin::start("solo").await;
    let health = "{ kind = \"tcp\", interval = \"100ms\", unhealthy_threshold = 1 }";
    let tg = Tollgate::start(&config(&o.target(), health)).await;
    assert_eq!(get(&tg.url("/")).await.status, 200);
    o.stop().await;
    let down = eventually(Duration::from_secs(5), || async {
        get(&tg.url("/")).await.status == 503
    })
    .await;
    assert!(down, "no 503 once the only target is down");
    for _ in 0..10 {
        assert_problem(&get(&tg.url("/")).await, 503);
    }
    o.restart().await;
    let up = eventually(Duration::from_secs(5), || async {
        get(&tg.url("/")).await.status == 200
    })
    .await;
    assert!(up, "no 200 once the target is back");
    // The 503s answered on purpose are one WARN line when they start and one when
    // they end, not an ERROR line each.
    let log = tg.log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        lines("WARN  tollgate::upstream::targets] upstream \"pool\": no healthy target"),
        1,
        "{log}"
    );
    assert_eq!(
        lines("WARN  tollgate::upstream::targets] upstream \"pool\": a healthy target again"),
        1,
        "{log}"
    );
    // (A 502 while the dead target was still thought healthy is an ERROR, rightly.)
    assert_eq!(lines("status: 503"), 0, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_targets_keep_their_health_across_a_reload() {
    let mut o = Origin::start_many("keep", 2).await;
    o[1].stop().await;
    // Checked once at start, then only every minute: a kept pool keeps o[1] marked down.
    let health = "{ kind = \"tcp\", interval = \"60s\", unhealthy_threshold = 1 }";
    let body = config(&format!("{}, {}", o[0].target(), o[1].target()), health);
    let tg = Tollgate::start(&body).await;
    let url = tg.url("/");
    let marked_down = eventually(Duration::from_secs(5), || {
        all_served_by(&url, &o[0].name, 4)
    })
    .await;
    assert!(marked_down, "the dead target was never marked down");
    o[1].restart().await;

    let unrelated = format!("{body}\n[[routes]]\nname = \"extra\"\npath_prefix = \"/extra\"\nrespond = {{ status = 200 }}\n");
    assert!(tg.reload(&unrelated).await, "{}", tg.log());
    assert!(
        all_served_by(&url, &o[0].name, 10).await,
        "the pool's health state was reset by an unrelated reload"
    );

    // Retries are a setting of the snapshot, not of the targets: health is kept.
    let retries = unrelated.replace("retries = 0", "retries = 1");
    assert!(tg.reload(&retries).await, "{}", tg.log());
    assert!(
        all_served_by(&url, &o[0].name, 10).await,
        "changing retries reset the health state"
    );

    // Changed health checks are new targets, checked at once: o[1] is found alive.
    let changed = retries.replace("interval = \"60s\"", "interval = \"59s\"");
    assert!(tg.reload(&changed).await, "{}", tg.log());
    let back = eventually(Duration::from_secs(5), || async {
        get(&url).await.header("x-origin") == o[1].name
    })
    .await;
    assert!(
        back,
        "changed targets did not start with fresh health checks"
    );
}
