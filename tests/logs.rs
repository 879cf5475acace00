//! Log files that can be rotated: the access, security and process logs are each
//! moved away under load and reopened (by logrotate with the shipped
//! `systemd/tollgate.logrotate`, whose `postrotate` runs `tollgate reopen-logs`; then by
//! a reload); the old and new files' lines add up to the requests sent, each a whole
//! JSON line. The process log in JSON; a request its client abandons is logged 499.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;

use crate::support::tollgate::{cli, BIN};
use crate::support::{client, eventually, refused_route, Origin, Tollgate};

const ROUTES: &str = r#"
[[routes]]
name = "hello"
path_prefix = "/"
respond = { status = 200, body = "hi" }
"#;

fn body() -> String {
    format!("{}{ROUTES}", refused_route("/private"))
}

const LOGS: [&str; 3] = ["access.log", "security.log", "process.log"];

/// Sends `n` requests (`n` even), 4 at a time, every other one refused (401, one
/// security event each).
async fn load(tg: &Tollgate, n: usize) {
    let c = client();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (c, base) = (c.clone(), tg.url("/"));
        workers.spawn(async move {
            for i in (worker..n).step_by(4) {
                let path = if i % 2 == 0 { "private" } else { "hello" };
                let resp = c.get(format!("{base}{path}")).send().await;
                let status = resp.expect("request").status().as_u16();
                assert_eq!(status, if i % 2 == 0 { 401 } else { 200 });
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }
}

/// Each line of `path`, parsed: every one must be whole JSON.
fn json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    (text.lines())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {path:?}")))
        .collect()
}

/// Moves each log file to `NAME.suffix`.
fn rotate(tg: &Tollgate, suffix: &str) {
    for name in LOGS {
        std::fs::rename(tg.path(name), tg.path(&format!("{name}.{suffix}"))).expect("mv");
    }
}

/// Runs logrotate once (forced) with the shipped file, pointed at `tg`'s files, binary
/// and config.
fn logrotate(tg: &Tollgate) {
    let shipped = include_str!("../systemd/tollgate.logrotate");
    let files = LOGS.map(|name| tg.path(name).display().to_string());
    let conf = shipped
        .replace("/var/log/tollgate/*.log", &files.join(" "))
        .replace("/usr/local/bin/tollgate", BIN)
        .replace(
            "/etc/tollgate/tollgate.toml",
            &tg.config_path().display().to_string(),
        );
    std::fs::write(tg.path("logrotate.conf"), conf).expect("write logrotate.conf");
    let out = std::process::Command::new("/usr/sbin/logrotate")
        .arg("-f")
        .arg("-s")
        .arg(tg.path("logrotate.state"))
        .arg(tg.path("logrotate.conf"))
        .output()
        .expect("logrotate (scripts/deps.sh installs it)");
    assert!(out.status.success(), "logrotate: {out:?}");
    for name in LOGS {
        assert!(tg.path(&format!("{name}.1")).exists(), "{name} not rotated");
    }
}

/// Waits until each log file exists again (reopened at its path).
async fn reopened(tg: &Tollgate) {
    let all = eventually(Duration::from_secs(5), || async {
        LOGS.iter().all(|name| tg.path(name).exists())
    })
    .await;
    assert!(all, "not reopened: {:?}", LOGS.map(|n| tg.path(n).exists()));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_log_file_reopens_after_rotation_with_every_line_whole_in_one_file() {
    let server = "process_log = { file = \"process.log\" }\nlog_format = \"json\"\n";
    let tg = Tollgate::start_with_server(&body(), server).await;
    let count = |name: &str| {
        ["", ".1", ".2"]
            .iter()
            .map(|suffix| json_lines(&tg.path(&format!("{name}{suffix}"))).len())
            .sum::<usize>()
    };

    // Rotated by logrotate while requests keep coming.
    let during = load(&tg, 2000);
    let rotation = async {
        let started = eventually(Duration::from_secs(10), || async {
            json_lines(&tg.path("access.log")).len() > 100
        })
        .await;
        assert!(started, "no access log lines");
        logrotate(&tg);
        reopened(&tg).await;
    };
    tokio::join!(during, rotation);
    load(&tg, 200).await;

    // Rotated by a reload.
    rotate(&tg, "2");
    assert!(tg.reload_by_cli(&body()).await, "{}", tg.log());
    reopened(&tg).await;
    load(&tg, 200).await;
    let out = cli(&["reopen-logs", "-c"], Some(&tg.config_path()));
    assert!(out.status.success(), "{out:?}");

    let (sent, refused) = (2400, 1200);
    let whole = eventually(Duration::from_secs(5), || async {
        count("access.log") == sent && count("security.log") == refused
    })
    .await;
    assert!(
        whole,
        "access {} of {sent}, security {} of {refused}",
        count("access.log"),
        count("security.log")
    );
    for name in ["access.log", "security.log"] {
        for suffix in ["", ".1", ".2"] {
            let lines = json_lines(&tg.path(&format!("{name}{suffix}")));
            assert!(!lines.is_empty(), "{name}{suffix} is empty");
        }
    }
    let messages = |suffix: &str| -> Vec<String> {
        let lines = json_lines(&tg.path(&format!("process.log{suffix}")));
        for line in &lines {
            for key in ["time", "level", "target", "message"] {
                assert!(line[key].is_string(), "{key} in {line}");
            }
        }
        lines
            .iter()
            .map(|l| l["message"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let has = |suffix: &str, text: &str| messages(suffix).iter().any(|m| m.contains(text));
    let wrote = eventually(Duration::from_secs(5), || async {
        has("", "log files reopened")
    })
    .await;
    assert!(wrote, "process.log: {:?}", messages(""));
    // A record after a reopen was asked for goes to the new file: the line saying
    // so is the first of the file that follows.
    assert!(has(".1", "tollgate starting"), "{:?}", messages(".1"));
    assert!(!has(".1", "log files reopened"), "{:?}", messages(".1"));
    assert!(has(".2", "log files reopened"), "{:?}", messages(".2"));
    assert!(has("", "reload"), "{:?}", messages(""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_client_abandons_is_logged_499() {
    let origin = Origin::start("slow").await;
    let body = format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"slow\"\npath_prefix = \"/\"\nupstream = \"app\"\n",
        origin.target()
    );
    let tg = Tollgate::start(&body).await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let gone = impatient.get(tg.url("/slow?ms=1500")).send().await;
    assert!(gone.is_err(), "the client did not give up");
    let logged = tg.access_log(1).await;
    assert_eq!(logged[0]["path"], "/slow", "{logged:?}");
    assert_eq!(logged[0]["status"], 499, "{logged:?}");
}
