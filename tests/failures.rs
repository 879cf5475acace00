//! Upstream failures: retries on another target, refused connections (502) and
//! timeouts (504), all answered as problem+json.

use crate::support::{assert_problem, free_port, get, spread, Origin, Tollgate};

fn config(targets: &str, extra: &str) -> String {
    format!(
        "[upstreams.pool]\ntargets = [{targets}]\n{extra}\n\n\
         [[routes]]\nname = \"all\"\npath_prefix = \"/\"\nupstream = \"pool\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_failure_is_retried_on_another_target() {
    let live = Origin::start("live").await;
    let dead = format!("\"127.0.0.1:{}\"", free_port());
    let tg = Tollgate::start(&config(
        &format!("{dead}, {}", live.target()),
        "retries = 1",
    ))
    .await;
    let counts = spread(&tg.url("/"), 10).await;
    assert_eq!(counts.get("live"), Some(&10), "{counts:?}");
    let retried = tg
        .access_log(10)
        .await
        .iter()
        .filter(|l| l["upstream"] == live.addr.to_string())
        .count();
    assert_eq!(retried, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_kept_alive_and_reused() {
    let origin = Origin::start("o").await;
    let tg = Tollgate::start(&config(&origin.target(), "idle_timeout = \"30s\"")).await;
    spread(&tg.url("/"), 20).await;
    // Two workers may each open one; without reuse there would be 20.
    assert!(
        origin.connections() <= 2,
        "{} connections for 20 sequential requests",
        origin.connections()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_connection_is_502_without_retries() {
    let dead = format!("\"127.0.0.1:{}\"", free_port());
    let tg = Tollgate::start(&config(&dead, "retries = 0")).await;
    assert_problem(&get(&tg.url("/")).await, 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_is_504_after_the_route_timeout() {
    let origin = Origin::start("slow").await;
    let tg = Tollgate::start(&format!(
        "[upstreams.pool]\ntargets = [{}]\nread_timeout = \"10s\"\n\n\
         [[routes]]\nname = \"impatient\"\npath_prefix = \"/\"\nupstream = \"pool\"\ntimeout = \"300ms\"\n",
        origin.target()
    ))
    .await;
    let started = std::time::Instant::now();
    assert_problem(&get(&tg.url("/slow?ms=3000")).await, 504);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the route timeout, not the origin, ended it"
    );
    assert_eq!(get(&tg.url("/fast")).await.status, 200);
}
