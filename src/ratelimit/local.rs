//! The in-process bucket store: one `u64` (the bucket's TAT) per key hash, in 64
//! mutex-guarded shards (a lock is held for a map lookup, never across an await).
//!
//! Memory is bounded: a bucket that has refilled completely is identical to a new
//! one, so sweeps drop them and lose nothing; the number of keys is capped. About 20
//! to 40 bytes per key (a 16-byte entry in a hash table kept between 1/2 and 7/8
//! full). When a shard is at its share of the cap it sweeps itself (at most every
//! 100 ms); a new key that still finds no room is admitted untracked and counted, so
//! a flood of distinct keys can neither grow memory nor throttle innocent clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use super::gcra::{Quota, Take};

const SHARDS: usize = 64;
const EMERGENCY_SWEEP_EVERY: u64 = 100_000_000;

struct Shard {
    buckets: HashMap<u64, u64>,
    last_sweep: u64,
}

pub struct LocalStore {
    shards: Box<[Mutex<Shard>]>,
    untracked: AtomicU64,
}

impl Default for LocalStore {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalStore {
    pub fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    buckets: HashMap::new(),
                    last_sweep: 0,
                })
            })
            .collect();
        Self {
            shards,
            untracked: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let i = (key % SHARDS as u64) as usize;
        // A poisoned shard holds plain numbers, still consistent.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `cost` tokens of `key`'s bucket; a new key gets a bucket while the store
    /// holds fewer than `max_keys` (the policy's setting, which a reload may change).
    pub fn take(&self, key: u64, quota: &Quota, now: u64, cost: u64, max_keys: usize) -> Take {
        let per_shard_cap = max_keys.div_ceil(SHARDS).max(1);
        let mut shard = self.shard(key);
        if let Some(tat) = shard.buckets.get_mut(&key) {
            let taken = quota.take(*tat, now, cost);
            if let Take::Admit { tat: t, .. } = taken {
                *tat = t;
            }
            return taken;
        }
        let taken = quota.take(0, now, cost);
        if let Take::Admit { tat, .. } = taken {
            if shard.buckets.len() >= per_shard_cap
                && now.saturating_sub(shard.last_sweep) >= EMERGENCY_SWEEP_EVERY
            {
                sweep_shard(&mut shard, now);
            }
            if shard.buckets.len() < per_shard_cap {
                shard.buckets.insert(key, tat);
            } else {
                self.untracked.fetch_add(1, Relaxed);
            }
        }
        taken
    }

    pub fn refund(&self, key: u64, quota: &Quota, cost: u64) {
        if let Some(tat) = self.shard(key).buckets.get_mut(&key) {
            *tat = quota.refund(*tat, cost);
        }
    }

    /// Drops every bucket that is full again at `now`; returns how many keys remain.
    pub fn sweep(&self, now: u64) -> usize {
        (0..SHARDS)
            .map(|i| {
                let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
                sweep_shard(&mut shard, now);
                shard.buckets.len()
            })
            .sum()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        (0..SHARDS)
            .map(|i| self.shards[i].lock().map_or(0, |s| s.buckets.len()))
            .sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    /// Bytes held by the bucket tables (entries and control bytes, at capacity).
    pub fn table_bytes(&self) -> usize {
        let per_slot = std::mem::size_of::<(u64, u64)>() + 1;
        (0..SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .map_or(0, |s| s.buckets.capacity() * per_slot)
            })
            .sum()
    }

    /// New keys admitted without a bucket because the store was full (since start).
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Relaxed)
    }
}

fn sweep_shard(shard: &mut Shard, now: u64) {
    shard.buckets.retain(|_, tat| *tat > now);
    shard.last_sweep = now;
    // Give memory back after a flood, not on every sweep.
    if shard.buckets.capacity() > 4 * shard.buckets.len() + 1024 {
        shard.buckets.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn limits_per_key_and_sweeps_refilled_buckets() {
        let (store, cap) = (LocalStore::new(), 1000);
        let q = Quota::new(1, Duration::from_secs(1), 2);
        let now = 100 * S;
        let admitted = (0..5)
            .filter(|_| matches!(store.take(7, &q, now, 1, cap), Take::Admit { .. }))
            .count();
        assert_eq!(admitted, 2);
        assert!(
            matches!(store.take(8, &q, now, 1, cap), Take::Admit { .. }),
            "another key is unaffected"
        );
        assert_eq!(store.sweep(now), 2, "nothing is full yet");
        assert_eq!(store.sweep(now + 3 * S), 0, "refilled buckets are dropped");
    }

    /// Resident set size of this process, from /proc.
    fn rss_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }

    #[test]
    fn a_flood_of_a_million_keys_is_given_back_by_one_sweep() {
        let (store, cap) = (LocalStore::new(), 2_000_000);
        // 100 tokens per second, burst 1: a bucket that took one token is full 10 ms later.
        let q = Quota::new(100, Duration::from_secs(1), 1);
        let now = 100 * S;
        let (rss_before, table_before) = (rss_bytes(), store.table_bytes());
        for key in 0..1_000_000u64 {
            assert!(matches!(
                store.take(key.wrapping_mul(0x9E37_79B9_7F4A_7C15), &q, now, 1, cap),
                Take::Admit { .. }
            ));
        }
        let (rss_flood, table_flood) = (rss_bytes(), store.table_bytes());
        assert_eq!(store.len(), 1_000_000);
        assert_eq!(store.sweep(now + S), 0, "every bucket refilled");
        let (rss_after, table_after) = (rss_bytes(), store.table_bytes());
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "1M keys: tables {:.1} -> {:.1} -> {:.1} MiB ({} B/key), RSS {:.1} -> {:.1} -> {:.1} MiB",
            mib(table_before), mib(table_flood), mib(table_after), table_flood / 1_000_000,
            mib(rss_before), mib(rss_flood), mib(rss_after)
        );
        assert!(
            table_flood / 1_000_000 <= 40,
            "{} bytes per key",
            table_flood / 1_000_000
        );
        assert!(
            table_after <= 64 * 1024 * 17,
            "tables kept {table_after} bytes after the sweep"
        );
        // The sweep gives the tables' memory back to the system. Other tests run in
        // this process too and allocate meanwhile, so RSS is compared across the
        // sweep alone (a moment), not across the flood.
        let freed = table_flood - table_after;
        assert!(
            rss_flood.saturating_sub(rss_after) >= freed / 10 * 8,
            "RSS {rss_flood} -> {rss_after} across a sweep that freed {freed} bytes of tables"
        );
    }

    #[test]
    fn a_full_store_admits_new_keys_untracked_and_keeps_memory_bounded() {
        let (store, cap) = (LocalStore::new(), SHARDS * 10);
        let q = Quota::new(1, Duration::from_secs(3600), 1);
        let now = 100 * S;
        for key in 0..100_000u64 {
            assert!(
                matches!(store.take(key, &q, now, 1, cap), Take::Admit { .. }),
                "key {key} was throttled"
            );
        }
        assert!(store.len() <= SHARDS * 10, "{} keys tracked", store.len());
        assert!(store.untracked() >= 100_000 - (SHARDS as u64) * 10);
    }
}
