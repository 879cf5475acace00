//! Certificate rotation: a reload re-reads every certificate; new handshakes get the
//! new one while open connections keep theirs. A missing, broken, mismatched or
//! expired certificate rejects the reload (the old one keeps serving), and `tollgate
//! check` reports the same, plus certificates close to expiry as a warning.

use std::time::Duration;

use super::{served_sha256, start_tls, tls_config};
use crate::support::certs::Ca;
use crate::support::tollgate::cli;
use crate::support::{eventually, tls_client};

const TLS: &str = r#"certificates = [{ cert = "$DIR/api.pem", key = "$DIR/api.key" }]"#;
const BODY: &str = "[[routes]]\nname = \"hello\"\nrespond = { status = 200, body = \"hi\" }\n";

/// What a broken certificate setup is expected to log, and how to make it.
type Breakage<'a> = (&'a str, Box<dyn Fn() + 'a>);

#[tokio::test]
async fn reload_rotates_certificates_for_new_handshakes_only() {
    let ca = Ca::new("test ca");
    let first = ca.server(&["api.test"]);
    let (tg, port) = start_tls(TLS, BODY, |dir| {
        first.write(dir, "api");
    })
    .await;
    let url = format!("https://api.test:{port}/");
    let early = tls_client(&ca.pem(), "api.test", port, None);
    let resp = early.get(&url).send().await.expect("first");
    assert_eq!(served_sha256(&resp), first.sha256());
    resp.text().await.expect("body");

    let second = ca.server(&["api.test"]);
    second.write(tg.dir.path(), "api");
    assert!(
        tg.reload(&tls_config(port, TLS, BODY)).await,
        "{}",
        tg.log()
    );

    let fresh = tls_client(&ca.pem(), "api.test", port, None);
    let resp = fresh.get(&url).send().await.expect("after rotation");
    assert_eq!(served_sha256(&resp), second.sha256());
    // The connection opened before the reload is still up, with its certificate.
    let resp = early.get(&url).send().await.expect("open connection");
    assert_eq!(resp.status(), 200);
    assert_eq!(served_sha256(&resp), first.sha256());

    // Broken files reject the reload; the last good certificate keeps serving.
    let other = ca.server(&["api.test"]);
    let expired = ca.leaf_valid(&["api.test"], -10, -1);
    let dir = tg.dir.path();
    let cases: [Breakage; 4] = [
        (
            "no certificate in the file",
            Box::new(|| std::fs::write(dir.join("api.pem"), "garbage").expect("write")),
        ),
        (
            "No such file",
            Box::new(|| std::fs::remove_file(dir.join("api.pem")).expect("remove")),
        ),
        (
            "does not match the certificate",
            Box::new(|| {
                second.write(dir, "api");
                std::fs::write(dir.join("api.key"), other.key_pem()).expect("write key");
            }),
        ),
        (
            "expired on",
            Box::new(|| {
                expired.write(dir, "api");
            }),
        ),
    ];
    for (why, break_it) in cases {
        break_it();
        // `tollgate reload` checks the certificates first and does not signal...
        let out = cli(&["reload", "-c"], Some(&tg.config_path()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{stderr}");
        // ...and a SIGHUP sent anyway is refused by the process.
        assert!(
            !tg.sighup().await,
            "reload with a broken certificate ({why})"
        );
        // The reload is counted just before its rejection is logged.
        let rejected = eventually(Duration::from_secs(5), || async {
            let log = tg.log();
            let rejection = log.rsplit("config reload rejected").next().unwrap_or("");
            rejection.contains(why)
        })
        .await;
        assert!(rejected, "expected {why:?} in the rejection:\n{}", tg.log());
        let client = tls_client(&ca.pem(), "api.test", port, None);
        let resp = client.get(&url).send().await.expect("still serving");
        assert_eq!(served_sha256(&resp), second.sha256(), "after {why}");
    }
}

#[test]
fn check_reports_certificate_problems_and_warns_about_expiry() {
    let ca = Ca::new("test ca");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |name: &str| {
        let text = format!(
            "[listeners.secure]\naddr = \"127.0.0.1:8443\"\n\
             tls.certificates = [{{ cert = \"{name}.pem\", key = \"{name}.key\" }}, {{ cert = \"missing.pem\", key = \"missing.key\" }}]\n"
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        path
    };
    ca.leaf_valid(&["soon.test"], -1, 5)
        .write(dir.path(), "soon");
    ca.leaf_valid(&["old.test"], -10, -1)
        .write(dir.path(), "old");
    ca.server(&["ok.test"]).write(dir.path(), "missing");

    let out = cli(&["check", "-c"], Some(&config("soon")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: listeners.secure.tls.certificates[0]")
            && stderr.contains("within 14 days"),
        "{stderr}"
    );

    std::fs::remove_file(dir.path().join("missing.pem")).expect("remove");
    let out = cli(&["check", "-c"], Some(&config("old")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Both problems, each with its place.
    assert!(
        stderr.contains("listeners.secure.tls.certificates[0]: ") && stderr.contains("expired on"),
        "{stderr}"
    );
    assert!(
        stderr.contains("listeners.secure.tls.certificates[1]: ")
            && stderr.contains("missing.pem: No such file"),
        "{stderr}"
    );
}
