//! Provider entries this node keeps for others: the entries stored under the keys it is among
//! the closest to. Bounded twice — entries per key (a popular key spills to the next closest
//! nodes instead of growing here) and keys in all — and every entry expires, so what strangers
//! store here is capped and leaves on its own.

use crate::peer::Value;
use std::collections::HashMap;

/// Why an entry was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The key has its share of providers here, or the node its share of keys: try the next
    /// closest node.
    Full,
    /// This node knows k nodes closer to the key: it is not one to keep it.
    Far,
    /// The entry is not valid for the key (signature, lifetime, expired).
    Invalid,
}

/// The provider entries a node keeps.
#[derive(Debug)]
pub struct Store<V: Value> {
    per_key: usize,
    max_keys: usize,
    entries: HashMap<V::Key, Vec<V>>,
    len: usize,
}

impl<V: Value> Store<V> {
    /// A store of at most `max_keys` keys, `per_key` entries each.
    pub fn new(per_key: usize, max_keys: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
            len: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.entries.len()
    }

    /// Stores `value` under `key` (replacing an older entry of the same provider); checked
    /// with [`Value::valid_for`] by the caller.
    pub fn add(&mut self, key: V::Key, value: V, now_ms: u64) -> Result<(), Refusal> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_keys {
            self.expire(now_ms);
            if self.entries.len() >= self.max_keys {
                return Err(Refusal::Full);
            }
        }
        let per_key = self.per_key;
        let list = self.entries.entry(key).or_default();
        let before = list.len();
        list.retain(|v| v.expires_ms() > now_ms);
        self.len -= before - list.len();
        let provider = value.provider();
        if let Some(old) = list.iter_mut().find(|v| v.provider() == provider) {
            if value.newer_than(old) {
                *old = value;
            }
            return Ok(());
        }
        if list.len() >= per_key {
            return Err(Refusal::Full);
        }
        list.push(value);
        self.len += 1;
        Ok(())
    }

    /// Up to `n` live entries under `key`, the longest-lived first.
    pub fn get(&self, key: &V::Key, now_ms: u64, n: usize) -> Vec<V> {
        let Some(list) = self.entries.get(key) else {
            return Vec::new();
        };
        let mut out: Vec<V> = list
            .iter()
            .filter(|v| v.expires_ms() > now_ms)
            .cloned()
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.expires_ms()));
        out.truncate(n);
        out
    }

    /// Removes the entry of `provider` under `key` (it withdrew).
    pub fn remove(&mut self, key: &V::Key, provider: &V::Key) {
        if let Some(list) = self.entries.get_mut(key) {
            let before = list.len();
            list.retain(|v| v.provider() != *provider);
            self.len -= before - list.len();
            if list.is_empty() {
                self.entries.remove(key);
            }
        }
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now_ms: u64) {
        let mut dropped = 0;
        self.entries.retain(|_, list| {
            let before = list.len();
            list.retain(|v| v.expires_ms() > now_ms);
            dropped += before - list.len();
            !list.is_empty()
        });
        self.len -= dropped;
    }

    /// The approximate bytes held (for state accounting).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.entries.capacity()
                * (std::mem::size_of::<V::Key>() + std::mem::size_of::<Vec<V>>())
            + self
                .entries
                .values()
                .map(|l| l.capacity() * std::mem::size_of::<V>())
                .sum::<usize>()
    }

    /// Every key held, for tests and the node's views.
    pub fn keys_held(&self) -> impl Iterator<Item = &V::Key> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct V(u64, u64, u64); // provider, expires, issued
    impl Value for V {
        type Key = u64;
        fn provider(&self) -> u64 {
            self.0
        }
        fn expires_ms(&self) -> u64 {
            self.1
        }
        fn newer_than(&self, other: &Self) -> bool {
            self.2 > other.2
        }
        fn valid_for(&self, _: &u64, now: u64) -> bool {
            self.1 > now
        }
        fn wire_len(&self) -> usize {
            24
        }
    }

    #[test]
    fn bounded_per_key_and_in_all_and_expiring() {
        let mut s: Store<V> = Store::new(2, 2);
        assert_eq!(s.add(1, V(10, 100, 1), 0), Ok(()));
        assert_eq!(s.add(1, V(11, 100, 1), 0), Ok(()));
        assert_eq!(s.add(1, V(12, 100, 1), 0), Err(Refusal::Full));
        // The same provider again replaces, it does not add.
        assert_eq!(s.add(1, V(10, 200, 2), 0), Ok(()));
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&1, 0, 10)[0].1, 200);
        assert_eq!(s.add(2, V(10, 50, 1), 0), Ok(()));
        assert_eq!(s.add(3, V(10, 50, 1), 0), Err(Refusal::Full));
        // Once key 2's entry expired, key 3 finds room.
        assert_eq!(s.add(3, V(10, 500, 1), 60), Ok(()));
        assert_eq!(s.keys(), 2);
        s.expire(150);
        assert_eq!(s.get(&1, 150, 10).len(), 1);
        s.remove(&1, &10);
        assert_eq!(s.len(), 1);
    }
}
