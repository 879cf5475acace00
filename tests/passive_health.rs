//! Passive health: a target whose requests keep failing is ejected for a while and
//! comes back; the last target that is up is never ejected.

use std::time::Duration;

use crate::support::{client, eventually, get, metric, send, Origin, Tollgate};

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_target_is_ejected_then_comes_back_and_the_last_one_stays() {
    let origins = Origin::start_many("o", 2).await;
    let tg = Tollgate::start(&format!(
        "[upstreams.app]\ntargets = [{}, {}]\n\
         passive = {{ consecutive_failures = 3, eject_for = \"5s\", statuses = [503] }}\n\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origins[0].target(),
        origins[1].target()
    ))
    .await;
    let url = tg.url("/x");
    let c = client();
    let mut answers = Vec::new();
    origins[1].fail(true);
    for _ in 0..16 {
        let r = send(c.get(&url)).await;
        answers.push((r.status, r.header("x-origin").to_owned()));
    }
    let failed = answers.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(
        failed, 3,
        "o1 answered 503 more than 3 times in a row: {answers:?}"
    );
    assert!(
        answers[8..].iter().all(|(s, o)| *s == 200 && o == "o0"),
        "o1 still chosen after its third failure: {answers:?}"
    );
    let metrics_url = tg.admin_url("/metrics");
    let ejections = "tollgate_upstream_ejections_total{upstream=\"app\"}";
    assert_eq!(metric(&get(&metrics_url).await.body, ejections), 1);
    let status = get(&tg.admin_url("/upstreams")).await.json();
    let o1 = status["app"]["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["addr"] == origins[1].addr.to_string()))
        .cloned()
        .unwrap_or_default();
    assert!(
        o1["ejected_for_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{status}"
    );

    // The last target up is never ejected: o0 fails too, and keeps being chosen.
    origins[0].fail(true);
    for _ in 0..6 {
        assert_eq!(send(c.get(&url)).await.header("x-origin"), "o0");
    }
    assert_eq!(metric(&get(&metrics_url).await.body, ejections), 1);
    origins[0].fail(false);

    // After eject_for, o1 (healthy again) is chosen again.
    origins[1].fail(false);
    let back = eventually(Duration::from_secs(10), || async {
        get(&url).await.header("x-origin") == "o1"
    })
    .await;
    assert!(back, "o1 never came back:\n{}", tg.log());
    assert!(tg.log().contains("ejected for 5s"), "{}", tg.log());
}
