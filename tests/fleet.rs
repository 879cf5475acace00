//! A fleet's config in a real etcd: `tollgate push` stores a checked document with
//! every file it reads in one revision, refuses a document that does not check and a
//! stale `--expect-revision`, deletes the files a new document no longer reads, and
//! `--revision` pushes a stored revision again; `fleet history` lists them. Nodes
//! (`[fleet]`) serve the cluster's document with their own listener address, and one
//! started with etcd away serves the cached revision.

use std::path::Path;
use std::time::Duration;

use crate::support::certs::Ca;
use crate::support::etcd::{Etcd, EtcdCluster, EtcdTls};
use crate::support::tollgate::{cli, Tollgate};
use crate::support::{eventually, get, metric};

const CLUSTER: &str = "edge-test";

fn document(list: bool) -> String {
    let list = match list {
        true => "[ip_lists.office]\nfile = \"lists/office.txt\"\n",
        false => "",
    };
    format!(
        "[server]\npid_file = \"t.pid\"\n\n[listeners.main]\naddr = \"127.0.0.1:1\"\n\n\
         [upstreams.origin]\ntargets = [\"127.0.0.1:9\"]\n\n{list}\n\
         [[routes]]\nname = \"all\"\nupstream = \"origin\"\n"
    )
}

/// `tollgate push` with `args` after the etcd target: (exit code, stdout, stderr).
fn push(etcd: &Etcd, args: &[&str]) -> (i32, String, String) {
    let url = etcd.url();
    let mut all = vec!["push", "--etcd", url.as_str(), "--cluster", CLUSTER];
    all.extend_from_slice(args);
    let out = cli(&all, None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The revision a successful push printed.
fn pushed_revision(stdout: &str) -> i64 {
    stdout
        .split("as revision ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {stdout:?}"))
}

fn key(name: &str) -> String {
    format!("/tollgate/{CLUSTER}/{name}")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[tokio::test]
async fn push_check_expect_revision_history_and_roll_back() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "lists/office.txt", "192.0.2.0/24\n");
    let v1 = write(dir.path(), "v1.toml", &document(true));

    let (code, out, err) = push(&etcd, &["-c", &v1]);
    assert_eq!(code, 0, "{err}");
    let r1 = pushed_revision(&out);
    assert_eq!(etcd.get(&key("config")), Some(document(true).into_bytes()));
    assert_eq!(
        etcd.get(&key("files/lists/office.txt")),
        Some(b"192.0.2.0/24\n".to_vec())
    );

    // A document that does not check: every error with its place, nothing stored.
    let broken = write(
        dir.path(),
        "broken.toml",
        "[server]\nworkers = 0\n[listeners.a]\naddr = \"nowhere\"\n",
    );
    let (code, _, err) = push(&etcd, &["-c", &broken]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.toml:2:"), "{err}");
    assert!(err.contains("broken.toml:4:"), "{err}");
    assert!(err.contains("not pushed"), "{err}");
    assert_eq!(etcd.get(&key("config")), Some(document(true).into_bytes()));

    // A file outside the document's directory is refused as well.
    let outside = write(
        dir.path(),
        "sub/outside.toml",
        &document(true).replace("lists/office.txt", "../lists/office.txt"),
    );
    let (code, _, err) = push(&etcd, &["-c", &outside]);
    assert_eq!(code, 1);
    assert!(err.contains("inside its directory"), "{err}");

    // Two operators: the one who read revision r1 - 1 is refused.
    let v2 = write(dir.path(), "v2.toml", &document(false));
    let stale = (r1 - 1).to_string();
    let (code, _, err) = push(&etcd, &["-c", &v2, "--expect-revision", &stale]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("at revision {r1}, not {stale}")),
        "{err}"
    );
    assert_eq!(etcd.get(&key("config")), Some(document(true).into_bytes()));

    let (code, out, err) = push(&etcd, &["-c", &v2, "--expect-revision", &r1.to_string()]);
    assert_eq!(code, 0, "{err}");
    let r2 = pushed_revision(&out);
    assert!(r2 > r1);
    assert_eq!(etcd.get(&key("config")), Some(document(false).into_bytes()));
    // The file v2 no longer reads went with the same transaction.
    assert_eq!(etcd.get(&key("files/lists/office.txt")), None);

    let url = etcd.url();
    let history = cli(
        &["fleet", "history", "--etcd", &url, "--cluster", CLUSTER],
        None,
    );
    let listed = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history.status.success(),
        "{}",
        String::from_utf8_lossy(&history.stderr)
    );
    let revisions: Vec<i64> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(revisions, [r2, r1], "{listed}");
    assert!(listed.contains("sha256 "), "{listed}");

    // Roll back: revision r1 again, its file with it, as a new revision.
    let (code, out, err) = push(&etcd, &["--revision", &r1.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(pushed_revision(&out) > r2);
    assert_eq!(etcd.get(&key("config")), Some(document(true).into_bytes()));
    assert_eq!(
        etcd.get(&key("files/lists/office.txt")),
        Some(b"192.0.2.0/24\n".to_vec())
    );
    let (code, _, err) = push(&etcd, &["--revision", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no config at revision 1"), "{err}");
}

#[tokio::test]
async fn push_without_etcd_fails_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "lists/office.txt", "192.0.2.0/24\n");
    let v1 = write(dir.path(), "v1.toml", &document(true));
    let port = crate::support::tollgate::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = cli(
        &["push", "--etcd", &url, "--cluster", CLUSTER, "-c", &v1],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not pushed") && err.contains(&url), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A cluster document for nodes: listener `main` (each node sets its own address) and
/// one route answering `body`.
fn node_document(body: &str) -> String {
    format!(
        "[listeners.main]\naddr = \"127.0.0.1:1\"\n\n[[routes]]\nname = \"all\"\n\
         respond = {{ status = 200, body = \"{body}\" }}\n"
    )
}

/// The node answers `/` with 200 and `body`.
async fn assert_serves(node: &Tollgate, body: &str) {
    let reply = get(&node.url("/")).await;
    let got = (reply.status, reply.body.as_str());
    assert_eq!(got, (200, body), "{}", node.log());
}

#[tokio::test]
async fn nodes_serve_the_document_and_start_from_their_cache_with_etcd_away() {
    let etcd = Etcd::start().await;
    let shared = tempfile::tempdir().expect("tempdir");
    let v1 = write(shared.path(), "v1.toml", &node_document("v1"));
    let (code, _, err) = push(&etcd, &["-c", &v1]);
    assert_eq!(code, 0, "{err}");

    let cache = shared.path().join("cache");
    let fleet = format!(
        "[fleet]\netcd = [\"{}\"]\ncluster = \"{CLUSTER}\"\ncache = \"{}\"\n",
        etcd.url(),
        cache.display()
    );
    // Two nodes, each on its own port (the harness's [listeners.main] addr wins).
    let a = Tollgate::start(&fleet).await;
    let b = Tollgate::start(&fleet).await;
    for node in [&a, &b] {
        assert_serves(node, "v1").await;
    }
    let revision_dir = std::fs::canonicalize(cache.join(CLUSTER).join("current")).expect("current");
    assert_eq!(
        std::fs::read_to_string(revision_dir.join("tollgate.toml")).expect("cached document"),
        node_document("v1")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cache.join(CLUSTER))
        .expect("cache")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the cache is readable by others: {mode:o}");

    // etcd away: a node started now serves the cached revision, and says so.
    drop(etcd);
    drop(b);
    let c = Tollgate::start(&fleet).await;
    assert_serves(&c, "v1").await;
    assert!(c.log().contains("serving the cached config"), "{}", c.log());
    assert_serves(&a, "v1").await;

    // No etcd and no cache: the start fails, saying why.
    let lonely = write(
        shared.path(),
        "lonely.toml",
        &format!(
            "[listeners.main]\naddr = \"127.0.0.1:1\"\n\n[fleet]\netcd = [\"http://127.0.0.1:{}\"]\n\
             cluster = \"{CLUSTER}\"\ncache = \"{}\"\n",
            crate::support::tollgate::free_port(),
            shared.path().join("empty").display()
        ),
    );
    let out = cli(&["run", "-c", &lonely], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no cached config"), "{err}");
}

/// Pushes `node_document(body)`, written into `dir`; asserts it was stored.
fn push_node_document(etcd: &Etcd, dir: &Path, body: &str) {
    let file = write(dir, &format!("{body}.toml"), &node_document(body));
    let (code, _, err) = push(etcd, &["-c", &file]);
    assert_eq!(code, 0, "{err}");
}

/// A node's `[fleet]`: this etcd, the test cluster, a cache in the node's directory.
fn fleet_section(etcd: &Etcd) -> String {
    format!(
        "[fleet]\netcd = [\"{}\"]\ncluster = \"{CLUSTER}\"\ncache = \"$DIR/cache\"\n",
        etcd.url()
    )
}

/// `tollgate fleet status`: exit code and stdout.
fn status(etcd: &Etcd) -> (i32, String) {
    let url = etcd.url();
    let out = cli(
        &["fleet", "status", "--etcd", &url, "--cluster", CLUSTER],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

/// Whether the node answers `/` with `body` within `seconds`.
async fn serves_within(node: &Tollgate, body: &str, seconds: u64) -> bool {
    let url = node.url("/");
    eventually(Duration::from_secs(seconds), || {
        let url = url.clone();
        async move { get(&url).await.body == body }
    })
    .await
}

#[tokio::test]
async fn nodes_follow_pushes_refuse_a_broken_document_and_outlive_etcd() {
    let mut etcd = Etcd::start().await;
    let shared = tempfile::tempdir().expect("tempdir");
    let push_body = |etcd: &Etcd, body: &str| push_node_document(etcd, shared.path(), body);
    push_body(&etcd, "v1");
    let fleet = fleet_section(&etcd);
    // Node b keeps its cache outside its directory, so that a restart finds it.
    let fleet_b = fleet.replace("$DIR/cache", &shared.path().join("b").display().to_string());
    let a = Tollgate::start(&fleet).await;
    let b = Tollgate::start(&fleet_b).await;

    // A push reaches both within 2 s.
    push_body(&etcd, "v2");
    for node in [&a, &b] {
        assert!(serves_within(node, "v2", 2).await, "{}", node.log());
        assert_eq!(metric(&node.metrics().await, "tollgate_fleet_connected"), 1);
    }

    let config = get(&a.admin_url("/config")).await.json();
    assert_eq!(config["source"]["kind"], "etcd", "{config}");
    assert_eq!(config["source"]["cluster"], CLUSTER);
    assert!(config["source"]["revision"].as_i64() > Some(0), "{config}");
    let (code, listed) = status(&etcd);
    assert_eq!(code, 0, "{listed}");
    assert_eq!(listed.matches("  latest  ").count(), 2, "{listed}");

    // A broken document written straight into etcd: refused by both, which serve on.
    let out = etcd.ctl(&["put", &key("config"), "[listeners.main\naddr = 1"]);
    assert!(out.status.success());
    for node in [&a, &b] {
        let refused = eventually(Duration::from_secs(5), || async {
            metric(
                &node.metrics().await,
                "tollgate_config_reloads_total{result=\"failure\"}",
            ) >= 1
        })
        .await;
        assert!(refused, "{}", node.log());
        assert_serves(node, "v2").await;
    }
    let cached =
        std::fs::read_to_string(a.path("cache").join(CLUSTER).join("current/tollgate.toml"));
    assert_eq!(
        cached.expect("cache"),
        node_document("v2"),
        "the cache keeps the last good one"
    );
    let (code, listed) = status(&etcd);
    assert_eq!(
        code, 1,
        "both serve the revision before the broken one: {listed}"
    );
    assert_eq!(listed.matches("  BEHIND  ").count(), 2, "{listed}");

    // Restarted meanwhile, a node refuses the broken document and serves its cache.
    drop(b);
    let b = Tollgate::start(&fleet_b).await;
    assert_serves(&b, "v2").await;
    assert!(b.log().contains("refused"), "{}", b.log());
    assert!(b.log().contains("serving the cached config"), "{}", b.log());

    // etcd away: both serve on and say they are not connected; b restarted meanwhile
    // serves its cache.
    etcd.kill();
    drop(b);
    let b = Tollgate::start(&fleet_b).await;
    for node in [&a, &b] {
        let disconnected = eventually(Duration::from_secs(10), || async {
            metric(&node.metrics().await, "tollgate_fleet_connected") == 0
        })
        .await;
        assert!(disconnected, "{}", node.log());
        assert_serves(node, "v2").await;
        let ready = get(&node.admin_url("/readyz")).await;
        assert_eq!(ready.status, 200);
    }

    // etcd back: the next push reaches the node that kept running and the one
    // started from its cache.
    etcd.restart().await;
    push_body(&etcd, "v3");
    for node in [&a, &b] {
        assert!(serves_within(node, "v3", 20).await, "{}", node.log());
    }

    // Upgraded in place (SIGUSR2), a node still follows its cluster: the new process
    // starts from the local file, not from the cache's copy.
    a.signal(nix::sys::signal::Signal::SIGUSR2);
    let mut new = None;
    let upgraded = eventually(Duration::from_secs(20), || {
        new = a
            .log()
            .split("upgraded on SIGUSR2: pid ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next()?.parse::<i32>().ok());
        let done = new.is_some();
        async move { done }
    })
    .await;
    assert!(upgraded, "{}", a.log());
    let _stop_new = crate::support::Stops(new.expect("new pid"));
    push_body(&etcd, "v4");
    assert!(serves_within(&a, "v4", 2).await, "{}", a.log());
    let config = get(&a.admin_url("/config")).await.json();
    assert_eq!(config["source"]["kind"], "etcd", "{config}");
}

#[tokio::test]
async fn a_node_that_missed_compacted_revisions_catches_up() {
    let mut etcd = Etcd::start().await;
    let shared = tempfile::tempdir().expect("tempdir");
    let push_body = |etcd: &Etcd, body: &str| push_node_document(etcd, shared.path(), body);
    push_body(&etcd, "v1");
    let fleet = fleet_section(&etcd);
    let node = Tollgate::start(&fleet).await;
    assert_serves(&node, "v1").await;
    let known_port = etcd.client_port;

    // etcd moves where the node cannot reach it; two pushes, then a compaction of the
    // history the node's watch would resume from.
    etcd.kill();
    etcd.restart_on(crate::support::tollgate::free_port()).await;
    push_body(&etcd, "v2");
    push_body(&etcd, "v3");
    let status = etcd.ctl(&["endpoint", "status", "--write-out=json"]);
    let revision = String::from_utf8_lossy(&status.stdout)
        .split("\"revision\":")
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<i64>()
                .ok()
        })
        .expect("revision");
    let compacted = etcd.ctl(&["compact", &revision.to_string()]);
    assert!(
        compacted.status.success(),
        "{}",
        String::from_utf8_lossy(&compacted.stderr)
    );
    assert_serves(&node, "v1").await;
    let url = etcd.url();
    let history = cli(
        &["fleet", "history", "--etcd", &url, "--cluster", CLUSTER],
        None,
    );
    let listed = String::from_utf8_lossy(&history.stdout);
    assert!(history.status.success(), "{listed}");
    assert!(
        listed.contains("older revisions were compacted"),
        "{listed}"
    );

    // Back where the node looks: it reads the latest again and serves it.
    etcd.kill();
    etcd.restart_on(known_port).await;
    assert!(serves_within(&node, "v3", 40).await, "{}", node.log());
}

#[tokio::test]
async fn with_one_member_of_three_stopped_push_and_start_work() {
    let mut cluster = EtcdCluster::start().await;
    cluster.kill(1);
    let urls = cluster.urls().join(",");
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = write(dir.path(), "v1.toml", &node_document("v1"));
    let out = cli(
        &["push", "--etcd", &urls, "--cluster", CLUSTER, "-c", &v1],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let quoted: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let fleet = format!(
        "[fleet]\netcd = [{}]\ncluster = \"{CLUSTER}\"\ncache = \"$DIR/cache\"\n",
        quoted.join(", ")
    );
    let node = Tollgate::start(&fleet).await;
    assert_serves(&node, "v1").await;
    let v2 = write(dir.path(), "v2.toml", &node_document("v2"));
    let out = cli(
        &["push", "--etcd", &urls, "--cluster", CLUSTER, "-c", &v2],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(serves_within(&node, "v2", 5).await, "{}", node.log());
}

#[tokio::test]
async fn etcd_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("etcd test CA");
    let server = ca.server(&["127.0.0.1"]);
    let client = ca.client("tollgate", &[]);
    let file = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let tls = EtcdTls {
        ca: ca.write(dir.path(), "ca"),
        cert: file("server.pem", server.cert_pem()),
        key: file("server.key", server.key_pem()),
        client_cert: file("client.pem", client.cert_pem()),
        client_key: file("client.key", client.key_pem()),
    };
    let (ca_path, cert, key) = (
        tls.ca.display().to_string(),
        tls.client_cert.display().to_string(),
        tls.client_key.display().to_string(),
    );
    let etcd = Etcd::start_tls(tls).await;
    let v1 = write(dir.path(), "v1.toml", &node_document("v1"));

    // Without a client certificate etcd refuses; with one the push is stored.
    let (code, _, err) = push(&etcd, &["-c", &v1, "--etcd-ca", &ca_path]);
    assert_eq!(code, 1, "{err}");
    let with_cert = [
        "-c",
        v1.as_str(),
        "--etcd-ca",
        &ca_path,
        "--etcd-cert",
        &cert,
        "--etcd-key",
        &key,
    ];
    let (code, _, err) = push(&etcd, &with_cert);
    assert_eq!(code, 0, "{err}");

    let fleet = format!(
        "[fleet]\netcd = [\"{}\"]\ncluster = \"{CLUSTER}\"\ncache = \"$DIR/cache\"\n\
         tls = {{ ca = \"{ca_path}\", cert = \"{cert}\", key = \"{key}\" }}\n",
        etcd.url()
    );
    let node = Tollgate::start(&fleet).await;
    assert_serves(&node, "v1").await;
}

#[tokio::test]
async fn etcd_with_authentication() {
    let etcd = Etcd::start().await;
    for args in [
        &["user", "add", "root:root-secret", "--interactive=false"][..],
        &["auth", "enable"][..],
    ] {
        let out = etcd.ctl(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = write(dir.path(), "v1.toml", &node_document("v1"));
    let credentials = [
        "--username-env",
        "TEST_ETCD_USER",
        "--password-env",
        "TEST_ETCD_PASSWORD",
    ];
    let url = etcd.url();
    let run = |with: &[&str], password: &str| {
        let mut args = vec![
            "push",
            "--etcd",
            url.as_str(),
            "--cluster",
            CLUSTER,
            "-c",
            &v1,
        ];
        args.extend_from_slice(with);
        std::process::Command::new(crate::support::tollgate::BIN)
            .args(&args)
            .env("TEST_ETCD_USER", "root")
            .env("TEST_ETCD_PASSWORD", password)
            .output()
            .expect("push")
    };
    assert!(
        !run(&[], "").status.success(),
        "etcd took a push without credentials"
    );
    assert!(
        !run(&credentials, "wrong").status.success(),
        "etcd took a wrong password"
    );
    let out = run(&credentials, "root-secret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fleet = format!(
        "{}username_env = \"TEST_ETCD_USER\"\npassword_env = \"TEST_ETCD_PASSWORD\"\n",
        fleet_section(&etcd)
    );
    let env = [
        ("TEST_ETCD_USER", "root"),
        ("TEST_ETCD_PASSWORD", "root-secret"),
    ];
    let node = Tollgate::start_full(&fleet, "", &env, |_| ()).await;
    assert_serves(&node, "v1").await;
}
