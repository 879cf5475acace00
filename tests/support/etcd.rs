//! A real single-member `etcd` on free loopback ports with its data in a temporary
//! directory, that a test can stop and start again on the same ports and data, and
//! `etcdctl` against it.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{eventually, tollgate::free_port};

pub struct Etcd {
    pub client_port: u16,
    peer_port: u16,
    /// With TLS: the files etcd serves and trusts, and a client's.
    tls: Option<EtcdTls>,
    child: Option<Child>,
    data: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        Self::start_with(None).await
    }

    /// Starts etcd answering clients over TLS only, with a client certificate.
    pub async fn start_tls(tls: EtcdTls) -> Etcd {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<EtcdTls>) -> Etcd {
        let mut etcd = Etcd {
            client_port: free_port(),
            peer_port: free_port(),
            tls,
            child: None,
            data: tempfile::tempdir().expect("tempdir"),
        };
        etcd.restart().await;
        etcd
    }

    /// Starts (again) on the same ports and data, and waits until it answers.
    pub async fn restart(&mut self) {
        self.restart_on(self.client_port).await;
    }

    /// Starts (again) with the same data, answering clients on `client_port` from now
    /// on (where clients that know only the old one cannot reach it).
    pub async fn restart_on(&mut self, client_port: u16) {
        self.client_port = client_port;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let member = Member {
            name: "t",
            data: self.data.path(),
            client_port,
            peer_port: self.peer_port,
            tls: self.tls.as_ref(),
        };
        self.child = Some(member.spawn(&format!("t={peer}")));
        let up = eventually(Duration::from_secs(20), || async {
            self.ctl(&["endpoint", "health"]).status.success()
        })
        .await;
        assert!(up, "etcd did not answer on {}", self.client_port);
    }

    /// Kills etcd: its clients' connections drop, new ones are refused.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// `etcdctl` (v3 API) against this etcd, bounded in time.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url(), "--command-timeout=5s"])
            .args(self.tls.iter().flat_map(|t| {
                [
                    format!("--cacert={}", t.ca.display()),
                    format!("--cert={}", t.client_cert.display()),
                    format!("--key={}", t.client_key.display()),
                ]
            }))
            .args(args)
            .output()
            .expect("etcdctl (scripts/deps.sh installs etcd-client)")
    }

    /// The value of `key`, `None` when it is absent.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self.ctl(&["get", key, "--print-value-only"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut value = out.stdout;
        // etcdctl ends the value with a newline; an absent key prints nothing.
        (!value.is_empty()).then(|| {
            value.pop();
            value
        })
    }
}

/// The PEM files of an etcd that serves TLS and asks for client certificates.
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One etcd process's settings.
struct Member<'a> {
    name: &'a str,
    data: &'a std::path::Path,
    client_port: u16,
    peer_port: u16,
    tls: Option<&'a EtcdTls>,
}

impl Member<'_> {
    fn spawn(&self, initial_cluster: &str) -> Child {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        Command::new("etcd")
            .args(["--name", self.name, "--data-dir"])
            .arg(self.data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", initial_cluster])
            .args(["--initial-cluster-token", "tollgate-test"])
            .args(self.tls.iter().flat_map(|t| {
                [
                    format!("--cert-file={}", t.cert.display()),
                    format!("--key-file={}", t.key.display()),
                    format!("--trusted-ca-file={}", t.ca.display()),
                    "--client-cert-auth".to_owned(),
                ]
            }))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (scripts/deps.sh installs etcd-server)")
    }
}

/// A three-member etcd cluster on loopback, whose members a test can stop.
pub struct EtcdCluster {
    client_ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _data: Vec<tempfile::TempDir>,
}

impl EtcdCluster {
    /// Starts three members and waits until the cluster answers.
    pub async fn start() -> EtcdCluster {
        let names = ["m0", "m1", "m2"];
        let ports: Vec<(u16, u16)> = names.iter().map(|_| (free_port(), free_port())).collect();
        let data: Vec<tempfile::TempDir> = names
            .iter()
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let initial: Vec<String> = names
            .iter()
            .zip(&ports)
            .map(|(name, (_, peer))| format!("{name}=http://127.0.0.1:{peer}"))
            .collect();
        let children = names
            .iter()
            .zip(&ports)
            .zip(&data)
            .map(|((name, &(client_port, peer_port)), data)| {
                let member = Member {
                    name,
                    data: data.path(),
                    client_port,
                    peer_port,
                    tls: None,
                };
                Some(member.spawn(&initial.join(",")))
            })
            .collect();
        let cluster = EtcdCluster {
            client_ports: ports.iter().map(|&(client, _)| client).collect(),
            children,
            _data: data,
        };
        let urls = cluster.urls().join(",");
        let up = eventually(Duration::from_secs(30), || async {
            Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args([
                    "--endpoints",
                    &urls,
                    "--command-timeout=5s",
                    "endpoint",
                    "health",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .await;
        assert!(up, "the etcd cluster did not come up on {urls}");
        cluster
    }

    /// Every member's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.client_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// Kills member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
