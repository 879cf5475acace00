//! A real browser for tests: Debian's `chromium`, headless, on a fresh profile,
//! driven over the Chrome DevTools Protocol (its port read from `DevToolsActivePort`,
//! a page target's WebSocket): navigate, evaluate JavaScript in the page, take a
//! screenshot. Stopped when dropped.

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{eventually, Child};

pub struct Browser {
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().expect("tempdir");
        let child = Child(
            Command::new("chromium")
                .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
                .args(["--no-first-run", "--no-default-browser-check"])
                .args(["--remote-debugging-port=0", "--window-size=1280,1600"])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromium (scripts/deps.sh installs it)"),
        );
        let active = profile.path().join("DevToolsActivePort");
        let up = eventually(Duration::from_secs(30), || async { active.exists() }).await;
        assert!(up, "chromium did not open its DevTools port");
        let port = std::fs::read_to_string(&active).expect("DevToolsActivePort");
        let port = port.lines().next().expect("a port line").trim().to_owned();
        let list = format!("http://127.0.0.1:{port}/json/list");
        let list = super::client().get(&list).send().await;
        let list = list.expect("the DevTools target list").bytes().await;
        let targets: Vec<Value> = serde_json::from_slice(&list.expect("body")).expect("JSON");
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target");
        let (page, _) = tokio_tungstenite::connect_async(page)
            .await
            .expect("DevTools WebSocket");
        Browser {
            page,
            next_id: 0,
            _child: child,
            _profile: profile,
        }
    }

    /// One DevTools command; its result (events meanwhile are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.page
            .send(Message::Text(command.to_string().into()))
            .await
            .expect("send a DevTools command");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.page.next()).await;
            let message = message.expect("DevTools answered in time");
            let Some(Ok(Message::Text(text))) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).expect("JSON");
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        let loaded = self
            .until("document.readyState === 'complete' && location.href !== 'about:blank'")
            .await;
        assert!(loaded, "{url} did not load");
    }

    /// The value of `expression` in the page (a promise is awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params).await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Whether `expression` became true within 10 s.
    pub async fn until(&mut self, expression: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if self.eval(&format!("Boolean({expression})")).await == json!(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// A PNG of the whole page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let params = json!({ "format": "png", "captureBeyondViewport": true });
        let shot = self.call("Page.captureScreenshot", params).await;
        let data = shot["data"].as_str().expect("PNG data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64")
    }
}
