//! A real single-member `etcd` on free loopback ports with its data in a temporary
//! directory, that a test can stop and start again on the same ports and data, and
//! `etcdctl` against it.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{eventually, tollgate::free_port};

pub struct Etcd {
    pub client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    data: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        let mut etcd = Etcd {
            client_port: free_port(),
            peer_port: free_port(),
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
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(self.data.path())
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
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (scripts/deps.sh installs etcd-server)");
        self.child = Some(child);
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
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// `etcdctl` (v3 API) against this etcd, bounded in time.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url(), "--command-timeout=5s"])
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

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
