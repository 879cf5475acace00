//! Automatic bans: strikes from final statuses ban a client IP (before routing, on
//! every route) or a consumer (after authentication); bans end, can be lifted on the
//! admin listener, survive a reload that leaves the jail alone, and are shared by two
//! instances through a real Redis. A trusted proxy is never banned.

use std::time::Duration;

use crate::support::redis::RedisServer;
use crate::support::{assert_problem, client, eventually, get, send, Origin, Tollgate};

const KEY: &str = "jail-test-key";

fn config(origin: &Origin, jail: &str, extra: &str) -> String {
    format!(
        r#"{extra}
[upstreams.app]
targets = [{target}]

[auth.keys]
kind = "api_key"
consumers = [{{ id = "acme", key_sha256 = "{digest}", scopes = ["read"] }}]

[jails.auth-abuse]
{jail}

[jails.scope-abuse]
key = "consumer"
statuses = [403]
max_strikes = 2
window = "1m"
ban = "1h"

[[routes]]
name = "login"
path_prefix = "/login"
upstream = "app"
auth = ["keys"]
jails = ["auth-abuse"]

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"
auth = ["keys"]
require_scopes = ["admin"]
jails = ["scope-abuse"]

[[routes]]
name = "public"
path_prefix = "/"
upstream = "app"
"#,
        target = origin.target(),
        digest = tollgate::auth::hash_key(KEY),
    )
}

const LOCAL: &str =
    "key = \"client_ip\"\nstatuses = [401]\nmax_strikes = 3\nwindow = \"1m\"\nban = \"1h\"";

async fn as_client(
    tg: &Tollgate,
    ip: &str,
    path: &str,
    key: Option<&str>,
) -> crate::support::Reply {
    let mut req = client().get(tg.url(path)).header("x-forwarded-for", ip);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    send(req).await
}

