//! A real gRPC server and client (Python grpcio, `tests/support/grpc/`): the server
//! runs on a free loopback port for as long as the value lives; `call` runs the client
//! once and returns what it printed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/grpc")
        .join(name)
}

pub struct GrpcServer {
    pub port: u16,
    child: Child,
}

impl GrpcServer {
    pub fn start() -> GrpcServer {
        let mut child = Command::new("python3")
            .arg(script("server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with grpcio (scripts/deps.sh installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the gRPC server did not start: {line:?}"));
        GrpcServer { port, child }
    }

    /// `"127.0.0.1:PORT"` as a TOML string.
    pub fn target(&self) -> String {
        format!("\"127.0.0.1:{}\"", self.port)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls `method` ("unary" or "stream") of test.Echo at `target` with `request`.
pub fn call(target: &str, method: &str, request: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(script("client.py"))
        .args([target, method, request])
        .args(extra)
        .output()
        .expect("python3 with grpcio");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the gRPC client printed {stdout:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
