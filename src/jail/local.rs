//! A jail's in-process state: strikes per key (counted in a window that starts at the
//! key's first strike) and active bans, both in milliseconds of the caller's clock.
//!
//! Memory is bounded by `max_keys` for each map. A strike table that is full is swept
//! of expired windows; if it is still full, every strike count is dropped (bans are
//! kept: a flood of distinct keys can make the jail forget strikes, never lift a ban
//! or grow memory). A full ban table that sweeping cannot make room in leaves the new
//! ban out, counted as untracked. Checking a key costs nothing while no ban is active.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, RwLock};

#[derive(Debug, Clone, Copy)]
struct Strikes {
    window_start: u64,
    count: u32,
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
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub max_strikes: u32,
    pub window: u64,
    pub ban: u64,
    pub max_keys: usize,
}

#[derive(Default)]
pub struct LocalJail {
    strikes: Mutex<HashMap<String, Strikes>>,
    bans: RwLock<HashMap<String, u64>>,
    any_ban: AtomicBool,
    untracked: AtomicU64,
}

impl LocalJail {
    /// When `key`'s ban ends, if it is banned at `now`.
    pub fn banned_until(&self, key: &str, now: u64) -> Option<u64> {
        if !self.any_ban.load(Relaxed) {
            return None;
        }
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        bans.get(key).copied().filter(|until| *until > now)
    }

    /// Counts a strike against `key`; at `max_strikes` within the window, bans it.
    pub fn strike(&self, key: &str, rules: &Rules, now: u64) -> Strike {
        let mut strikes = self.lock_strikes();
        if !strikes.contains_key(key) && strikes.len() >= rules.max_keys {
            strikes.retain(|_, s| now.saturating_sub(s.window_start) < rules.window);
            if strikes.len() >= rules.max_keys {
                strikes.clear();
                strikes.shrink_to(rules.max_keys.min(1024));
            }
        }
        let entry = strikes.entry(key.to_owned()).or_insert(Strikes {
            window_start: now,
            count: 0,
        });
        if now.saturating_sub(entry.window_start) >= rules.window {
            *entry = Strikes {
                window_start: now,
                count: 0,
            };
        }
        entry.count += 1;
        if entry.count < rules.max_strikes {
            return Strike::Counted;
        }
        strikes.remove(key);
        drop(strikes);
        let until = now.saturating_add(rules.ban);
        match self.ban(key, until, rules.max_keys, now) {
            true => Strike::Banned { until },
            false => Strike::Counted,
        }
    }

    /// Bans `key` until `until`; false when the ban table is full of active bans.
    pub fn ban(&self, key: &str, until: u64, max_keys: usize, now: u64) -> bool {
        let mut bans = self.write_bans();
        if !bans.contains_key(key) && bans.len() >= max_keys {
            bans.retain(|_, u| *u > now);
            if bans.len() >= max_keys {
                self.untracked.fetch_add(1, Relaxed);
                return false;
            }
        }
        bans.insert(key.to_owned(), until);
        self.any_ban.store(true, Relaxed);
        true
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
        let mut bans = self.write_bans();
        let over: Vec<String> = bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &over {
            bans.remove(key);
        }
        self.any_ban.store(!bans.is_empty(), Relaxed);
        over
    }

    /// Replaces every ban with `bans` (a shared store's list); returns the keys whose
    /// ban ended here because the list no longer has them.
    pub fn replace(&self, new: HashMap<String, u64>) -> Vec<String> {
        let mut bans = self.write_bans();
        let gone = bans
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        *bans = new;
        self.any_ban.store(!bans.is_empty(), Relaxed);
        gone
    }

    /// The active bans: key and end.
    pub fn bans(&self, now: u64) -> Vec<(String, u64)> {
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = bans
            .iter()
            .filter(|(_, u)| **u > now)
            .map(|(k, u)| (k.clone(), *u))
            .collect();
        out.sort();
        out
    }

    #[cfg(test)]
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Relaxed)
    }

    fn lock_strikes(&self) -> MutexGuard<'_, HashMap<String, Strikes>> {
        // Plain counters: a poisoned lock still holds usable values.
        self.strikes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_bans(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, u64>> {
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
        max_keys: 4,
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
        assert!(jail.bans(0).is_empty());
    }

    #[test]
    fn strikes_outside_the_window_start_over() {
        let jail = LocalJail::default();
        jail.strike("a", &RULES, 0);
        jail.strike("a", &RULES, 1);
        assert_eq!(jail.strike("a", &RULES, 60_000), Strike::Counted);
        assert_eq!(jail.strike("a", &RULES, 60_001), Strike::Counted);
        assert!(matches!(
            jail.strike("a", &RULES, 60_002),
            Strike::Banned { .. }
        ));
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
        for i in 0..10 {
            jail.ban(&format!("b{i}"), 100, RULES.max_keys, 10);
        }
        assert_eq!(jail.bans(10).len(), RULES.max_keys);
        assert!(jail.untracked() >= 6);
        assert!(jail.lift("banned"));
        assert!(!jail.lift("banned"));
    }
}
