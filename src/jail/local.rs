//! A jail's in-process state: strikes per key and active bans, in milliseconds of the
//! caller's clock.
//!
//! Strikes are counted in a sliding window, estimated from two fixed windows (the
//! count of the current one plus the previous one's, weighted by how much of it the
//! sliding window still covers), so a burst across a window boundary counts whole.
//!
//! Memory is bounded by `max_keys` for each map. A full strike table is swept of keys
//! with no strike in the last two windows; if it is still over 7/8 full, every strike
//! count is dropped (bans are kept): a flood of distinct keys can make the jail forget
//! strikes, never lift a ban or grow memory, and costs O(1) per strike amortized. A
//! full ban table makes room by dropping the ban that ends soonest.
//!
//! A shared jail mirrors Redis's bans here (`replace_shared`); bans made here while
//! Redis could not answer are local and stay until they end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};

#[derive(Debug, Clone, Copy)]
struct Strikes {
    /// Index of the current fixed window (`now / window`).
    window: u64,
    count: u32,
    previous: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: u64,
    /// Mirrored from Redis (else made here).
    shared: bool,
    /// When it was recorded here.
    since: u64,
}

/// What a strike led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Strike {
    Counted,
    /// The key reached `max_strikes`: it is banned until this time.
    Banned {
        until: u64,
    },
}

/// How strikes turn into bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub max_strikes: u32,
    pub window: u64,
    pub ban: u64,
    pub max_keys: usize,
}

impl Rules {
    /// The sliding-window estimate of strikes at `now`, given the two fixed windows'
    /// counts.
    pub fn estimate(&self, previous: u32, count: u32, now: u64) -> f64 {
        let window = self.window.max(1);
        let covered = 1.0 - (now % window) as f64 / window as f64;
        f64::from(previous) * covered + f64::from(count)
    }
}

#[derive(Default)]
pub struct LocalJail {
    strikes: Mutex<HashMap<String, Strikes>>,
    bans: RwLock<HashMap<String, Ban>>,
    any_ban: AtomicBool,
}

impl LocalJail {
    /// Whether any ban is recorded (an atomic read: the common case costs nothing).
    pub fn has_bans(&self) -> bool {
        self.any_ban.load(Relaxed)
    }

    /// When `key`'s ban ends, if it is banned at `now`.
    pub fn banned_until(&self, key: &str, now: u64) -> Option<u64> {
        if !self.has_bans() {
            return None;
        }
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        bans.get(key).map(|b| b.until).filter(|until| *until > now)
    }

    /// Counts a strike against `key`; at `max_strikes` within the window, bans it.
    pub fn strike(&self, key: &str, rules: &Rules, now: u64) -> Strike {
        let window = now / rules.window.max(1);
        let mut strikes = self.lock_strikes();
        if !strikes.contains_key(key) && strikes.len() >= rules.max_keys {
            strikes.retain(|_, s| s.window + 1 >= window);
            if strikes.len() >= rules.max_keys - rules.max_keys / 8 {
                strikes.clear();
                strikes.shrink_to(rules.max_keys.min(1024));
            }
        }
        let entry = strikes.entry(key.to_owned()).or_insert(Strikes {
            window,
            count: 0,
            previous: 0,
        });
        if entry.window != window {
            let previous = if entry.window + 1 == window {
                entry.count
            } else {
                0
            };
            *entry = Strikes {
                window,
                count: 0,
                previous,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if rules.estimate(entry.previous, entry.count, now) < f64::from(rules.max_strikes) {
            return Strike::Counted;
        }
        strikes.remove(key);
        drop(strikes);
        let until = now.saturating_add(rules.ban);
        self.ban(key, until, false, rules.max_keys, now);
        Strike::Banned { until }
    }

    /// Bans `key` until `until` (`shared`: as Redis says). A full table drops the ban
    /// that ends soonest.
    pub fn ban(&self, key: &str, until: u64, shared: bool, max_keys: usize, now: u64) {
        let mut bans = self.write_bans();
        if !bans.contains_key(key) && bans.len() >= max_keys {
            bans.retain(|_, b| b.until > now);
            if bans.len() >= max_keys {
                let soonest = bans
                    .iter()
                    .min_by_key(|(_, b)| b.until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    bans.remove(&k);
                }
            }
        }
        let since = now;
        bans.insert(
            key.to_owned(),
            Ban {
                until,
                shared,
                since,
            },
        );
        self.any_ban.store(true, Relaxed);
    }

    /// Lifts `key`'s ban; whether there was one.
    pub fn lift(&self, key: &str) -> bool {
        let mut bans = self.write_bans();
        let lifted = bans.remove(key).is_some();
        self.any_ban.store(!bans.is_empty(), Relaxed);
        lifted
    }

    /// Removes the bans over at `now` and returns their keys.
    pub fn expire(&self, now: u64) -> Vec<String> {
        self.remove_where(|_, b| b.until <= now)
    }

    /// Makes the shared bans those of `current` (key → end), as Redis listed them at
    /// `fetched`: a shared ban Redis no longer lists has ended (its key is returned),
    /// unless it was recorded here after the list was read. Local bans stay.
    pub fn replace_shared(&self, current: HashMap<String, u64>, fetched: u64) -> Vec<String> {
        let ended =
            self.remove_where(|key, b| b.shared && b.since < fetched && !current.contains_key(key));
        let mut bans = self.write_bans();
        for (key, until) in current {
            let entry = bans.entry(key).or_insert(Ban {
                until,
                shared: true,
                since: fetched,
            });
            entry.until = entry.until.max(until);
            entry.shared = true;
        }
        self.any_ban.store(!bans.is_empty(), Relaxed);
        ended
    }

    /// The active bans: key and end, soonest first.
    pub fn bans(&self, now: u64) -> Vec<(String, u64)> {
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(k, b)| (k.clone(), b.until))
            .collect();
        out.sort_by_key(|(k, until)| (*until, k.clone()));
        out
    }

    /// How many bans are in force at `now`.
    pub fn count(&self, now: u64) -> usize {
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        bans.values().filter(|b| b.until > now).count()
    }

    fn remove_where(&self, gone: impl Fn(&str, &Ban) -> bool) -> Vec<String> {
        let mut bans = self.write_bans();
        let keys: Vec<String> = bans
            .iter()
            .filter(|(k, b)| gone(k, b))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            bans.remove(key);
        }
        self.any_ban.store(!bans.is_empty(), Relaxed);
        keys
    }

