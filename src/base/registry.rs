//! State that outlives a snapshot: items (upstream targets, rate-limit buckets,
//! remote JWKS key sets) kept across reloads while their definition is unchanged, and
//! the background loops that serve them (health checks, sweeps, key refreshes).
//!
//! Compiling a snapshot asks `get_or_build`; only `commit`, after the swap, changes
//! what is current. A background loop holds a `Weak` and ends once its item is no
//! longer current (and no request holds it any more): [`every`] is that loop.

use async_trait::async_trait;
use futures::future::BoxFuture;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Something kept across reloads while its definition compares equal.
pub trait Reusable: Send + Sync + 'static {
    type Definition: PartialEq;
    fn definition(&self) -> &Self::Definition;
}

pub struct Registry<T> {
    items: Mutex<HashMap<String, Arc<T>>>,
    changed: Notify,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }
}

impl<T: Reusable> Registry<T> {
    /// The current item under `key` if its definition is `def`, else a new one from
    /// `build`. Nothing changes until `commit`.
    pub fn get_or_build(
        &self,
        key: &str,
        def: &T::Definition,
        build: impl FnOnce() -> Result<T, String>,
    ) -> Result<Arc<T>, String> {
        if let Some(item) = self.lock().get(key).filter(|i| i.definition() == def) {
            return Ok(item.clone());
        }
        build().map(Arc::new)
    }

    /// Makes `items` the current set.
    pub fn commit(&self, items: HashMap<String, Arc<T>>) {
        *self.lock() = items;
        self.changed.notify_one();
    }

    pub fn items(&self) -> Vec<Arc<T>> {
        self.lock().values().cloned().collect()
    }

    pub fn is_current(&self, item: &Arc<T>) -> bool {
        self.lock().values().any(|i| Arc::ptr_eq(i, item))
    }

    /// Resolves after the next `commit` (or at once if one happened unobserved).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<T>>> {
        // The map is replaced whole, so a poisoned lock still holds a consistent value.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The loop every background chore of one item runs (health checks, DNS refreshes,
/// bucket sweeps, jail refreshes): `round` after `first`, then again after what each
/// round returns (`None`: no more rounds), until the item is gone or no longer
/// current. Returns the item when it left the registry while still in use (for a
/// last word, such as zeroing its gauges).
pub async fn every<T: Reusable>(
    item: Weak<T>,
    registry: &Registry<T>,
    first: Duration,
    mut round: impl FnMut(Arc<T>) -> BoxFuture<'static, Option<Duration>>,
) -> Option<Arc<T>> {
    let mut wait = first;
    loop {
        tokio::time::sleep(wait).await;
        let current = item.upgrade()?;
        if !registry.is_current(&current) {
            return Some(current);
        }
        wait = round(current).await?;
    }
}

/// The loop run for one item: returns when the item is gone.
pub type ItemLoop<T> =
    Box<dyn Fn(Weak<T>, Arc<Registry<T>>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A background service that starts `item_loop` once for every item that becomes
/// current (and `wants` a loop), now and after every reload.
pub struct PerItemTasks<T> {
    registry: Arc<Registry<T>>,
    wants: fn(&T) -> bool,
    item_loop: ItemLoop<T>,
}

impl<T: Reusable> PerItemTasks<T> {
    pub fn new(
        registry: Arc<Registry<T>>,
        wants: fn(&T) -> bool,
        item_loop: impl Fn(Weak<T>, Arc<Registry<T>>) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        Self {
            registry,
            wants,
            item_loop: Box::new(item_loop),
        }
    }
}

#[async_trait]
impl<T: Reusable> BackgroundService for PerItemTasks<T> {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut started: HashSet<usize> = HashSet::new();
        loop {
            let changed = self.registry.changed();
            let items = self.registry.items();
            // Items gone from the registry end their own loops; forget them.
            started.retain(|p| items.iter().any(|i| Arc::as_ptr(i) as usize == *p));
            for item in items {
                if (self.wants)(&item) && started.insert(Arc::as_ptr(&item) as usize) {
                    tokio::spawn((self.item_loop)(
                        Arc::downgrade(&item),
                        self.registry.clone(),
                    ));
                }
            }
            tokio::select! {
                _ = changed => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
