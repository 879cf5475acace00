//! observability/: the Prometheus rules pass `promtool check rules` and their own unit
//! tests (`promtool test rules`); the Grafana dashboard's queries parse and name only
//! metrics tollgate has; and a real Prometheus scrapes a real tollgate whose upstream
//! is down and evaluates the rules: the error ratio is recorded, the alerts pending.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{client, eventually, free_port, refused_route, Child, Tollgate};

const RULES: &str = "observability/prometheus-rules.yml";
const DASHBOARD: &str = "observability/grafana-dashboard.json";

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (scripts/deps.sh installs Debian's prometheus)")
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    assert_success(&promtool(&["check", "rules", RULES]), "check rules");
    assert_success(
        &promtool(&["test", "rules", "observability/rules-test.yml"]),
        "test rules",
    );
}

/// The dashboard's queries, with Grafana's variables given values.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 15, "{} panels", panels.len());
    (panels.iter())
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            (t["expr"].as_str().expect("an expression"))
                .replace("$__rate_interval", "5m")
                .replace("$instance", ".*")
        })
        .collect()
}

/// The `tollgate_…` metric names in `text` (a histogram's series as its name).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("tollgate_") {
        let preceded = text[..i].chars().last();
        if preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_') {
            continue;
        }
        let name: String = (text[i..].chars())
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .map_or(name.clone(), str::to_owned);
        names.insert(name);
    }
    names
}

/// Every Rust source under `dir`, concatenated.
fn sources(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            all += &sources(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            all += &std::fs::read_to_string(&path).expect("source");
        }
    }
    all
}

#[test]
fn the_dashboards_queries_parse_and_name_only_metrics_tollgate_has() {
    let queries = dashboard_queries();
    // promtool parses PromQL in rule files: each query becomes a recording rule.
    let rules: String = (queries.iter().enumerate())
        .map(|(i, q)| {
            format!(
                "      - record: dashboard:query_{i}\n        expr: {}\n",
                serde_json::to_string(q).expect("quoted")
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .expect("write");
    assert_success(
        &promtool(&["check", "rules", file.to_str().expect("path")]),
        "the dashboard's queries",
    );
    let src = sources(Path::new("src"));
    let mut named = metric_names(&queries.join("\n"));
    named.extend(metric_names(
        &std::fs::read_to_string(RULES).expect("rules"),
    ));
    for name in &named {
        let bare = name.strip_prefix("tollgate_").expect("prefixed");
        let registered = src.contains(&format!("\"{bare}\"")) || src.contains(&format!("{name}{{"));
        assert!(registered, "{name} is not a metric tollgate has");
    }
    assert!(named.len() >= 15, "{named:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_tollgate_and_evaluates_the_rules() {
    let down = free_port();
    let body = format!(
        "{}\n[upstreams.app]\ntargets = [\"127.0.0.1:{down}\"]\n\
         health = {{ kind = \"tcp\", interval = \"200ms\", unhealthy_threshold = 1 }}\n\n\
         [[routes]]\nname = \"app\"\npath_prefix = \"/\"\nupstream = \"app\"\n",
        refused_route("/private")
    );
    let tg = Tollgate::start(&body).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = std::fs::canonicalize(RULES).expect("rules");
    let admin = tg.admin_url("");
    let target = admin.trim_start_matches("http://").trim_end_matches('/');
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: tollgate\n    static_configs:\n      - targets: [\"{target}\"]\n",
        rules.display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("prometheus.yml");
    let port = free_port();
    let _prometheus = Child(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/deps.sh installs it)"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let c = client();
    let ready = eventually(Duration::from_secs(20), || async {
        let resp = c.get(format!("{api}/-/ready")).send().await;
        resp.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "prometheus did not get ready");

    let get = |path: String| {
        let c = c.clone();
        async move {
            let resp = c.get(path).send().await.expect("prometheus API");
            let body = resp.bytes().await.expect("body");
            serde_json::from_slice::<Value>(&body).expect("JSON")
        }
    };
    let query = |q: &str| {
        let url = reqwest::Url::parse_with_params(&format!("{api}/api/v1/query"), [("query", q)]);
        get(url.expect("a query URL").to_string())
    };
    let evaluated = eventually(Duration::from_secs(30), || async {
        // Traffic while it waits: 503s (no healthy target) and refusals.
        for path in ["/", "/private"] {
            let _ = c.get(tg.url(path)).send().await;
        }
        let ratio = query("tollgate:errors:ratio5m").await;
        let ratio = ratio["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned);
        let alerts = get(format!("{api}/api/v1/alerts")).await;
        let names: BTreeSet<String> = (alerts["data"]["alerts"].as_array().into_iter().flatten())
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect();
        ratio
            .and_then(|r| r.parse::<f64>().ok())
            .is_some_and(|r| r > 0.4)
            && names.contains("TollgateHighErrorRatio")
            && names.contains("TollgateUpstreamDown")
    })
    .await;
    let alerts = get(format!("{api}/api/v1/alerts")).await;
    assert!(evaluated, "rules not evaluated as expected: {alerts}");
    let healthy = query("tollgate_upstream_healthy_targets").await;
    assert_eq!(healthy["data"]["result"][0]["value"][1], "0", "{healthy}");
    let refusals = query("tollgate:refusals:rate5m").await;
    let stages: Vec<&str> = (refusals["data"]["result"].as_array().into_iter().flatten())
        .filter_map(|r| r["metric"]["stage"].as_str())
        .collect();
    assert!(stages.contains(&"auth"), "{refusals}");
}
