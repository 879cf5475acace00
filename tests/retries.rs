//! Retries after a request reached a target (`retry_on`): idempotent requests are
//! sent again to another target, others are not unless their route says so, and the
//! retry budget caps them.

use crate::support::{client, send, Origin, Tollgate};

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_requests_are_retried_on_another_target_within_the_budget() {
    let origins = Origin::start_many("o", 2).await;
    let targets = format!("[{}, {}]", origins[0].target(), origins[1].target());
    let tg = Tollgate::start(&format!(
        "[upstreams.app]\ntargets = {targets}\nretry_on = [\"503\"]\nretry_budget = 1.0\n\n\
         [upstreams.tight]\ntargets = {targets}\nretry_on = [\"503\"]\nretry_budget = 0.0\n\n\
         [[routes]]\nname = \"tight\"\npath_prefix = \"/tight\"\nupstream = \"tight\"\n\n\
         [[routes]]\nname = \"vouched\"\npath_prefix = \"/vouched\"\nupstream = \"app\"\nidempotent = true\n\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n"
    ))
    .await;
    origins[1].fail(true);
    let c = client();
    let statuses = |path: &'static str, post: bool| {
        let (c, url) = (c.clone(), tg.url(path));
        async move {
            let mut out = Vec::new();
            for _ in 0..12 {
                let req = if post {
                    c.post(&url).body("x")
                } else {
                    c.get(&url)
                };
                out.push(send(req).await.status);
            }
            out
        }
    };
    let gets = statuses("/x", false).await;
    assert!(
        gets.iter().all(|s| *s == 200),
        "a GET was not retried: {gets:?}\n{}",
        tg.log()
    );
    let posts = statuses("/x", true).await;
    assert!(posts.contains(&503), "a POST was retried: {posts:?}");
    assert!(posts.contains(&200), "{posts:?}");
    let vouched = statuses("/vouched", true).await;
    assert!(
        vouched.iter().all(|s| *s == 200),
        "the route's idempotent = true: {vouched:?}"
    );
    // Budget 0: only the floor of 3 retries in the window (10 s), out of 6 wanted.
    let tight = statuses("/tight", false).await;
    assert!(
        tight.contains(&503),
        "the budget did not stop retries: {tight:?}"
    );
    let seen_by_o1 = origins[1].count();
    assert!(seen_by_o1 >= 6, "o1 took its share: {seen_by_o1}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_other_target_the_targets_own_answer_goes_to_the_client() {
    let origin = Origin::start("solo").await;
    let tg = Tollgate::start(&format!(
        "[upstreams.app]\ntargets = [{}]\nretry_on = [\"503\"]\nretries = 2\n\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    ))
    .await;
    origin.fail(true);
    let reply = send(client().get(tg.url("/x"))).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(
        reply.header("x-origin"),
        "solo",
        "not the target's own answer"
    );
    assert_eq!(origin.count(), 1, "retried on the only target");
}

/// A target that reads each request and closes the connection without answering.
async fn closing_target() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_target_closed_without_answering_is_retried_on_reset() {
    let good = Origin::start("good").await;
    let closing = closing_target().await;
    let config = |retry_on: &str| {
        format!(
            "[upstreams.app]\ntargets = [{}, \"{closing}\"]\nretry_on = {retry_on}\nretry_budget = 1.0\n\n\
             [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
            good.target()
        )
    };
    let tg = Tollgate::start(&config("[\"reset\"]")).await;
    let c = client();
    for _ in 0..6 {
        let reply = send(c.get(tg.url("/x"))).await;
        assert_eq!(reply.status, 200, "{}\n{}", reply.body, tg.log());
    }
    // Without "reset", the same requests fail on that target.
    assert!(tg.reload(&config("[]")).await);
    let mut failed = 0;
    for _ in 0..6 {
        if send(c.get(tg.url("/x"))).await.status != 200 {
            failed += 1;
        }
    }
    assert!(failed > 0, "retried without retry_on = [\"reset\"]");
}
