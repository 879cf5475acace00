//! IP allow and deny lists against the real binary: a route's allow_from, its
//! deny_from winning over it, the server-wide deny_from before routing, clients named
//! by a trusted proxy, IPv6, the security log and metrics, and a reload that changes
//! a list file. Clients are told apart by X-Forwarded-For from a trusted loopback.

use std::time::Duration;

use crate::support::{
    assert_problem, client, eventually, free_port, get, raw_request, send, Origin, Reply, Tollgate,
};

const TRUSTED: &str = "trusted_proxies = [\"127.0.0.0/8\"]\ndeny_from = [\"banned\"]";

fn config(origin: &Origin) -> String {
    format!(
        r#"
[ip_lists.office]
cidrs = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]

[ip_lists.blocked]
file = "blocked.txt"

[ip_lists.banned]
cidrs = ["198.51.100.0/24"]

[upstreams.app]
targets = [{target}]

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "app"
allow_from = ["office"]
deny_from = ["blocked"]

[[routes]]
name = "public"
path_prefix = "/pub"
upstream = "app"
"#,
        target = origin.target()
    )
}

async fn start(origin: &Origin) -> Tollgate {
    Tollgate::start_full(&config(origin), TRUSTED, &[], |dir| {
        std::fs::write(
            dir.join("blocked.txt"),
            "# blocked clients\n10.6.6.6\n2001:db8::bad  # a bad neighbour\n",
        )
        .expect("list file");
    })
    .await
}

async fn from(tg: &Tollgate, path: &str, xff: &str) -> Reply {
    send(client().get(tg.url(path)).header("x-forwarded-for", xff)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_and_deny_lists_decide_by_client_address() {
    let origin = Origin::start("o").await;
    let tg = start(&origin).await;
    let cases: [(&str, &str, u16); 13] = [
        ("/admin", "10.1.2.3", 200),
        ("/admin", "192.0.2.7", 200),
        ("/admin", "192.0.2.8", 403),
        ("/pub", "192.0.2.8", 200),
        ("/admin", "10.6.6.6", 403),
        ("/pub", "10.6.6.6", 200),
        ("/admin", "2001:db8::1", 200),
        ("/admin", "2001:db8::bad", 403),
        ("/admin", "2001:db9::1", 403),
        ("/pub", "198.51.100.9", 403),
        ("/nowhere", "198.51.100.9", 403),
        ("/nowhere", "203.0.113.1", 404),
        // Behind the trusted proxy, the right-most untrusted entry is the client.
        ("/admin", "10.1.2.3, 192.0.2.99", 403),
    ];
    for (path, client, status) in cases {
        let r = from(&tg, path, client).await;
        assert_eq!(r.status, status, "{path} from {client}: {}", r.body);
        if status == 403 {
            assert_problem(&r, 403);
        }
    }
    assert_eq!(origin.count(), 5, "only admitted requests reach the origin");

    let denials: Vec<_> = tg
        .security_log(7)
        .await
        .into_iter()
        .filter(|l| l["event"] == "ip_denied")
        .collect();
    assert_eq!(denials.len(), 7, "{denials:?}");
    assert_eq!(denials[0]["client_ip"], "192.0.2.8");
    assert_eq!(
        (
            &denials[0]["route"],
            &denials[0]["list"],
            &denials[0]["rule"]
        ),
        (&"admin".into(), &"office".into(), &"allow_from".into())
    );
    assert_eq!(
        (&denials[1]["list"], &denials[1]["rule"]),
        (&"blocked".into(), &"deny_from".into())
    );
    assert_eq!(
        denials[4]["route"],
        serde_json::Value::Null,
        "before routing"
    );

    let metrics = get(&tg.admin_url("/metrics")).await.body;
    for line in [
        "tollgate_ip_denied_total{list=\"blocked\",route=\"admin\"} 2",
        "tollgate_ip_denied_total{list=\"office\",route=\"admin\"} 3",
        "tollgate_ip_denied_total{list=\"banned\",route=\"\"} 2",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cannot_hide_behind_extra_forwarded_lines_or_bytes() {
    let origin = Origin::start("o").await;
    let tg = start(&origin).await;
    let status = |request: &[u8]| {
        let reply = raw_request(tg.port, request);
        reply.get(9..12).unwrap_or("").to_owned()
    };
    // The proxy added its own line: the client's line on its left counts for nothing.
    let two_lines = b"GET /admin HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\n\
        X-Forwarded-For: 192.0.2.99\r\nConnection: close\r\n\r\n";
    assert_eq!(status(two_lines), "403");
    // Bytes that are no text on the left do not make the proxy the client.
    let garbage = b"GET /pub HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: \xff\xfe, 198.51.100.9\r\n\
        Connection: close\r\n\r\n";
    assert_eq!(status(garbage), "403");
    assert_eq!(origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_wide_list_holds_on_a_listener_a_reload_renamed() {
    let origin = Origin::start("o").await;
    let extra = free_port();
    let listener = |name: &str| format!("[listeners.{name}]\naddr = \"127.0.0.1:{extra}\"\n");
    let body = config(&origin);
    let tg = Tollgate::start_full(
        &format!("{}{body}", listener("extra")),
        TRUSTED,
        &[],
        |dir| std::fs::write(dir.join("blocked.txt"), "").expect("list file"),
    )
    .await;
    let banned = || {
        client()
            .get(format!("http://127.0.0.1:{extra}/pub"))
            .header("x-forwarded-for", "198.51.100.9")
    };
    assert_eq!(send(banned()).await.status, 403);
    assert!(
        tg.reload(&format!("{}{body}", listener("renamed"))).await,
        "{}",
        tg.log()
    );
    assert!(
        tg.log().contains("listeners.extra was removed"),
        "{}",
        tg.log()
    );
    // The old socket keeps listening until a restart, under the server-wide policies.
    assert_eq!(send(banned()).await.status, 403);
    assert_eq!(origin.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_trusted_proxy_the_peer_is_the_client() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start_full(&config(&origin), "deny_from = [\"banned\"]", &[], |dir| {
        std::fs::write(dir.join("blocked.txt"), "").expect("list file")
    })
    .await;
    // 127.0.0.1 is not in office, whatever X-Forwarded-For claims.
    assert_eq!(from(&tg, "/admin", "10.1.2.3").await.status, 403);
    assert_eq!(from(&tg, "/pub", "198.51.100.9").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reads_the_list_file_again() {
    let origin = Origin::start("o").await;
    let tg = start(&origin).await;
    assert_eq!(from(&tg, "/admin", "10.1.2.3").await.status, 200);
    std::fs::write(tg.path("blocked.txt"), "10.1.2.0/24\n").expect("list file");
    assert!(tg.reload(&config(&origin)).await, "{}", tg.log());
    assert_eq!(from(&tg, "/admin", "10.1.2.3").await.status, 403);
    assert_eq!(
        from(&tg, "/admin", "10.6.6.6").await.status,
        200,
        "no longer listed"
    );

    // A list file that stops parsing rejects the reload; the lists in use stay.
    std::fs::write(tg.path("blocked.txt"), "10.1.2.0/24\nnot-an-address\n").expect("list file");
    assert!(!tg.sighup().await, "a bad list file was applied");
    // The reload is counted just before its rejection is logged.
    let logged = eventually(Duration::from_secs(5), || async {
        tg.log().contains("ip_lists.blocked.file")
    })
    .await;
    assert!(logged, "{}", tg.log());
    assert_eq!(from(&tg, "/admin", "10.1.2.3").await.status, 403);
}
