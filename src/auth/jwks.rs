//! Remote key sets (`jwks_url`): fetched in the background at start and every
//! `jwks_refresh`, and once more, on demand, when a token names an unknown `kid`:
//! single-flight (concurrent requests share one fetch) and rate-limited (at most one
//! per `jwks_min_refresh`). A failed fetch keeps the last good set serving.
//!
//! Sources live in a registry keyed by URL and settings, so a reload does not drop
//! (or refetch) a key set whose definition did not change.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

use super::keys::KeySet;
use crate::base::registry::{PerItemTasks, Registry, Reusable};
use crate::observability::Metrics;

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// URL and refresh settings: what makes two sources the same across a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksDefinition {
    pub url: String,
    pub refresh: Duration,
    pub min_refresh: Duration,
}

pub struct RemoteJwks {
    def: JwksDefinition,
    keys: watch::Sender<Arc<KeySet>>,
    /// Counts finished fetch attempts, successful or not: what on-demand waiters watch.
    attempts: watch::Sender<u64>,
    wanted: Notify,
    /// A fetch is running: on-demand callers wait for it instead of asking again.
    fetching: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    last_body: Mutex<Vec<u8>>,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

pub type JwksRegistry = Registry<RemoteJwks>;

impl Reusable for RemoteJwks {
    type Definition = JwksDefinition;

    fn definition(&self) -> &JwksDefinition {
        &self.def
    }
}

impl RemoteJwks {
    pub fn new(def: JwksDefinition, metrics: Arc<Metrics>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("JWKS client: {e}"))?;
        Ok(Self {
            def,
            keys: watch::Sender::new(Arc::new(KeySet::default())),
            attempts: watch::Sender::new(0),
            wanted: Notify::new(),
            fetching: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
            last_body: Mutex::new(Vec::new()),
            client,
            metrics,
        })
    }

    /// The key set now in force.
    pub fn current(&self) -> Arc<KeySet> {
        self.keys.borrow().clone()
    }

    /// For a token with an unknown `kid`: joins the fetch under way, or asks for one
    /// unless one was attempted within `min_refresh`; then waits (bounded) for it.
    pub async fn refresh_now(&self) {
        let mut attempts = self.attempts.subscribe();
        attempts.borrow_and_update();
        if !self.fetching.load(Ordering::SeqCst) {
            if self.recently_attempted() {
                return;
            }
            self.wanted.notify_one();
        }
        // A timeout or a closed channel: the caller goes on with the key set it finds.
        let _ =
            tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), attempts.changed()).await;
    }

    fn recently_attempted(&self) -> bool {
        let last = self.last_attempt.lock().map(|l| *l).unwrap_or(None);
        last.is_some_and(|t| t.elapsed() < self.def.min_refresh)
    }

    /// One fetch; publishes a new key set only when the document changed.
    async fn fetch(&self) {
        self.fetching.store(true, Ordering::SeqCst);
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some(Instant::now());
        }
        match self.download().await.and_then(|body| self.publish(body)) {
            Ok(changed) => {
                self.metrics
                    .jwks_fetch(&self.def.url, if changed { "updated" } else { "unchanged" });
            }
            Err(e) => {
                self.metrics.jwks_fetch(&self.def.url, "error");
                log::warn!("JWKS {}: {e}; keeping the last good key set", self.def.url);
            }
        }
        self.fetching.store(false, Ordering::SeqCst);
        self.attempts.send_modify(|n| *n += 1);
    }

    async fn download(&self) -> Result<Vec<u8>, String> {
        let mut resp = self
            .client
            .get(&self.def.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn publish(&self, body: Vec<u8>) -> Result<bool, String> {
        let mut last = self.last_body.lock().map_err(|_| "poisoned".to_owned())?;
        if *last == body {
            return Ok(false);
        }
        let set = KeySet::from_jwks(&body)?;
        if set.is_empty() {
            return Err("no usable signing key in the document".into());
        }
        log::info!("JWKS {}: {} keys loaded", self.def.url, set.len());
        self.keys.send_replace(Arc::new(set));
        *last = body;
        Ok(true)
    }
}

/// The background service fetching every current remote key set.
pub fn jwks_refresher(registry: Arc<JwksRegistry>) -> PerItemTasks<RemoteJwks> {
    PerItemTasks::new(registry, |_| true, refresh_loop)
}

/// Fetches at start, then every `refresh`, and when asked (at most once per
/// `min_refresh`), until the source is gone.
fn refresh_loop(source: Weak<RemoteJwks>, registry: Arc<JwksRegistry>) -> BoxFuture<'static, ()> {
    async move {
        let mut scheduled = true;
        loop {
            let Some(jwks) = source.upgrade() else { return };
            if !registry.is_current(&jwks) {
                return;
            }
            if scheduled || !jwks.recently_attempted() {
                jwks.fetch().await;
            }
            let refresh = jwks.def.refresh;
            // Wait for the schedule or an on-demand request; a source that is no longer
            // current is dropped at the next wake.
            let wanted = {
                let jwks = jwks.clone();
                async move { jwks.wanted.notified().await }
            };
            drop(jwks);
            scheduled = tokio::select! {
                _ = tokio::time::sleep(refresh) => true,
                _ = wanted => false,
            };
        }
    }
    .boxed()
}
