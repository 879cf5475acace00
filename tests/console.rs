//! The console, driven by a real headless Chromium: the login form refuses a wrong
//! token and takes the right one; the page shows the traffic the test sent (routes,
//! refusals by reason adding up to the total, the refused client, its ban, the
//! deprecated route's caller, the upstream's health, the config's digest); the unban
//! button lifts the ban. `TOLLGATE_CONSOLE_SCREENSHOT=FILE` keeps a screenshot (the
//! README's).

use serde_json::json;

use crate::support::browser::Browser;
use crate::support::{client, refused_route, Origin, Tollgate};

const TOKEN: &str = "console-test-token";
const KEY: &str = "tg_console_consumer_key";
const ABUSER: &str = "198.51.100.7";

fn body(origin: &Origin) -> String {
    format!(
        "{}jails = [\"abuse\"]\n\n\
         [jails.abuse]\nkey = \"client_ip\"\nstatuses = [401]\nmax_strikes = 2\nwindow = \"1m\"\nban = \"10m\"\n\n\
         [auth.partners]\nkind = \"api_key\"\nconsumers = [{{ id = \"acme\", key_sha256 = \"{}\" }}]\n\n\
         [upstreams.app]\ntargets = [{}]\n\n\
         [[routes]]\nname = \"old\"\npath_prefix = \"/old\"\nauth = [\"partners\"]\n\
         deprecation = {{ since = \"2026-01-01T00:00:00Z\" }}\nrespond = {{ status = 200 }}\n\n\
         [[routes]]\nname = \"app\"\npath_prefix = \"/\"\nupstream = \"app\"\n",
        refused_route("/private"),
        tollgate::auth::hash_key(KEY),
        origin.target()
    )
}

/// Sends the traffic the page must show: 12 requests, 4 of them refused.
async fn traffic(tg: &Tollgate) {
    let c = client();
    let send = |path: &str, from: &str, key: Option<&str>| {
        let mut req = c.get(tg.url(path)).header("x-forwarded-for", from);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        async move { req.send().await.expect("request").status().as_u16() }
    };
    for _ in 0..6 {
        assert_eq!(send("/", "192.0.2.1", None).await, 200);
    }
    assert_eq!(send("/private", ABUSER, None).await, 401);
    assert_eq!(send("/private", ABUSER, None).await, 401);
    assert_eq!(send("/private", ABUSER, None).await, 403, "banned");
    assert_eq!(send("/a%2Fb", "203.0.113.9", None).await, 400);
    assert_eq!(send("/old", "192.0.2.1", Some(KEY)).await, 200);
    assert_eq!(send("/old", "192.0.2.1", Some(KEY)).await, 200);
}

/// The rows of table `id` as text, cell by cell.
async fn rows(browser: &mut Browser, id: &str) -> Vec<Vec<String>> {
    let script = format!(
        "[...document.querySelectorAll('#{id} tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))"
    );
    serde_json::from_value(browser.eval(&script).await).expect("rows")
}

async fn text(browser: &mut Browser, id: &str) -> String {
    let value = browser
        .eval(&format!("document.getElementById('{id}').textContent"))
        .await;
    value.as_str().unwrap_or_default().to_owned()
}

fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    let found = rows.iter().find(|r| r.first().is_some_and(|c| c == first));
    found.unwrap_or_else(|| panic!("no row {first:?} in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_logs_in_shows_the_traffic_and_lifts_a_ban() {
    let origin = Origin::start("app").await;
    let server = "trusted_proxies = [\"127.0.0.1/32\"]\n";
    let tg = Tollgate::start_with_token(&body(&origin), server, "", Some(TOKEN)).await;
    traffic(&tg).await;
    let mut browser = Browser::start().await;
    browser.goto(&tg.admin_url("/")).await;
    assert!(
        browser
            .until("!document.getElementById('login').hidden")
            .await
    );

    // A wrong token is refused, the right one opens the console.
    let log_in = |token: &str| {
        format!("document.getElementById('token').value = {}; document.getElementById('login-form').requestSubmit()", json!(token))
    };
    browser.eval(&log_in("not-the-token")).await;
    assert!(
        browser
            .until("!document.getElementById('login-error').hidden")
            .await
    );
    assert!(
        browser
            .until("document.getElementById('console').hidden")
            .await
    );
    browser.eval(&log_in(TOKEN)).await;
    let shown = "!document.getElementById('console').hidden && \
                 document.getElementById('requests').textContent === '12' && \
                 document.querySelectorAll('#bans .unban').length === 1";
    assert!(
        browser.until(shown).await,
        "{}",
        text(&mut browser, "error").await
    );
    let stored = browser
        .eval("sessionStorage.getItem('tollgate-admin-token')")
        .await;
    assert_eq!(stored, json!(TOKEN));
    assert_eq!(
        browser.eval("location.href.includes('token')").await,
        json!(false)
    );

    let routes = rows(&mut browser, "routes").await;
    let app = row(&routes, "app");
    assert_eq!(
        (app[2].as_str(), app[3].as_str()),
        ("6", "6"),
        "requests, 2xx: {routes:?}"
    );
    assert_eq!(row(&routes, "private")[5], "2", "4xx: {routes:?}");
    // The ban refuses before routing, like the encoded slash.
    assert_eq!(row(&routes, "(no route)")[5], "2");
    let refusals = rows(&mut browser, "refusals").await;
    let by_reason: Vec<(&str, u64)> = (refusals.iter())
        .map(|r| (r[0].as_str(), r[1].parse().expect("a count")))
        .collect();
    assert_eq!(by_reason, [("auth", 2), ("jail", 1), ("normalization", 1)]);
    let total: u64 = by_reason.iter().map(|(_, n)| n).sum();
    assert_eq!(
        text(&mut browser, "refusals-total").await,
        total.to_string()
    );
    assert_eq!(
        row(&rows(&mut browser, "refused-clients").await, ABUSER)[1],
        "3"
    );
    assert_eq!(row(&rows(&mut browser, "bans").await, "abuse")[1], ABUSER);
    assert_eq!(
        rows(&mut browser, "deprecated").await,
        [["old", "partners:acme", "2"]]
    );
    let upstreams = rows(&mut browser, "upstreams").await;
    assert_eq!(row(&upstreams, "app")[2], "up");
    let config = tg.admin_get("/config").await.json();
    assert_eq!(
        text(&mut browser, "config-sha256").await,
        config["sha256"].as_str().expect("sha256")
    );

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Ok(path) = std::env::var("TOLLGATE_CONSOLE_SCREENSHOT") {
        std::fs::write(path, &png).expect("write the screenshot");
    }

    // Unban: the ban is lifted and the client is judged again (401, not 403).
    browser
        .eval("document.querySelector('#bans .unban').click()")
        .await;
    assert!(
        browser
            .until("document.querySelector('#bans tr.empty') !== null")
            .await
    );
    assert_eq!(tg.admin_get("/jails").await.json(), json!({ "abuse": [] }));
    let again = client()
        .get(tg.url("/private"))
        .header("x-forwarded-for", ABUSER)
        .send()
        .await;
    assert_eq!(again.expect("request").status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_needs_no_token_but_its_data_does_and_only_its_own_code_runs() {
    let tg = Tollgate::start_with_admin("", "", Some(TOKEN)).await;
    let c = client();
    let page = c.get(tg.admin_url("/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.expect("html");
    assert!(html.contains("<script src=\"/console.js\" defer></script>"));
    assert!(!html.contains("<script>"), "no inline script");
    for path in ["/console.js", "/console.css"] {
        assert_eq!(
            c.get(tg.admin_url(path)).send().await.expect(path).status(),
            200
        );
    }
    let script = c
        .get(tg.admin_url("/console.js"))
        .send()
        .await
        .expect("js")
        .text()
        .await;
    assert!(
        !script.expect("js").contains("innerHTML"),
        "values are set as text"
    );
    for path in [
        "/stats",
        "/jails",
        "/config",
        "/anomalies",
        "/upstreams",
        "/metrics",
    ] {
        let refused = c.get(tg.admin_url(path)).send().await.expect(path);
        assert_eq!(refused.status(), 401, "{path}");
    }
}
