//! The most frequent keys of a stream in bounded memory: Space-Saving (Metwally,
//! Agrawal, El Abbadi, 2005). At most `capacity` keys are kept; a new key when full
//! takes the place of the least counted one and inherits its count, so a key's count
//! is over-estimated by at most that (and any key seen more than total/capacity
//! times is kept). A flood of distinct keys costs no memory beyond the capacity.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use super::window::FastMap;

#[derive(Debug, Clone)]
pub struct Top<K> {
    capacity: usize,
    counts: FastMap<K, u64>,
}

impl<K: Eq + Hash + Clone> Top<K> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            counts: FastMap::with_capacity_and_hasher(capacity, Default::default()),
        }
    }

    /// Counts `n` more for `key`; it is made into a `K` only when it is new.
    pub fn add<Q>(&mut self, key: &Q, n: u64)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized + ToOwned,
        Q::Owned: Into<K>,
    {
        if let Some(count) = self.counts.get_mut(key) {
            *count += n;
            return;
        }
        let inherited = match self.counts.len() < self.capacity {
            true => 0,
            false => {
                let Some((least, count)) = self.counts.iter().min_by_key(|(_, c)| **c) else {
                    return;
                };
                let (least, count) = (least.clone(), *count);
                self.counts.remove::<K>(&least);
                count
            }
        };
        self.counts.insert(key.to_owned().into(), inherited + n);
    }

    /// Adds every key's count into `into`.
    pub fn merge_into<S: BuildHasher>(&self, into: &mut HashMap<K, u64, S>) {
        for (key, n) in &self.counts {
            *into.entry(key.clone()).or_default() += n;
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }
}

/// The `n` largest of `counts`, largest first (ties by key, for a stable order).
pub fn largest<K: Ord + Clone>(counts: HashMap<K, u64>, n: usize) -> Vec<(K, u64)> {
    let mut all: Vec<(K, u64)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn heavy_keys_survive_a_flood_of_distinct_ones_in_bounded_memory() {
        let mut top: Top<u32> = Top::new(16);
        for i in 0..1_000_000u32 {
            top.add(&(i % 3), 1); // three keys with a third of the stream each
            top.add(&(1_000 + i), 1); // and a million seen once
        }
        assert_eq!(top.len(), 16);
        let mut counts = HashMap::new();
        top.merge_into(&mut counts);
        let heavy: Vec<u32> = largest(counts, 3).into_iter().map(|(k, _)| k).collect();
        assert_eq!(heavy.len(), 3);
        assert!(heavy.iter().all(|k| *k < 3), "{heavy:?}");
    }

    #[test]
    fn keys_are_borrowed_until_they_are_new() {
        let mut top: Top<Arc<str>> = Top::new(2);
        top.add("a", 2);
        top.add("a", 1);
        top.add("b", 1);
        top.add("c", 1); // takes b's place with b's count
        let mut counts = HashMap::new();
        top.merge_into(&mut counts);
        assert_eq!(counts.get("a"), Some(&3));
        assert_eq!(counts.get("c"), Some(&2));
        assert_eq!(counts.get("b"), None);
    }
}
