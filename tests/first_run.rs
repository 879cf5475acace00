//! A first run that answers: the default config (conf/tollgate.toml, on free ports)
//! with the demo origin `scripts/run.sh` starts (scripts/demo-origin.py) behind its
//! `app` upstream: /app/hello reaches it with the path stripped and tollgate's
//! headers added, and the health check finds it up.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::tollgate::BIN;
use crate::support::{client, eventually, free_port, Child};

#[tokio::test(flavor = "multi_thread")]
async fn the_default_config_reaches_the_demo_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (demo, public, admin) = (free_port(), free_port(), free_port());
    let _origin = Child(
        Command::new("python3")
            .arg("scripts/demo-origin.py")
            .arg(format!("127.0.0.1:{demo}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 scripts/demo-origin.py"),
    );
    let shipped = std::fs::read_to_string("conf/tollgate.toml").expect("conf/tollgate.toml");
    let config = shipped
        .replace("127.0.0.1:9001", &format!("127.0.0.1:{demo}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{public}"))
        .replace("127.0.0.1:9900", &format!("127.0.0.1:{admin}"))
        .replace("/tmp/tollgate/", &format!("{}/", dir.path().display()));
    assert_ne!(
        config, shipped,
        "the ports were not found in conf/tollgate.toml"
    );
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).expect("write config");
    let _tollgate = Child(
        Command::new(BIN)
            .args(["run", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tollgate"),
    );

    let url = format!("http://127.0.0.1:{public}/app/hello?x=1");
    let c = client();
    let answered = eventually(Duration::from_secs(20), || async {
        c.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(answered, "no 200 from {url}");
    let body = c.get(&url).send().await.expect("request").bytes().await;
    let seen: serde_json::Value =
        serde_json::from_slice(&body.expect("body")).expect("the demo origin's JSON");
    assert_eq!(seen["origin"], "demo");
    assert_eq!(seen["path"], "/hello");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["x-gateway"], "tollgate");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(seen["headers"]["x-request-id"].is_string(), "{seen}");
    let welcome = c
        .get(format!("http://127.0.0.1:{public}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(welcome.status(), 200);
}
