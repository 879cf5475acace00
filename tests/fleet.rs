//! A fleet's config in a real etcd: `tollgate push` stores a checked document with
//! every file it reads in one revision, refuses a document that does not check and a
//! stale `--expect-revision`, deletes the files a new document no longer reads, and
//! `--revision` pushes a stored revision again; `fleet history` lists them.

use std::path::Path;

use crate::support::etcd::Etcd;
use crate::support::tollgate::cli;

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
