//! Hot reload: a new route applies at once, an invalid file changes nothing, an
//! in-flight request finishes, fixed settings are reported as needing a restart.

use std::time::Duration;

use crate::support::{eventually, free_port, get, Origin, Tollgate};

const HEALTH: &str = "[[routes]]\nname = \"health\"\npath_prefix = \"/healthz\"\nrespond = { status = 200, body = \"v1\" }\n";

#[tokio::test(flavor = "multi_thread")]
async fn new_route_applies_and_invalid_file_changes_nothing() {
    let tg = Tollgate::start(HEALTH).await;
    assert_eq!(get(&tg.url("/new")).await.status, 404);

    // `tollgate reload` checks the file, then signals the process.
    let v2 = format!("{HEALTH}[[routes]]\nname = \"new\"\npath_prefix = \"/new\"\nrespond = {{ status = 200, body = \"new\" }}\n");
    assert!(
        tg.reload_by_cli(&v2).await,
        "reload rejected:\n{}",
        tg.log()
    );
    assert_eq!(get(&tg.url("/new")).await.body, "new");

    // The CLI refuses to signal with a broken file; SIGHUP makes the process try anyway.
    let broken = "[[routes]]\nname = \"new\"\nupstream = \"nowhere\"\n";
    assert!(
        !tg.reload_by_cli(broken).await,
        "tollgate reload accepted a broken file"
    );
    assert!(!tg.sighup().await, "the process applied a broken file");
    // The reload is counted just before its rejection is logged.
    let logged = eventually(Duration::from_secs(5), || async {
        tg.log()
            .contains("routes[0].upstream: no upstream named \"nowhere\"")
    })
    .await;
    assert!(logged, "{}", tg.log());
    assert_eq!(
        get(&tg.url("/new")).await.body,
        "new",
        "the previous config keeps serving"
    );
    assert_eq!(get(&tg.url("/healthz")).await.body, "v1");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_request_survives_a_reload() {
    let origin = Origin::start("o").await;
    let upstream = format!("[upstreams.app]\ntargets = [{}]\n\n", origin.target());
    let route = |prefix: &str| {
        format!("[[routes]]\nname = \"app\"\npath_prefix = \"{prefix}\"\nupstream = \"app\"\n")
    };
    let tg = Tollgate::start(&format!("{upstream}{}", route("/"))).await;
    let url = tg.url("/slow?ms=1500");
    let slow = tokio::spawn(async move { get(&url).await });
    let arrived = crate::support::eventually(std::time::Duration::from_secs(5), || async {
        origin.count() == 1
    })
    .await;
    assert!(arrived);
    // The new config no longer routes "/slow" at all.
    assert!(
        tg.reload(&format!("{upstream}{}", route("/other"))).await,
        "{}",
        tg.log()
    );
    assert_eq!(get(&tg.url("/slow?ms=1")).await.status, 404);
    let reply = slow.await.expect("slow request");
    assert_eq!((reply.status, reply.body.as_str()), (200, "o"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fixed_settings_are_reported_as_needing_a_restart() {
    let tg = Tollgate::start(HEALTH).await;
    let extra = format!(
        "[listeners.more]\naddr = \"127.0.0.1:{}\"\n\n{HEALTH}",
        free_port()
    );
    assert!(tg.reload(&extra).await, "{}", tg.log());
    assert!(
        tg.log()
            .contains("need a restart or upgrade to apply: listeners.more is new"),
        "{}",
        tg.log()
    );
}
