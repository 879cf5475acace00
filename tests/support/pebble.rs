//! A real ACME server (RFC 8555) for tests: Debian's `pebble` on free loopback ports,
//! its directory served over TLS with a certificate from the test's own CA, and
//! `pebble-challtestsrv` as its only DNS server, answering every name with 127.0.0.1,
//! so that pebble's validation reaches the tollgate under test on the ports the test
//! gives (`http_port` for HTTP-01, `tls_port` for TLS-ALPN-01). Pebble's random
//! sleeps, refused nonces and reused authorizations are off: every order is validated
//! at once, the same way each run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::certs::{Ca, Leaf};
use super::{eventually, tollgate::free_port};

pub struct Pebble {
    /// The ACME directory's URL.
    pub directory: String,
    /// The PEM file of the CA that signed the directory's TLS certificate (what an
    /// ACME client must trust to reach it).
    pub directory_ca: PathBuf,
    /// The directory's TLS certificate (for a server standing in front of it).
    pub directory_leaf: Leaf,
    /// Pebble's management interface (its issuing roots).
    management: String,
    children: Vec<Child>,
    _files: tempfile::TempDir,
}

/// What pebble validates against and how long its certificates last.
pub struct PebbleSettings {
    /// The port pebble connects to for HTTP-01 challenges.
    pub http_port: u16,
    /// The port pebble connects to for TLS-ALPN-01 challenges.
    pub tls_port: u16,
    /// The validity of the certificates it issues (pebble's default when `None`).
    pub validity: Option<Duration>,
    /// Names whose orders pebble refuses (its policy's block list).
    pub blocked: Vec<String>,
}

impl Pebble {
    /// Starts the DNS server and pebble, and waits until the directory answers.
    pub async fn start(settings: PebbleSettings) -> Pebble {
        let files = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("pebble test root");
        let directory_ca = ca.write(files.path(), "directory-ca");
        let directory_leaf = ca.server(&["localhost", "127.0.0.1"]);
        let (cert, key) = directory_leaf.write(files.path(), "pebble");
        let (port, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let mut children = vec![spawn(
            Command::new("pebble-challtestsrv")
                .args(["-dns01", &format!("127.0.0.1:{dns}")])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]),
            files.path(),
            "challtestsrv",
        )];
        let mut config = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": settings.http_port,
            "tlsPort": settings.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": settings.blocked,
        });
        if let Some(validity) = settings.validity {
            config["certificateValidityPeriod"] = validity.as_secs().into();
        }
        let config_path = files.path().join("pebble.json");
        let document = serde_json::json!({ "pebble": config });
        std::fs::write(&config_path, document.to_string()).expect("write pebble.json");
        children.push(spawn(
            Command::new("pebble")
                .arg("-config")
                .arg(&config_path)
                .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            files.path(),
            "pebble",
        ));
        let pebble = Pebble {
            directory: format!("https://127.0.0.1:{port}/dir"),
            directory_ca,
            directory_leaf,
            management: format!("https://127.0.0.1:{management}"),
            children,
            _files: files,
        };
        let client = pebble.client();
        let up = eventually(Duration::from_secs(20), || async {
            client
                .get(&pebble.directory)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(
            up,
            "pebble's directory did not answer at {}",
            pebble.directory
        );
        pebble
    }

    /// The root (PEM) pebble issues certificates under (made anew at each start).
    pub async fn issuing_root(&self) -> Vec<u8> {
        let resp = self
            .client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .expect("pebble's roots");
        assert!(
            resp.status().is_success(),
            "pebble's roots: {}",
            resp.status()
        );
        resp.bytes().await.expect("the root").to_vec()
    }

    /// An HTTPS client that trusts the directory's CA (and nothing else).
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.directory_ca).expect("read the directory's CA");
        reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
    }
}

/// Spawns `command` with its output in `dir/NAME.log`.
fn spawn(command: &mut Command, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let err = log.try_clone().expect("log file");
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} (scripts/deps.sh installs pebble): {e}"))
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
