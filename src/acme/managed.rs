//! One set of domains, kept certified: a background chore whose rounds serve the
//! stored certificate (at start: nothing is ordered while it is good), ask the CA for
//! its suggested renewal window where it offers one (ARI, RFC 9773), order when there
//! is no certificate or its renewal is due, and wait after a failure (`schedule`). Each
//! order counts in `tollgate_acme_orders_total{result}`; what the set is waiting for
//! is in its [`SetStatus`] (`/readyz`, `tollgate acme status`).

use futures::future::BoxFuture;
use instant_acme::CertificateIdentifier;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::etcd::LOCK_WAIT;
use super::order::{account, order};
use super::proof::certificate_identifier;
use super::schedule::{backoff, in_window, renew_at};
use super::storage::{Storage, StoredCert, Turn};
use super::{AcmeState, CertSet};
use crate::base::background::Chore;
use crate::base::clock::Clock;
use crate::config::raw::AcmeSection;
use crate::observability::Metrics;
use crate::tls::ServerCert;

/// A certificate's renewal is looked at again at least this often (a reload may
/// have shortened `renew_before`; another node may have renewed it).
const RECHECK: Duration = Duration::from_secs(3600);
/// An order that takes longer has failed.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// While another node orders the set, its storage is looked at again this often.
const TAKEN_RETRY: Duration = LOCK_WAIT;
/// The CA's renewal window is asked for again after the wait it gives, within these.
const WINDOW_RECHECK: (Duration, Duration) = (RECHECK, Duration::from_secs(86_400));

pub struct Managed {
    pub set: CertSet,
    settings: Arc<AcmeSection>,
    storage: Arc<Storage>,
    state: Arc<AcmeState>,
    metrics: Arc<Metrics>,
    clock: Clock,
    status: Mutex<SetStatus>,
}

/// Where a set stands (times in Unix seconds).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SetStatus {
    /// Expiry of the certificate served; `None`: none yet, handshakes refused.
    pub not_after: Option<i64>,
    pub renew_at: Option<i64>,
    /// Failed orders in a row, the last one's reason and when the next is tried.
    pub failures: u32,
    pub last_error: Option<String>,
    pub next_attempt: Option<i64>,
    /// The CA's suggested renewal window for the certificate served.
    pub window: Option<Window>,
    /// When the CA is asked for it (again); 0: at the next round.
    #[serde(skip)]
    window_check: i64,
}

/// A CA's suggested renewal window (ARI) for one certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    pub certificate: CertificateIdentifier<'static>,
    pub start: i64,
    pub end: i64,
    /// The point in it drawn for this renewal.
    pub renew_at: i64,
}

impl Chore for Managed {
    fn first_round(&self) -> Duration {
        Duration::ZERO
    }

    fn round(self: Arc<Self>) -> BoxFuture<'static, Option<Duration>> {
        Box::pin(async move { Some(self.keep().await) })
    }
}