/// The first answer with `status` to `ip`'s request, or the last answer after 5 s.
/// Strikes are counted when a request is logged, just after its response went out,
/// so the request after the last strike can be read before the ban is in force.
async fn once_refused(
    tg: &Tollgate,
    ip: &str,
    path: &str,
    key: Option<&str>,
    status: u16,
) -> crate::support::Reply {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = as_client(tg, ip, path, key).await;
        if reply.status == status || std::time::Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_ban_a_client_everywhere_until_lifted() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_with_server(
        &config(&origin, LOCAL, ""),
        "trusted_proxies = [\"127.0.0.0/8\"]",
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            as_client(&tg, "192.0.2.7", "/login", Some("wrong"))
                .await
                .status,
            401
        );
    }
    for (path, key) in [("/login", Some(KEY)), ("/anything", None)] {
        let banned = once_refused(&tg, "192.0.2.7", path, key, 403).await;
        assert_problem(&banned, 403);
        assert!(banned
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 3500));
    }
    assert_eq!(
        as_client(&tg, "192.0.2.8", "/login", Some(KEY))
            .await
            .status,
        200,
        "others are free"
    );
    // The trusted proxy itself (no X-Forwarded-For) is never the key.
    for _ in 0..5 {
        assert_eq!(send(client().get(tg.url("/login"))).await.status, 401);
    }
    assert_eq!(send(client().get(tg.url("/x"))).await.status, 200);

    let listed = get(&tg.admin_url("/jails")).await.json();
    let bans = listed["auth-abuse"].as_array().expect("bans");
    assert_eq!(bans.len(), 1, "{listed}");
    assert_eq!(bans[0]["key"], "192.0.2.7");
    let gauge = eventually(Duration::from_secs(5), || async {
        get(&tg.admin_url("/metrics"))
            .await
            .body
            .contains("tollgate_jail_active_bans{jail=\"auth-abuse\"} 1")
    })
    .await;
    assert!(gauge, "{}", get(&tg.admin_url("/metrics")).await.body);
    assert!(get(&tg.admin_url("/metrics"))
        .await
        .body
        .contains("tollgate_jail_bans_total{jail=\"auth-abuse\"} 1"));

    let lifted = send(client().delete(tg.admin_url("/jails/auth-abuse/192.0.2.7"))).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    let again = send(client().delete(tg.admin_url("/jails/auth-abuse/192.0.2.7"))).await;
    assert_eq!(again.status, 404);
    assert_eq!(
        as_client(&tg, "192.0.2.7", "/login", Some(KEY))
            .await
            .status,
        200
    );

    // Log lines are written by a background thread: wait for the unban's.
    let logged = eventually(Duration::from_secs(5), || async {
        tg.security_log_text().contains("jail_unban")
    })
    .await;
    assert!(logged, "{}", tg.security_log_text());
    let events: Vec<serde_json::Value> = tg
        .security_log(1)
        .await
        .into_iter()
        .filter(|l| l["event"].as_str().is_some_and(|e| e.starts_with("jail_")))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (&events[0]["event"], &events[0]["key"], &events[0]["jail"]),
        (
            &"jail_ban".into(),
            &"192.0.2.7".into(),
            &"auth-abuse".into()
        )
    );
    assert_eq!(
        (&events[1]["event"], &events[1]["reason"]),
        (&"jail_unban".into(), &"admin".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumers_are_banned_after_authentication_and_bans_end() {
    let origin = Origin::start("o").await;
    let jail =
        "key = \"client_ip\"\nstatuses = [401]\nmax_strikes = 2\nwindow = \"1m\"\nban = \"1500ms\"";
    let tg = Tollgate::start_with_server(
        &config(&origin, jail, ""),
        "trusted_proxies = [\"127.0.0.0/8\"]",
    )
    .await;
    for ip in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(
            as_client(&tg, ip, "/admin", Some(KEY)).await.status,
            403,
            "missing scope"
        );
    }
    let banned = once_refused(&tg, "192.0.2.3", "/login", Some(KEY), 403).await;
    assert_problem(&banned, 403);
    assert!(banned.body.contains("scope-abuse"), "{}", banned.body);
    assert_eq!(
        as_client(&tg, "192.0.2.3", "/x", None).await.status,
        200,
        "anonymous requests are not the consumer"
    );

    for _ in 0..2 {
        as_client(&tg, "192.0.2.9", "/login", Some("wrong")).await;
    }
    assert_problem(&once_refused(&tg, "192.0.2.9", "/x", None, 403).await, 403);
    let ended = eventually(Duration::from_secs(5), || async {
        as_client(&tg, "192.0.2.9", "/x", None).await.status == 200
    })
    .await;
    assert!(ended, "the 1.5 s ban never ended");
    let unbanned = eventually(Duration::from_secs(5), || async {
        tg.security_log_text().contains("\"reason\":\"expired\"")
    })
    .await;
    assert!(unbanned, "{}", tg.security_log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn bans_survive_a_reload_that_keeps_the_jails_identity() {
    let origin = Origin::start("o").await;
    let server = "trusted_proxies = [\"127.0.0.0/8\"]";
    let tg = Tollgate::start_with_server(&config(&origin, LOCAL, ""), server).await;
    for _ in 0..3 {
        as_client(&tg, "192.0.2.7", "/login", Some("wrong")).await;
    }
    assert_problem(&once_refused(&tg, "192.0.2.7", "/x", None, 403).await, 403);
    let other_change = format!(
        "{}\n[upstreams.spare]\ntargets = [{}]\n",
        config(&origin, LOCAL, ""),
        origin.target()
    );
    assert!(tg.reload(&other_change).await, "{}", tg.log());
    assert_problem(&as_client(&tg, "192.0.2.7", "/x", None).await, 403);
    let new_rules = LOCAL.replace("max_strikes = 3", "max_strikes = 4");
    let changed_rules = config(&origin, &new_rules, "");
    assert!(tg.reload(&changed_rules).await, "{}", tg.log());
    assert_problem(&as_client(&tg, "192.0.2.7", "/x", None).await, 403);
    // Another kind of key is another jail: it starts empty (and so does the way back).
    let consumer = new_rules.replace("client_ip", "consumer");
    assert!(
        tg.reload(&config(&origin, &consumer, "")).await,
        "{}",
        tg.log()
    );
    assert!(tg.reload(&changed_rules).await, "{}", tg.log());
    assert_eq!(
        as_client(&tg, "192.0.2.7", "/x", None).await.status,
        200,
        "a jail with another identity starts empty"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_strikes_and_bans_through_redis() {
    let redis = RedisServer::start().await;
    let origin = Origin::start("o").await;
    let jail = format!("{LOCAL}\nstore = \"redis\"");
    // A generous timeout: this test is about sharing, not about a slow Redis (under a
    // loaded machine the default 50 ms can pass, and the strike is then counted locally).
    let redis_section = format!("[redis]\nurl = \"{}\"\ntimeout = \"2s\"\n", redis.url());
    let server = "trusted_proxies = [\"127.0.0.0/8\"]";
    let a = Tollgate::start_with_server(&config(&origin, &jail, &redis_section), server).await;
    let b = Tollgate::start_with_server(&config(&origin, &jail, &redis_section), server).await;
    assert_eq!(
        as_client(&a, "198.51.100.4", "/login", Some("wrong"))
            .await
            .status,
        401
    );
    assert_eq!(
        as_client(&b, "198.51.100.4", "/login", Some("wrong"))
            .await
            .status,
        401
    );
    assert_eq!(
        as_client(&a, "198.51.100.4", "/login", Some("wrong"))
            .await
            .status,
        401
    );
    assert_problem(
        &once_refused(&a, "198.51.100.4", "/x", None, 403).await,
        403,
    );
    let shared = eventually(Duration::from_secs(5), || async {
        as_client(&b, "198.51.100.4", "/x", None).await.status == 403
    })
    .await;
    assert!(shared, "instance b never learned of the ban:\n{}", b.log());
    assert_eq!(
        redis.keys("tollgate:jail:auth-abuse:*"),
        ["tollgate:jail:auth-abuse:bans"]
    );

    let lifted = send(client().delete(a.admin_url("/jails/auth-abuse/198.51.100.4"))).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    let free = eventually(Duration::from_secs(5), || async {
        as_client(&b, "198.51.100.4", "/x", None).await.status == 200
    })
    .await;
    assert!(free, "the lift never reached instance b");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_is_met_as_on_store_error_says() {
    let mut redis = RedisServer::start().await;
    let origin = Origin::start("o").await;
    let redis_section = format!("[redis]\nurl = \"{}\"\ntimeout = \"100ms\"\n", redis.url());
    let server = "trusted_proxies = [\"127.0.0.0/8\"]";
    let start = |on_error: &'static str| {
        let jail = format!("{LOCAL}\nstore = \"redis\"\non_store_error = \"{on_error}\"");
        let body = config(&origin, &jail, &redis_section);
        async move { Tollgate::start_with_server(&body, server).await }
    };
    let (closed, open) = (start("deny").await, start("allow").await);
    assert_eq!(
        as_client(&closed, "192.0.2.5", "/x", None).await.status,
        200
    );
    redis.kill();
    let refused = eventually(Duration::from_secs(5), || async {
        as_client(&closed, "192.0.2.5", "/x", None).await.status == 503
    })
    .await;
    assert!(
        refused,
        "fail-closed: 503 while Redis is gone\n{}",
        closed.log()
    );
    assert_problem(&as_client(&closed, "192.0.2.5", "/x", None).await, 503);
    for _ in 0..3 {
        assert_eq!(
            as_client(&open, "192.0.2.6", "/login", Some("wrong"))
                .await
                .status,
            401
        );
    }
    assert_problem(
        &once_refused(&open, "192.0.2.6", "/x", None, 403).await,
        403,
    );
    assert_eq!(
        as_client(&open, "192.0.2.7", "/x", None).await.status,
        200,
        "fail-open: strikes counted locally meanwhile"
    );
}