    fn lock_strikes(&self) -> MutexGuard<'_, HashMap<String, Strikes>> {
        // Plain counters: a poisoned lock still holds usable values.
        self.strikes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_bans(&self) -> RwLockWriteGuard<'_, HashMap<String, Ban>> {
        self.bans.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        max_strikes: 3,
        window: 60_000,
        ban: 900_000,
        max_keys: 8,
    };

    #[test]
    fn strikes_within_the_window_ban_and_the_ban_ends() {
        let jail = LocalJail::default();
        assert_eq!(jail.strike("a", &RULES, 0), Strike::Counted);
        assert_eq!(jail.strike("a", &RULES, 1_000), Strike::Counted);
        assert_eq!(jail.banned_until("a", 1_000), None);
        assert_eq!(
            jail.strike("a", &RULES, 59_000),
            Strike::Banned { until: 959_000 }
        );
        assert_eq!(jail.banned_until("a", 959_000 - 1), Some(959_000));
        assert_eq!(jail.banned_until("b", 2_000), None, "other keys are free");
        assert_eq!(jail.banned_until("a", 959_000), None);
        assert_eq!(jail.expire(959_000), ["a"]);
        assert!(jail.bans(0).is_empty() && !jail.has_bans());
    }

    #[test]
    fn a_burst_across_a_window_boundary_counts_whole() {
        let jail = LocalJail::default();
        // 2 strikes at the end of one window and 2 at the start of the next: fixed
        // windows would see 2 and 2; the previous window still weighs 59/60 at 61 s.
        jail.strike("a", &RULES, 59_000);
        jail.strike("a", &RULES, 59_500);
        assert_eq!(jail.strike("a", &RULES, 61_000), Strike::Counted);
        assert!(matches!(
            jail.strike("a", &RULES, 61_500),
            Strike::Banned { .. }
        ));
        // Strikes a whole window apart do not add up.
        jail.strike("b", &RULES, 0);
        jail.strike("b", &RULES, 1);
        assert_eq!(jail.strike("b", &RULES, 130_000), Strike::Counted);
    }

    #[test]
    fn a_flood_of_keys_forgets_strikes_but_keeps_bans_and_memory_bounded() {
        let jail = LocalJail::default();
        for _ in 0..3 {
            jail.strike("banned", &RULES, 0);
        }
        for i in 0..10_000 {
            jail.strike(&format!("k{i}"), &RULES, 10);
            jail.strike(&format!("k{i}"), &RULES, 10);
        }
        assert!(jail.lock_strikes().len() <= RULES.max_keys);
        assert!(jail.banned_until("banned", 10).is_some());
        for i in 0..20 {
            jail.ban(&format!("b{i}"), 1_000_000 + i, false, RULES.max_keys, 10);
        }
        let bans = jail.bans(10);
        assert_eq!(bans.len(), RULES.max_keys);
        assert_eq!(
            bans.last().map(|b| b.0.as_str()),
            Some("b19"),
            "the newest ban is kept"
        );
        assert!(jail.lift("b19"));
        assert!(!jail.lift("b19"));
    }

    #[test]
    fn the_shared_list_replaces_shared_bans_only() {
        let jail = LocalJail::default();
        jail.ban("local", 5_000, false, 8, 0);
        jail.ban("old", 5_000, true, 8, 0);
        jail.ban("fresh", 5_000, true, 8, 200);
        let listed = HashMap::from([("new".to_owned(), 4_000)]);
        let ended = jail.replace_shared(listed, 100);
        assert_eq!(ended, ["old"], "recorded after the list was read: kept");
        let keys: Vec<String> = jail.bans(0).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["new", "fresh", "local"]);
        assert_eq!(jail.count(4_500), 2);
    }
}