impl Managed {
    pub fn new(
        set: CertSet,
        settings: Arc<AcmeSection>,
        storage: Arc<Storage>,
        state: Arc<AcmeState>,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Self {
        Self {
            set,
            settings,
            storage,
            state,
            metrics,
            clock,
            status: Mutex::default(),
        }
    }

    pub fn status(&self) -> SetStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SetStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> i64 {
        i64::try_from(self.clock.unix_millis() / 1000).unwrap_or(i64::MAX)
    }

    /// One round: serve what there is, order what is due; the wait until the next.
    async fn keep(&self) -> Duration {
        let current = match self.serving() {
            Some(cert) => Some(cert),
            None => match self.stored().await {
                Ok(stored) => stored.inspect(|cert| self.serve(cert.clone())),
                Err(e) => return self.failed(e),
            },
        };
        if let Some(cert) = current.as_deref() {
            self.ask_window(cert).await;
            if let Some(wait) = self.until_due(cert) {
                return wait;
            }
        }
        if current.is_none() && self.lock().failures == 0 {
            log::warn!(
                "acme {}: no certificate yet for {} (listeners {}): their handshakes are \
                 refused until one is issued; ordering now",
                self.set.id,
                self.set.domains.join(", "),
                self.set.listeners.join(", ")
            );
        }
        let lock = match self.storage.turn(&self.set.id).await {
            Ok(Turn::Mine(lock)) => lock,
            Ok(Turn::Taken) => {
                log::info!("acme {}: another node is ordering it", self.set.id);
                return TAKEN_RETRY;
            }
            Err(e) => return self.failed(e),
        };
        // On a fleet, another node may have ordered while this one waited for the lock.
        if lock.is_some() {
            match self.stored().await {
                Ok(Some(stored)) => {
                    if self.until_due(&stored).is_some() {
                        self.serve(stored.clone());
                        self.ask_window(&stored).await;
                        if let Some(wait) = self.until_due(&stored) {
                            return wait;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => return self.failed(e),
            }
        }
        let ordered = tokio::time::timeout(ORDER_TIMEOUT, self.order()).await;
        match ordered.unwrap_or_else(|_| Err(format!("no certificate within {ORDER_TIMEOUT:?}"))) {
            Ok(cert) => {
                let result = match current {
                    Some(_) => "renewed",
                    None => "issued",
                };
                self.metrics.acme_order(result);
                log::info!(
                    "acme {}: certificate {result} for {}, valid until {}",
                    self.set.id,
                    self.set.domains.join(", "),
                    cert.not_after
                );
                self.ask_window(&cert).await;
                // Due again at once (a CA's window already begun): not before an hour.
                self.until_due(&cert).unwrap_or(RECHECK)
            }
            Err(e) => {
                self.metrics.acme_order("failed");
                self.failed(e)
            }
        }
    }

    /// The wait until `cert`'s renewal; `None` when it is due.
    fn until_due(&self, cert: &ServerCert) -> Option<Duration> {
        let due = self.renewal(cert);
        let now = self.now();
        (now < due).then(|| secs(due - now).min(RECHECK))
    }

    /// When `cert` is renewed: `renew_before` its expiry, or earlier where the CA's
    /// window for it says so.
    fn renewal(&self, cert: &ServerCert) -> i64 {
        let due = renew_at(cert.not_before, cert.not_after, self.settings.renew_before);
        let status = self.lock();
        let window = status.window.as_ref().filter(|w| {
            certificate_identifier(&cert.chain[0]).is_some_and(|id| id == w.certificate)
        });
        window.map_or(due, |w| due.min(w.renew_at))
    }

    /// Asks the CA for its renewal window for `cert` when it is time to (RFC 9773:
    /// after the wait the CA last gave). A CA without ARI is not asked again; one that
    /// fails to answer leaves renewal to `renew_before` until the next try.
    async fn ask_window(&self, cert: &ServerCert) {
        let now = self.now();
        if self.lock().window_check > now {
            return;
        }
        let Some(id) = certificate_identifier(&cert.chain[0]) else {
            self.lock().window_check = i64::MAX;
            return;
        };
        let asked = match self.account().await {
            Ok(account) => account.renewal_info(&id).await,
            Err(e) => {
                log::warn!("acme {}: the CA's renewal window: {e}", self.set.id);
                self.lock().window_check = now + secs_i64(RECHECK);
                return;
            }
        };
        let mut status = self.lock();
        let (info, retry_after) = match asked {
            Ok(answer) => answer,
            Err(instant_acme::Error::Unsupported(_)) => {
                status.window_check = i64::MAX;
                return;
            }
            Err(e) => {
                log::warn!(
                    "acme {}: the CA's renewal window could not be read ({e}); renewal \
                     follows renew_before",
                    self.set.id
                );
                status.window_check = now + secs_i64(RECHECK);
                return;
            }
        };
        let (start, end) = (
            info.suggested_window.start.unix_timestamp(),
            info.suggested_window.end.unix_timestamp(),
        );
        status.window_check = now + secs_i64(retry_after.clamp(WINDOW_RECHECK.0, WINDOW_RECHECK.1));
        if status
            .window
            .as_ref()
            .is_some_and(|w| (w.start, w.end) == (start, end))
        {
            return;
        }
        let window = Window {
            certificate: id,
            start,
            end,
            renew_at: in_window(start, end, rand::random()),
        };
        log::info!(
            "acme {}: the CA suggests renewing between {start} and {end}{}",
            self.set.id,
            (info.explanation_url.as_deref()).map_or(String::new(), |u| format!(" ({u})"))
        );
        status.renew_at = status.renew_at.map(|due| due.min(window.renew_at));
        status.window = Some(window);
    }

    /// The certificate served for the set, when it certifies all its domains.
    fn serving(&self) -> Option<Arc<ServerCert>> {
        let cert = self.state.certs.issued(&self.set.id)?;
        let names = cert.names();
        (self.set.domains.iter())
            .all(|d| names.contains(d))
            .then_some(cert)
    }

    /// The stored certificate, when it is good for the set.
    async fn stored(&self) -> Result<Option<Arc<ServerCert>>, String> {
        let Some(stored) = self.storage.certificate(&self.set.id).await? else {
            return Ok(None);
        };
        match self.usable(&stored) {
            Ok(cert) => Ok(Some(cert)),
            Err(why) => {
                log::warn!(
                    "acme {}: the stored certificate is not used: {why}",
                    self.set.id
                );
                Ok(None)
            }
        }
    }

    fn usable(&self, stored: &StoredCert) -> Result<Arc<ServerCert>, String> {
        let cert = ServerCert::from_pem(&stored.chain_pem, &stored.key_pem, self.set.id.clone())?;
        let names = cert.names();
        if let Some(missing) = self.set.domains.iter().find(|d| !names.contains(d)) {
            return Err(format!("it does not certify {missing}"));
        }
        if cert.not_after <= self.now() {
            return Err("it expired".into());
        }
        Ok(Arc::new(cert))
    }

    /// Orders, stores and serves a certificate for the set. A renewal the CA has a
    /// window for names the certificate it replaces (RFC 9773 §5).
    async fn order(&self) -> Result<Arc<ServerCert>, String> {
        let account = self.account().await?;
        let replaces = (self.lock().window.as_ref()).map(|w| w.certificate.clone());
        let stored = order(&account, &self.set, &self.state, &self.storage, replaces).await?;
        let cert = self.usable(&stored)?;
        self.storage.save_certificate(&self.set.id, &stored).await?;
        self.serve(cert.clone());
        Ok(cert)
    }

    async fn account(&self) -> Result<instant_acme::Account, String> {
        let mut cached = self.state.account.lock().await;
        if let Some((directory, account)) = cached.as_ref() {
            if *directory == self.settings.directory {
                return Ok(account.clone());
            }
        }
        let made = account(&self.settings, &self.storage).await?;
        *cached = Some((self.settings.directory.clone(), made.clone()));
        Ok(made)
    }

    /// Serves `cert` for the set's domains and records its dates.
    fn serve(&self, cert: Arc<ServerCert>) {
        self.state.certs.install(&self.set.domains, cert.clone());
        for listener in &self.set.listeners {
            self.metrics
                .certificate_expiry(listener, &self.set.id, "acme", cert.not_after);
        }
        let mut status = self.lock();
        *status = SetStatus {
            not_after: Some(cert.not_after),
            renew_at: Some(renew_at(
                cert.not_before,
                cert.not_after,
                self.settings.renew_before,
            )),
            ..SetStatus::default()
        };
    }

    /// Records a failure; the wait before the next attempt.
    fn failed(&self, error: String) -> Duration {
        let mut status = self.lock();
        status.failures += 1;
        let wait = backoff(status.failures, rand::random());
        log::warn!(
            "acme {}: ordering a certificate for {} failed ({} in a row), next attempt in {}s: {error}",
            self.set.id,
            self.set.domains.join(", "),
            status.failures,
            wait.as_secs()
        );
        status.last_error = Some(error);
        status.next_attempt = Some(self.now() + i64::try_from(wait.as_secs()).unwrap_or(0));
        wait
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
