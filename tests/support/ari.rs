//! A CA's renewal information (ARI, RFC 9773) in front of pebble, which has none
//! (Debian's pebble 2.4): an HTTPS server with pebble's own directory certificate that
//! serves pebble's directory with a `renewalInfo` URL of its own, and answers that with
//! the window the test set for the certificate asked about (else a window far ahead).
//! Accounts, orders and validations go to pebble itself.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::pebble::Pebble;
use super::tls_origin::TlsOrigin;

/// How long the CA tells clients to wait before asking again.
const RETRY_AFTER_SECS: u64 = 6 * 3600;

pub struct AriFront {
    /// The directory URL to give tollgate.
    pub directory: String,
    state: Arc<State>,
    _server: TlsOrigin,
}

#[derive(Default)]
struct State {
    directory: OnceLock<String>,
    /// Windows set by the test, by certificate identifier.
    windows: Mutex<HashMap<String, (SystemTime, SystemTime)>>,
    /// The identifiers asked about, in order.
    asked: Mutex<Vec<String>>,
}

impl AriFront {
    pub async fn start(pebble: &Pebble) -> AriFront {
        let body = pebble.client().get(&pebble.directory).send().await;
        let body = body.expect("pebble's directory").text().await;
        let mut directory: serde_json::Value =
            serde_json::from_str(&body.expect("directory body")).expect("JSON directory");
        let state = Arc::new(State::default());
        let handler_state = state.clone();
        let server = TlsOrigin::serve(
            &pebble.directory_leaf,
            None,
            Arc::new(move |req, _| answer(&handler_state, req.uri().path())),
        )
        .await;
        let base = format!("https://127.0.0.1:{}", server.addr.port());
        directory["renewalInfo"] = format!("{base}/renewal-info").into();
        let _ = state.directory.set(directory.to_string());
        AriFront {
            directory: format!("{base}/dir"),
            state,
            _server: server,
        }
    }

    /// From now on, `certificate`'s window is `start..end`.
    pub fn set_window(&self, certificate: &str, start: SystemTime, end: SystemTime) {
        let mut windows = self.state.windows.lock().expect("windows");
        windows.insert(certificate.to_owned(), (start, end));
    }

    /// The certificate identifiers asked about so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.state.asked.lock().expect("asked").clone()
    }
}

fn answer(state: &State, path: &str) -> Response<Full<Bytes>> {
    let json = |body: String| {
        Response::builder()
            .header("content-type", "application/json")
            .header("retry-after", RETRY_AFTER_SECS.to_string())
            .body(Full::new(Bytes::from(body)))
            .expect("response")
    };
    if path == "/dir" {
        return json(state.directory.get().cloned().unwrap_or_default());
    }
    let Some(certificate) = path.strip_prefix("/renewal-info/") else {
        return Response::builder()
            .status(404)
            .body(Full::default())
            .expect("response");
    };
    state
        .asked
        .lock()
        .expect("asked")
        .push(certificate.to_owned());
    let far = SystemTime::now() + Duration::from_secs(60 * 86_400);
    let windows = state.windows.lock().expect("windows");
    let (start, end) = windows
        .get(certificate)
        .copied()
        .unwrap_or((far, far + Duration::from_secs(86_400)));
    json(
        serde_json::json!({ "suggestedWindow": {
            "start": humantime::format_rfc3339_seconds(start).to_string(),
            "end": humantime::format_rfc3339_seconds(end).to_string(),
        }})
        .to_string(),
    )
}
