//! Rate limits in Redis, against a real redis-server: two tollgates share one budget,
//! and a Redis that is slow or gone is met as each policy's on_store_error says
//! (fail-open with a local bucket still limiting; fail-closed with 503) until Redis
//! is back.

use std::time::Duration;

use crate::support::redis::RedisServer;
use crate::support::{assert_problem, eventually, get, Origin, Tollgate};

fn config(origin: &Origin, redis: &RedisServer) -> String {
    format!(
        r#"
[redis]
url = "{url}"
timeout = "100ms"

[upstreams.app]
targets = [{target}]

[limits.shared]
key = "route"
rate = 1
per = "1h"
burst = 10
store = "redis"

[limits.open]
key = "client_ip"
rate = 1
per = "1h"
burst = 3
store = "redis"
on_store_error = "allow"

[limits.closed]
key = "client_ip"
rate = 1
per = "1h"
burst = 3
store = "redis"
on_store_error = "deny"

[[routes]]
name = "shared"
path_prefix = "/shared"
upstream = "app"
limits = ["shared"]

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "app"
limits = ["open"]

[[routes]]
name = "closed"
path_prefix = "/closed"
upstream = "app"
limits = ["closed"]
"#,
        url = redis.url(),
        target = origin.target()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_one_budget() {
    let redis = RedisServer::start().await;
    let origin = Origin::start("o").await;
    let (a, b) = (
        Tollgate::start(&config(&origin, &redis)).await,
        Tollgate::start(&config(&origin, &redis)).await,
    );
    let mut admitted = 0;
    for i in 0..16 {
        let tg = if i % 2 == 0 { &a } else { &b };
        if get(&tg.url("/shared")).await.status == 200 {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 10,
        "the shared bucket holds 10 tokens for both instances together"
    );
    assert_eq!(origin.count(), 10);
    // One bucket, named as documented: NAME:RATE/PERms/BURST:KEY:hash of the route.
    let keys = redis.keys("tollgate:rl:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let bucket = keys[0]
        .strip_prefix("tollgate:rl:shared:1/3600000ms/10:route:")
        .unwrap_or_else(|| panic!("{keys:?}"));
    assert_eq!(bucket.len(), 32, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_is_met_as_configured_and_limiting_resumes() {
    let mut redis = RedisServer::start().await;
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, &redis)).await;
    assert_eq!(get(&tg.url("/open")).await.status, 200);
    assert_eq!(get(&tg.url("/closed")).await.status, 200);

    redis.kill();
    // Fail-closed: 503 while Redis cannot answer.
    assert_problem(&get(&tg.url("/closed")).await, 503);
    // Fail-open: admitted, but a local bucket (3 tokens) keeps limiting meanwhile.
    let statuses: Vec<u16> = futures_statuses(&tg, "/open", 4).await;
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "local limiting during the outage"
    );
    assert!(tg.log().contains("Redis unavailable"), "{}", tg.log());
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    assert!(
        metrics.contains("tollgate_ratelimit_store_errors_total{policy=\"closed\"}"),
        "{metrics}"
    );

    // Redis is back (empty): the store reconnects by itself and limits through Redis again.
    redis.restart().await;
    let back = eventually(Duration::from_secs(10), || async {
        get(&tg.url("/closed")).await.status == 200
    })
    .await;
    assert!(back, "tollgate never used Redis again:\n{}", tg.log());
    let statuses = futures_statuses(&tg, "/closed", 3).await;
    assert_eq!(
        statuses,
        vec![200, 200, 429],
        "3 tokens in the fresh Redis bucket, one already taken"
    );
    assert!(tg.log().contains("Redis answers again"), "{}", tg.log());
}

async fn futures_statuses(tg: &Tollgate, path: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(&tg.url(path)).await.status);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_slower_than_its_timeout_counts_as_unavailable() {
    let redis = RedisServer::start().await;
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin, &redis)).await;
    assert_eq!(get(&tg.url("/closed")).await.status, 200, "Redis answers");
    redis.stall(2.0);
    let started = std::time::Instant::now();
    assert_problem(&get(&tg.url("/closed")).await, 503);
    assert_eq!(
        get(&tg.url("/open")).await.status,
        200,
        "fail-open admits meanwhile"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "tollgate waited for the stalled Redis: {:?}",
        started.elapsed()
    );
}
