//! The pools of the current config, by name. Compiling a new snapshot reuses a pool
//! whose definition did not change, so its health state, in-flight counts and idle
//! connections carry over a reload; `commit` then makes the new set current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

use super::Pool;
use crate::config::raw::UpstreamSection;

#[derive(Default)]
pub struct PoolRegistry {
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    next_id: AtomicU64,
    changed: Notify,
}

impl PoolRegistry {
    /// The current pool named `name` if its definition is `def`, else a new one.
    /// Nothing changes until `commit`.
    pub fn get_or_build(&self, name: &str, def: &UpstreamSection) -> Result<Arc<Pool>, String> {
        if let Some(pool) = self.lock().get(name).filter(|p| p.same_definition(def)) {
            return Ok(pool.clone());
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        Pool::build(name, id, def).map(Arc::new)
    }

    /// Makes `pools` the current set; pools left out stop being health-checked.
    pub fn commit(&self, pools: HashMap<String, Arc<Pool>>) {
        *self.lock() = pools;
        self.changed.notify_one();
    }

    pub fn pools(&self) -> Vec<Arc<Pool>> {
        self.lock().values().cloned().collect()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.lock().values().any(|p| p.id == id)
    }

    /// Resolves after the next `commit` (or at once if one happened unobserved).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Pool>>> {
        // The map is replaced whole, so a poisoned lock still holds a consistent value.
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn upstream(retries: usize) -> UpstreamSection {
        let text = format!("[listeners.a]\naddr = \"127.0.0.1:1\"\n[upstreams.u]\ntargets = [\"127.0.0.1:2\"]\nretries = {retries}\n");
        let raw = load_str(&text, "t").expect("valid").raw;
        raw.upstreams["u"].clone()
    }

    #[test]
    fn reuses_a_committed_pool_only_while_its_definition_is_unchanged() {
        let registry = PoolRegistry::default();
        let first = registry.get_or_build("u", &upstream(1)).expect("pool");
        assert!(
            !Arc::ptr_eq(
                &first,
                &registry.get_or_build("u", &upstream(1)).expect("pool")
            ),
            "nothing committed yet"
        );
        registry.commit(HashMap::from([("u".to_owned(), first.clone())]));
        assert!(Arc::ptr_eq(
            &first,
            &registry.get_or_build("u", &upstream(1)).expect("pool")
        ));
        let changed = registry.get_or_build("u", &upstream(2)).expect("pool");
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(registry.contains(first.id) && !registry.contains(changed.id));
    }
}
