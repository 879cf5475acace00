//! Upstream targets named by DNS name, resolved through a real DNS server on loopback
//! (`[server] resolver`): every address is a target, changes of the records join or
//! remove targets without a reload, a name that stops resolving keeps its last good
//! addresses, and a name that does not resolve is a config error unless allowed.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::support::dns::DnsServer;
use crate::support::tollgate::cli;
use crate::support::{eventually, free_port, get, metric, spread, Origin, Tollgate};

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Two origins on the same port, at 127.0.0.2 (`a`) and 127.0.0.3 (`b`).
async fn two_origins() -> (Origin, Origin) {
    let a = Origin::start_at("a", "127.0.0.2:0").await;
    let b = Origin::start_at("b", &format!("127.0.0.3:{}", a.addr.port())).await;
    (a, b)
}

fn config(port: u16, extra: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"app.test:{port}\"]\n{extra}\n\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_upstream_follows_its_records_without_a_reload() {
    let dns = DnsServer::start().await;
    dns.set("app.test", &[A]);
    let (a, _b) = two_origins().await;
    let tg = Tollgate::start_with_server(
        &config(a.addr.port(), ""),
        &format!("resolver = [\"{}\"]", dns.addr),
    )
    .await;
    let url = tg.url("/x");
    assert_eq!(get(&url).await.header("x-origin"), "a");

    // The record moves (TTL 1 s): requests follow, no reload.
    dns.set("app.test", &[B]);
    let moved = eventually(Duration::from_secs(10), || async {
        get(&url).await.header("x-origin") == "b"
    })
    .await;
    assert!(moved, "still on the old address:\n{}", tg.log());
    // Two addresses: two targets.
    dns.set("app.test", &[A, B]);
    let both = eventually(Duration::from_secs(10), || async {
        spread(&url, 6).await.len() == 2
    })
    .await;
    assert!(both, "not balanced over both addresses:\n{}", tg.log());

    // The server fails: the last good addresses stay, the failure is counted.
    let metrics_url = tg.admin_url("/metrics");
    let errors = "tollgate_dns_resolutions_total{outcome=\"error\",upstream=\"app\"}";
    dns.fail(true);
    let counted = eventually(Duration::from_secs(10), || async {
        metric(&get(&metrics_url).await.body, errors) >= 1
    })
    .await;
    assert!(counted, "{}", get(&metrics_url).await.body);
    assert_eq!(
        spread(&url, 6).await.len(),
        2,
        "the last good addresses were dropped"
    );
    let metrics = get(&metrics_url).await.body;
    let ok = "tollgate_dns_resolutions_total{outcome=\"ok\",upstream=\"app\"}";
    assert!(metric(&metrics, ok) >= 2, "{metrics}");
    assert!(
        tg.log().contains("its last good addresses stay"),
        "{}",
        tg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_does_not_resolve_is_an_error_unless_allowed() {
    let dns = DnsServer::start().await;
    let (a, _b) = two_origins().await;
    let port = a.addr.port();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |extra: &str| {
        let path = dir.path().join("named.toml");
        let text = format!(
            "[server]\nresolver = [\"{}\"]\n\n[listeners.main]\naddr = \"127.0.0.1:{}\"\n\n{}",
            dns.addr,
            free_port(),
            config(port, extra)
        );
        std::fs::write(&path, text).expect("write");
        path
    };
    let out = tokio::task::block_in_place(|| cli(&["check", "-c"], Some(&write(""))));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("upstreams.app") && stderr.contains("cannot resolve \"app.test\""),
        "{stderr}"
    );
    assert!(stderr.contains("allow_unresolved"), "{stderr}");
    let out = tokio::task::block_in_place(|| {
        cli(&["check", "-c"], Some(&write("allow_unresolved = true")))
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Started without it, the name joins once it resolves.
    let tg = Tollgate::start_with_server(
        &config(port, "allow_unresolved = true"),
        &format!("resolver = [\"{}\"]", dns.addr),
    )
    .await;
    assert_eq!(get(&tg.url("/x")).await.status, 503);
    dns.set("app.test", &[A]);
    let joined = eventually(Duration::from_secs(10), || async {
        get(&tg.url("/x")).await.status == 200
    })
    .await;
    assert!(joined, "the name never joined:\n{}", tg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_that_stay_keep_their_health_across_a_re_resolution() {
    let dns = DnsServer::start().await;
    dns.set("app.test", &[A, B]);
    let (a, b) = two_origins().await;
    let c = Origin::start_at("c", &format!("127.0.0.4:{}", a.addr.port())).await;
    b.fail(true);
    let tg = Tollgate::start_with_server(
        &config(
            a.addr.port(),
            "health = { kind = \"http\", path = \"/healthz\", interval = \"5s\", unhealthy_threshold = 1 }",
        ),
        &format!("resolver = [\"{}\"]", dns.addr),
    )
    .await;
    let upstreams = tg.admin_url("/upstreams");
    let b_addr = b.addr.to_string();
    let b_down = eventually(Duration::from_secs(10), || async {
        let status = get(&upstreams).await.json();
        status["app"]["targets"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["addr"] == b_addr && t["healthy"] == false)
        })
    })
    .await;
    assert!(
        b_down,
        "b never checked unhealthy: {}",
        get(&upstreams).await.body
    );

    // A third address joins; b stays unhealthy (its next check is seconds away).
    dns.set("app.test", &[A, B, Ipv4Addr::new(127, 0, 0, 4)]);
    let url = tg.url("/x");
    let joined = eventually(Duration::from_secs(10), || async {
        get(&url).await.header("x-origin") == "c"
    })
    .await;
    assert!(joined, "c never joined:\n{}", tg.log());
    let seen = spread(&url, 8).await;
    assert!(
        !seen.contains_key("b"),
        "b got requests after the update: {seen:?}"
    );
    drop((a, c));
}
