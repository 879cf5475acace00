//! A real `redis-server` on a free loopback port, without persistence, that a test
//! can kill and start again on the same port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers PING.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/deps.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        let up = eventually(Duration::from_secs(10), || async move { ping(port) }).await;
        assert!(up, "redis-server did not answer on {port}");
    }

    /// Makes the server unresponsive for `seconds` (DEBUG SLEEP), without waiting.
    pub fn stall(&self, seconds: f64) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect redis");
        s.write_all(format!("DEBUG SLEEP {seconds}\r\n").as_bytes())
            .expect("stall");
        // The connection closes when `s` drops; the server sleeps all the same.
        std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            let _ = s.read(&mut buf);
        });
    }

    /// The keys matching `pattern` (`KEYS`, fine for a test's handful).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect redis");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.write_all(format!("KEYS {pattern}\r\nQUIT\r\n").as_bytes())
            .expect("keys");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        // "*N", then "$len" and the key for each, then QUIT's "+OK".
        reply
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.starts_with('+'))
            .map(str::to_owned)
            .collect()
    }

    /// Kills the server: connections drop, new ones are refused.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
