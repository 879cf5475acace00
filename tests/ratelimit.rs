//! Rate and concurrency limits (local store): 429 with Retry-After and RateLimit
//! headers for one client while another is unaffected, consumer keys after auth, a
//! refused request taking nothing from the other limits, buckets across reloads,
//! and max_in_flight 503s.

use std::time::Duration;

use crate::support::{assert_problem, client, eventually, get, send, Origin, Reply, Tollgate};

/// Clients are told apart by X-Forwarded-For, believed from loopback.
const TRUSTED: &str = "trusted_proxies = [\"127.0.0.0/8\"]";

fn from(tg: &Tollgate, path: &str, ip: &str) -> reqwest::RequestBuilder {
    client().get(tg.url(path)).header("x-forwarded-for", ip)
}

fn limited_route(origin: &Origin, limits: &str, route_extra: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [{}]\n\n{limits}\n\n\
         [[routes]]\nname = \"api\"\npath_prefix = \"/\"\nupstream = \"app\"\n{route_extra}\n",
        origin.target()
    )
}

const PER_IP: &str = "[limits.per-ip]\nkey = \"client_ip\"\nrate = 1\nper = \"1m\"\nburst = 3\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_limit_gets_429_and_others_do_not() {
    let origin = Origin::start("o").await;
    let body = limited_route(&origin, PER_IP, "limits = [\"per-ip\"]");
    let tg = Tollgate::start_with_server(&body, TRUSTED).await;

    for left in [2, 1, 0] {
        let r = send(from(&tg, "/", "198.51.100.1")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-policy"), "\"per-ip\";q=3;w=180");
        assert!(
            r.header("ratelimit")
                .starts_with(&format!("\"per-ip\";r={left};t=")),
            "{}",
            r.header("ratelimit")
        );
    }
    let refused = send(from(&tg, "/", "198.51.100.1")).await;
    assert_problem(&refused, 429);
    let retry: u64 = refused
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(
        (59..=60).contains(&retry),
        "one token per minute: retry in {retry} s"
    );
    assert!(
        refused.header("ratelimit").starts_with("\"per-ip\";r=0;t="),
        "{}",
        refused.header("ratelimit")
    );
    assert_eq!(refused.header("ratelimit-policy"), "\"per-ip\";q=3;w=180");

    let other = send(from(&tg, "/", "198.51.100.2")).await;
    assert_eq!(other.status, 200, "another client is unaffected");
    assert_eq!(origin.count(), 4);
    let metrics = get(&tg.admin_url("/metrics")).await.body;
    assert!(
        metrics.contains(
            "tollgate_ratelimit_decisions_total{outcome=\"limited\",policy=\"per-ip\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "tollgate_ratelimit_decisions_total{outcome=\"admitted\",policy=\"per-ip\"} 4"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_takes_nothing_from_the_other_limits() {
    let origin = Origin::start("o").await;
    let limits = format!(
        "{PER_IP}\n[limits.whole-route]\nkey = \"route\"\nrate = 1\nper = \"1m\"\nburst = 10\n"
    );
    let body = limited_route(&origin, &limits, "limits = [\"whole-route\", \"per-ip\"]");
    let tg = Tollgate::start_with_server(&body, TRUSTED).await;
    let remaining = |r: &Reply| {
        r.header("ratelimit")
            .split(", ")
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    for _ in 0..3 {
        assert_eq!(send(from(&tg, "/", "203.0.113.1")).await.status, 200);
    }
    for _ in 0..4 {
        assert_eq!(
            send(from(&tg, "/", "203.0.113.1")).await.status,
            429,
            "per-ip refuses"
        );
    }
    // The route-wide bucket paid for 3 requests only: the 4 refused ones were refunded.
    let r = send(from(&tg, "/", "203.0.113.2")).await;
    assert_eq!(r.status, 200);
    assert!(
        remaining(&r)[0].starts_with("\"whole-route\";r=6;"),
        "{:?}",
        remaining(&r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_keyed_limits_follow_the_authenticated_principal() {
    let origin = Origin::start("o").await;
    let digest = |k: &str| tollgate::auth::hash_key(k);
    let limits = format!(
        "[auth.keys]\nkind = \"api_key\"\nconsumers = [{{ id = \"acme\", key_sha256 = \"{}\" }}, {{ id = \"globex\", key_sha256 = \"{}\" }}]\n\n\
         [limits.per-consumer]\nkey = \"consumer\"\nrate = 1\nper = \"1m\"\nburst = 1\n",
        digest("acme-key"),
        digest("globex-key")
    );
    let body = limited_route(
        &origin,
        &limits,
        "auth = [\"keys\"]\nlimits = [\"per-consumer\"]",
    );
    let tg = Tollgate::start(&body).await;
    let with_key = |k: &'static str| send(client().get(tg.url("/")).header("x-api-key", k));
    assert_eq!(with_key("acme-key").await.status, 200);
    assert_eq!(
        with_key("acme-key").await.status,
        429,
        "same consumer, same client IP"
    );
    assert_eq!(
        with_key("globex-key").await.status,
        200,
        "another consumer from the same IP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_survive_a_reload_unless_their_policy_changes() {
    let origin = Origin::start("o").await;
    let body = limited_route(&origin, PER_IP, "limits = [\"per-ip\"]");
    let tg = Tollgate::start_with_server(&body, TRUSTED).await;
    for _ in 0..3 {
        assert_eq!(send(from(&tg, "/", "192.0.2.7")).await.status, 200);
    }
    let unrelated = format!("{body}\n[[routes]]\nname = \"extra\"\npath_prefix = \"/extra\"\nrespond = {{ status = 200 }}\n");
    assert!(tg.reload(&unrelated).await, "{}", tg.log());
    assert_eq!(
        send(from(&tg, "/", "192.0.2.7")).await.status,
        429,
        "the bucket was reset by an unrelated reload"
    );
    // max_keys bounds memory; it does not change what a bucket means.
    let bounded = unrelated.replace("burst = 3", "burst = 3\nmax_keys = 5000");
    assert!(tg.reload(&bounded).await, "{}", tg.log());
    assert_eq!(
        send(from(&tg, "/", "192.0.2.7")).await.status,
        429,
        "changing max_keys reset the bucket"
    );
    assert!(
        tg.reload(&bounded.replace("burst = 3", "burst = 4")).await,
        "{}",
        tg.log()
    );
    assert_eq!(
        send(from(&tg, "/", "192.0.2.7")).await.status,
        200,
        "a changed policy starts fresh buckets"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_in_flight_answers_503_per_route_and_per_upstream() {
    let (o1, o2) = (Origin::start("one").await, Origin::start("two").await);
    let body = format!(
        "[upstreams.busy]\ntargets = [{}]\nmax_in_flight = 1\n\n[upstreams.other]\ntargets = [{}]\n\n\
         [[routes]]\nname = \"by-upstream\"\npath_prefix = \"/u\"\nstrip_prefix = true\nupstream = \"busy\"\n\n\
         [[routes]]\nname = \"by-route\"\npath_prefix = \"/r\"\nstrip_prefix = true\nupstream = \"other\"\nmax_in_flight = 1\n",
        o1.target(),
        o2.target()
    );
    let tg = Tollgate::start(&body).await;
    for (path, origin) in [("/u", &o1), ("/r", &o2)] {
        let slow_url = tg.url(&format!("{path}/slow?ms=1500"));
        let slow = tokio::spawn(async move { get(&slow_url).await });
        let started = eventually(Duration::from_secs(5), || async { origin.count() == 1 }).await;
        assert!(started, "{path}: the slow request never arrived");
        assert_problem(&get(&tg.url(path)).await, 503);
        assert_eq!(slow.await.expect("slow").status, 200);
        assert_eq!(
            get(&tg.url(path)).await.status,
            200,
            "{path}: the slot is free again"
        );
    }
}
