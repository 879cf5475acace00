//! Binary upgrades by socket hand-over (`run -u`, then SIGQUIT to the old process)
//! under keep-alive load: once the old process drains, its responses say
//! `Connection: close`, so clients move to the new process between requests and
//! none of their requests fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{Origin, Tollgate};

/// Keep-alive clients sending requests one after another until `stop`.
fn load(
    url: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(usize, Vec<String>)>> {
    (0..clients)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                let (mut ok, mut errors) = (0, Vec::new());
                while !stop.load(Relaxed) {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => match r.bytes().await {
                            Ok(_) => ok += 1,
                            Err(e) => errors.push(format!("body: {e:?}")),
                        },
                        Ok(r) => errors.push(format!("status {}", r.status())),
                        Err(e) => errors.push(format!("{e:?}")),
                    }
                }
                (ok, errors)
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrades_under_keep_alive_load_lose_no_request() {
    let origin = Origin::start("o").await;
    let mut tg = Tollgate::start(&format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients = load(tg.url("/x"), 8, stop.clone());
    let origin = &origin;
    let until = |n: usize| async move {
        let start = origin.count();
        let reached = crate::support::eventually(Duration::from_secs(10), || async {
            origin.count() >= start + n
        })
        .await;
        assert!(reached, "the load stalled");
    };
    until(200).await;
    for _ in 0..2 {
        let old = tg.pid();
        let status = tg.upgrade().await;
        assert!(status.success(), "the old process exited with {status}");
        assert_ne!(tg.pid(), old);
        until(200).await;
    }
    stop.store(true, Relaxed);
    let mut errors = Vec::new();
    for client in clients {
        let (ok, errs) = client.await.expect("client task");
        served.fetch_add(ok, Relaxed);
        errors.extend(errs);
    }
    assert!(
        errors.is_empty(),
        "{} failed requests: {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        tg.log()
    );
    assert!(
        served.load(Relaxed) >= 600,
        "{} requests served",
        served.load(Relaxed)
    );
    let pid: u32 = std::fs::read_to_string(tg.path("tollgate.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid, tg.pid(), "the pid file names the serving process");
}
