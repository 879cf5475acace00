//! Whether this process should be sent traffic: not ready while starting (until every
//! listener accepts connections), ready while serving, and not ready again from the
//! moment it is told to stop or hand its sockets over (SIGTERM, SIGQUIT), so that a
//! load balancer polling `GET /readyz` stops sending before the process goes.
//! [`LifecycleWatch`] is the background service that moves it along: it connects to
//! every listener until each accepts, and listens for those signals (beside Pingora,
//! which acts on them) and for SIGUSR1, which begins the drain alone.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

const PROBE_EVERY: Duration = Duration::from_millis(50);

const STARTING: u8 = 0;
const SERVING: u8 = 1;
const DRAINING: u8 = 2;

pub struct Lifecycle {
    state: AtomicU8,
    /// Turns true when the drain begins.
    drain: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(STARTING),
            drain: watch::channel(false).0,
        }
    }
}

impl Lifecycle {
    /// Every listener accepts connections (unless a drain began meanwhile).
    pub fn serving(&self) {
        let _ = self
            .state
            .compare_exchange(STARTING, SERVING, Relaxed, Relaxed);
    }

    /// The process was told to stop or to hand its sockets over.
    pub fn draining(&self) {
        self.state.store(DRAINING, Relaxed);
        self.drain.send_replace(true);
    }

    pub fn is_ready(&self) -> bool {
        self.state.load(Relaxed) == SERVING
    }

    pub fn is_draining(&self) -> bool {
        self.state.load(Relaxed) == DRAINING
    }

    /// A watch that changes to `true` when the drain begins (Pingora's own shutdown
    /// watch changes only when the listeners close, 5 s later on an upgrade).
    pub fn drain_watch(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }
}

/// Moves a [`Lifecycle`] along: serving once `listeners` accept, draining on a signal.
pub struct LifecycleWatch {
    pub lifecycle: Arc<Lifecycle>,
    pub listeners: Vec<SocketAddr>,
}

impl LifecycleWatch {
    /// Whether every listener accepts a connection now.
    async fn all_accept(&self) -> bool {
        for addr in &self.listeners {
            let mut target = *addr;
            if target.ip().is_unspecified() {
                target.set_ip(match target {
                    SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
                });
            }
            if tokio::net::TcpStream::connect(target).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// The signals that begin a drain: SIGTERM and SIGQUIT (on which Pingora also stops,
/// or hands its sockets over), and SIGUSR1 (`tollgate stop` with a `drain_delay`: the
/// drain alone, the listeners stay open).
struct DrainSignals([Signal; 3]);

impl DrainSignals {
    fn new() -> std::io::Result<Self> {
        Ok(Self([
            signal(SignalKind::terminate())?,
            signal(SignalKind::quit())?,
            signal(SignalKind::user_defined1())?,
        ]))
    }

    async fn recv(&mut self) {
        let [term, quit, usr1] = &mut self.0;
        tokio::select! {
            _ = term.recv() => {}
            _ = quit.recv() => {}
            _ = usr1.recv() => {}
        }
    }
}

#[async_trait]
impl BackgroundService for LifecycleWatch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut drain = match DrainSignals::new() {
            Ok(signals) => signals,
            Err(e) => {
                log::error!(
                    "cannot watch the drain signals ({e}): /readyz will not report a drain"
                );
                return;
            }
        };
        while !self.lifecycle.is_ready() && !self.lifecycle.is_draining() {
            if self.all_accept().await {
                self.lifecycle.serving();
                // After an upgrade, this process is the unit's main process now.
                super::sd_notify::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = drain.recv() => self.lifecycle.draining(),
                _ = shutdown.changed() => return,
            }
        }
        tokio::select! {
            _ = drain.recv() => {}
            _ = shutdown.changed() => {}
        }
        self.lifecycle.draining();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_between_serving_and_draining() {
        let life = Lifecycle::default();
        assert!(!life.is_ready(), "starting");
        life.serving();
        assert!(life.is_ready());
        life.draining();
        assert!(!life.is_ready() && life.is_draining());
        life.serving();
        assert!(!life.is_ready(), "a drain is final");
    }
}
