//! `tollgate check`: every error with its place, exit 1; a summary and exit 0 for a
//! valid file; and every shipped example under `conf/` is valid.

use crate::support::tollgate::cli;

#[test]
fn broken_file_lists_every_error_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        r#"[server]
workers = 0

[listeners.a]
addr = "127.0.0.1:7000"

[listeners.b]
addr = "127.0.0.1:7000"
colour = "blue"

[listeners.c]
addr = "127.0.0.1:7000"

[upstreams.empty]
targets = []

[upstreams.slow]
targets = ["127.0.0.1:9000"]
read_timeout = "forever"

[[routes]]
name = "orders"
upstream = "ordres"
"#,
    )
    .expect("write");
    let out = cli(&["check", "-c"], Some(&path));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display();
    for expected in [
        format!("{file}:2:11: server.workers: must be at least 1"),
        format!("{file}:9:1: listeners.b.colour: unknown field `colour`"),
        format!("{file}:12:8: listeners.c.addr: address 127.0.0.1:7000 is already used by listener \"a\""),
        format!("{file}:15:11: upstreams.empty.targets: needs at least one target"),
        format!("{file}:19:16: upstreams.slow.read_timeout: invalid duration \"forever\""),
        format!("{file}:23:12: routes[0].upstream: no upstream named \"ordres\""),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("6 errors"), "{stderr}");
}

#[test]
fn every_shipped_config_is_valid() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut checked = 0;
    // From another working directory: relative paths in a config (key files) are
    // relative to the file, not to where tollgate runs.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&conf).expect("conf/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = std::process::Command::new(crate::support::tollgate::BIN)
                .args(["check", "-c"])
                .arg(&path)
                .current_dir(elsewhere.path())
                .output()
                .expect("check");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(": ok ("), "{stdout}");
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected conf/tollgate.toml and conf/auth.toml"
    );
}
