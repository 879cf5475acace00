//! The admin listener: its bearer token (digest compared in constant time), `POST
//! /reload` (200 with what needs a restart, or 422 with every error and nothing
//! changed), the reload metrics, and `check` refusing an exposed admin listener
//! without a token.

use crate::support::{client, free_port, get, send, Tollgate};

const TOKEN: &str = "admin-test-token";
const HEALTH: &str = "[[routes]]\nname = \"health\"\npath_prefix = \"/healthz\"\nrespond = { status = 200, body = \"v1\" }\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_admin_endpoint() {
    let tg = Tollgate::start_with_admin(HEALTH, "", Some(TOKEN)).await;
    let url = |path: &str| tg.admin_url(path);
    let c = client();
    for (method, path) in [("GET", "/metrics"), ("GET", "/jails"), ("POST", "/reload")] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let bare = send(c.request(method.clone(), url(path))).await;
        assert_eq!(bare.status, 401, "{path}");
        assert!(
            bare.header("www-authenticate").starts_with("Bearer"),
            "{path}"
        );
        let wrong = send(c.request(method, url(path)).bearer_auth("admin-test-tokeN")).await;
        assert_eq!(wrong.status, 401, "{path}");
    }
    let ok = send(c.get(url("/metrics")).bearer_auth(TOKEN)).await;
    assert_eq!(ok.status, 200);
    assert!(ok
        .body
        .contains("tollgate_config_last_reload_success_timestamp_seconds"));
    // The harness's own admin requests carry the token.
    assert!(tg.reload(HEALTH).await, "{}", tg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn post_reload_applies_a_good_file_and_lists_every_error_of_a_bad_one() {
    let tg = Tollgate::start(HEALTH).await;
    let reload = || send(client().post(tg.admin_url("/reload")));
    let v2 = format!("{HEALTH}[[routes]]\nname = \"new\"\npath_prefix = \"/new\"\nrespond = {{ status = 200, body = \"new\" }}\n");
    tg.write_config(&v2);
    let applied = reload().await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(applied.json()["status"], "reloaded");
    assert_eq!(get(&tg.url("/new")).await.body, "new");

    let broken = "[[routes]]\nname = \"new\"\nupstream = \"nowhere\"\n\n[[routes]]\nname = \"x\"\npath_prefix = \"nope\"\nrespond = { status = 200 }\n";
    tg.write_config(broken);
    let refused = reload().await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    let body = refused.json();
    let places: Vec<String> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{} {}",
                e["line"],
                e["column"],
                e["path"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert!(
        places.iter().any(|p| p.ends_with("routes[0].upstream")),
        "{places:?}"
    );
    assert!(
        places.iter().any(|p| p.ends_with("routes[1].path_prefix")),
        "{places:?}"
    );
    assert_eq!(get(&tg.url("/new")).await.body, "new", "nothing changed");
    assert_eq!(get(&tg.url("/healthz")).await.body, "v1");

    let metrics = get(&tg.admin_url("/metrics")).await.body;
    for line in [
        "tollgate_config_reloads_total{result=\"success\"} 1",
        "tollgate_config_reloads_total{result=\"failure\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstreams_show_each_targets_health_and_last_check() {
    let live = crate::support::Origin::start("live").await;
    let dead = format!("127.0.0.1:{}", free_port());
    let body = format!(
        "[upstreams.pool]\ntargets = [{}, \"{dead}\"]\nhealth = {{ kind = \"http\", path = \"/healthz\", interval = \"100ms\", unhealthy_threshold = 1 }}\n\n[[routes]]\nname = \"r\"\nupstream = \"pool\"\n",
        live.target()
    );
    let tg = Tollgate::start(&body).await;
    let url = tg.admin_url("/upstreams");
    let settled = crate::support::eventually(std::time::Duration::from_secs(10), || async {
        let pool = &get(&url).await.json()["pool"];
        pool["targets"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["last_check"].is_object()))
    })
    .await;
    let pool = get(&url).await.json()["pool"].clone();
    assert!(settled, "{pool}");
    assert_eq!(pool["balance"], "round_robin");
    let by_addr = |addr: &str| {
        pool["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["addr"] == addr).cloned())
            .unwrap_or_else(|| panic!("{addr} missing in {pool}"))
    };
    let up = by_addr(&live.addr.to_string());
    assert_eq!(
        (&up["healthy"], &up["last_check"]["ok"]),
        (&true.into(), &true.into())
    );
    let down = by_addr(&dead);
    assert_eq!(
        (&down["healthy"], &down["last_check"]["ok"]),
        (&false.into(), &false.into())
    );
    assert!(down["last_check"]["error"].is_string(), "{down}");
    assert_eq!(up["in_flight"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_shows_the_running_file_without_its_secrets() {
    let body = format!(
        "[redis]\nurl = \"redis://app:hunter2@127.0.0.1:1/0\"\n\n[auth.keys]\nkind = \"api_key\"\nconsumers = [{{ id = \"acme\", key_sha256 = \"{}\" }}]\n\n{HEALTH}",
        tollgate::auth::hash_key("consumer-key")
    );
    let tg = Tollgate::start_with_admin(&body, "", Some(TOKEN)).await;
    let fetch = || send(client().get(tg.admin_url("/config")).bearer_auth(TOKEN));
    let shown = fetch().await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    for secret in [
        "hunter2",
        &tollgate::auth::hash_key("consumer-key"),
        &tollgate::auth::hash_key(TOKEN),
    ] {
        assert!(
            !shown.body.contains(secret),
            "{secret} shown in {}",
            shown.body
        );
    }
    let json = shown.json();
    assert_eq!(
        json["config"]["redis"]["url"],
        "redis://app:<redacted>@127.0.0.1:1/0"
    );
    assert_eq!(json["config"]["auth"]["keys"]["consumers"][0]["id"], "acme");
    let text = std::fs::read(tg.config_path()).expect("config");
    use sha2::Digest;
    assert_eq!(json["sha256"], hex::encode(sha2::Sha256::digest(&text)));
    assert!(json["loaded_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(json["source"], serde_json::json!({ "kind": "file" }));

    tg.write_config(&format!("{body}\n# changed\n"));
    let reloaded = send(client().post(tg.admin_url("/reload")).bearer_auth(TOKEN)).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert_ne!(
        fetch().await.json()["sha256"],
        json["sha256"],
        "the reloaded file's digest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_once_every_listener_accepts() {
    let second = free_port();
    let body = format!("[listeners.second]\naddr = \"127.0.0.1:{second}\"\n\n{HEALTH}");
    let tg = Tollgate::start(&body).await;
    let ready = crate::support::eventually(std::time::Duration::from_secs(5), || async {
        get(&tg.admin_url("/readyz")).await.status == 200
    })
    .await;
    assert!(ready, "never ready");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", second)).is_ok(),
        "ready means listening"
    );
    assert_eq!(get(&tg.admin_url("/healthz")).await.body, "ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_only_requests_for_its_own_address_are_answered() {
    // A page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) sends its
    // own name as Host.
    let tg = Tollgate::start(HEALTH).await;
    for (host, status) in [
        ("evil.example", 421),
        ("evil.example:9900", 421),
        ("localhost", 200),
        ("LOCALHOST:9900", 200),
        ("127.0.0.1:9900", 200),
        ("[::1]:9900", 200),
    ] {
        for path in ["/", "/stats", "/config"] {
            let resp = send(client().get(tg.admin_url(path)).header("host", host)).await;
            assert_eq!(resp.status, status, "{host} {path}: {}", resp.body);
        }
    }
    let rebound = send(
        client()
            .post(tg.admin_url("/reload"))
            .header("host", "evil.example"),
    )
    .await;
    assert_eq!(rebound.status, 421);
}
