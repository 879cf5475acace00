//! A fleet node following its cluster: a watch on the document and its files from the
//! revision the node read, and each change applied as a reload is (validate, compile,
//! one atomic swap; `Reloader::reload_from`) from the revision written to the cache,
//! which becomes `current` only once applied. A document that fails is refused and
//! counted as a failed reload; the node keeps serving the last good one. When etcd is
//! away the node keeps serving and reconnects with backoff and jitter
//! (`tollgate_fleet_connected` 0); after a reconnect or a compaction it reads the
//! latest revision again, so no change is missed and none is applied twice or out of
//! order. While connected, the node's record (`nodes/HOST:PID`: the revision it
//! serves, the document's SHA-256, when it loaded it) is kept under a lease of 10 s.

use async_trait::async_trait;
use log::{info, warn};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::layout::Layout;
use super::node::Follow;
use super::store::{Fleet, Stored};
use crate::state::reload::Reloader;

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// A node's record lives this long past its last keep-alive.
const LEASE_TTL: i64 = 10;
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(3);

pub struct FollowCluster {
    follow: Mutex<Follow>,
    /// This node's name under `nodes/`: `HOST:PID`.
    id: String,
    reloader: Arc<Reloader>,
    connected: prometheus::IntGauge,
}

impl FollowCluster {
    pub fn new(follow: Follow, reloader: Arc<Reloader>, connected: prometheus::IntGauge) -> Self {
        let host = super::host_name();
        Self {
            follow: Mutex::new(follow),
            id: format!("{host}:{}", std::process::id()),
            reloader,
            connected,
        }
    }

    fn follow(&self) -> std::sync::MutexGuard<'_, Follow> {
        self.follow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects, catches up, registers the node, then applies what the watch reports
    /// and keeps the node's lease alive, until the watch or etcd fails (the error) or
    /// etcd says the history was compacted (`Ok`: read the latest again).
    async fn follow_once(&self, retry: &mut Duration) -> Result<(), String> {
        let (access, cluster) = {
            let f = self.follow();
            (f.access()?, f.fleet.cluster.clone())
        };
        let mut fleet = Fleet::connect(&access, Layout::new(&cluster)?).await?;
        let latest = fleet.read(None).await?;
        let mut from = match latest {
            Some(stored) => {
                let read_at = stored.read_at;
                self.apply(stored).await;
                read_at
            }
            None => self.follow().read_at,
        };
        let mut watch = fleet.watch(from + 1).await?;
        let (lease, mut keeper, mut acks) = fleet.lease(LEASE_TTL).await?;
        self.register(&mut fleet, lease).await?;
        self.connected.set(1);
        *retry = FIRST_RETRY;
        let mut beat = tokio::time::interval(KEEP_ALIVE_EVERY);
        loop {
            let response = tokio::select! {
                message = watch.message() => message.map_err(|e| format!("the watch failed: {e}"))?,
                _ = beat.tick() => {
                    keeper.keep_alive().await.map_err(|e| format!("the node's lease: {e}"))?;
                    match acks.message().await {
                        Ok(Some(ack)) if ack.ttl() > 0 => continue,
                        _ => return Err("the node's lease expired".to_owned()),
                    }
                }
            };
            let Some(response) = response else {
                return Err("etcd ended the watch".to_owned());
            };
            if response.compact_revision() > 0 {
                warn!("fleet: etcd compacted the history past revision {from}: reading the latest again");
                return Ok(());
            }
            if response.canceled() {
                return Err(format!(
                    "etcd canceled the watch: {}",
                    response.cancel_reason()
                ));
            }
            let changed = response
                .events()
                .iter()
                .filter_map(|e| e.kv())
                .any(|kv| fleet.is_config_key(kv.key()));
            let Some(at) = response.header().map(|h| h.revision()).filter(|_| changed) else {
                continue;
            };
            match fleet.read(Some(at)).await? {
                Some(stored) => {
                    self.apply(stored).await;
                    self.register(&mut fleet, lease).await?;
                }
                None => warn!(
                    "fleet: cluster {cluster}'s config was deleted; still serving the last one"
                ),
            }
            from = at;
        }
    }

    /// Writes this node's record (the revision it serves) under `lease`.
    async fn register(&self, fleet: &mut Fleet, lease: i64) -> Result<(), String> {
        let record = self.follow().record();
        fleet.register(&self.id, &record, lease).await
    }

    /// Applies `stored` unless it is the bundle last tried (served, or refused: a refused
    /// one is not tried again until it changes): written to the cache, reloaded from
    /// there, then made current. A failure is logged and counted by the reloader.
    async fn apply(&self, stored: Stored) {
        let (staged, origin) = {
            let mut f = self.follow();
            f.read_at = stored.read_at;
            if f.applied.as_ref() == Some(&stored.bundle) {
                return;
            }
            f.applied = Some(stored.bundle.clone());
            (
                f.stage(stored.revision, &stored.bundle),
                f.origin(stored.revision),
            )
        };
        let path = match staged {
            Ok(path) => path,
            Err(e) => {
                let what = format!("fleet revision {}", stored.revision);
                self.reloader.refused(&what, &format!("{e:#}"));
                return;
            }
        };
        let reloader = self.reloader.clone();
        let reloaded =
            tokio::task::spawn_blocking(move || reloader.reload_from(&path, origin).is_ok())
                .await
                .unwrap_or(false);
        if !reloaded {
            warn!(
                "fleet: revision {} refused; serving the last good config",
                stored.revision
            );
            return;
        }
        match self.follow().commit(stored.revision, &stored.bundle) {
            Ok(()) => info!("fleet: serving revision {}", stored.revision),
            Err(e) => warn!(
                "fleet: revision {} applied, but not cached: {e:#}",
                stored.revision
            ),
        }
    }
}

#[async_trait]
impl BackgroundService for FollowCluster {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut retry = FIRST_RETRY;
        loop {
            tokio::select! {
                outcome = self.follow_once(&mut retry) => {
                    if let Err(e) = outcome {
                        self.connected.set(0);
                        let wait = jittered(retry);
                        warn!("fleet: {e}; still serving, trying again in {wait:?}");
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => return,
                        }
                        retry = (retry * 2).min(LONGEST_RETRY);
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// `base` plus up to half of it again, so that nodes do not retry in step.
fn jittered(base: Duration) -> Duration {
    base + base.mul_f64(rand::random::<f64>() / 2.0)
}
