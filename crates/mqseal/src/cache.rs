//! Bounded caches of derived keys, by tree key and name (a topic or a topic prefix).
//!
//! The opener keeps two: topic keys of topics it authenticated a message on, and node keys of
//! their prefixes (spec section 4.2), so that a message on a new topic under a known prefix
//! derives only its new levels. Both hold only what an authenticated message used (a refusal
//! neither inserts nor evicts), at most [`KeyCacheLimits`] entries, and names of at most
//! [`MAX_CACHED_NAME_LEN`] bytes. When full, the entry inserted longest ago goes (FIFO; a hit
//! changes nothing, so it allocates nothing): a B-tree by insertion stamp finds it in
//! O(log n), and its key is wiped when it is dropped (the cached key types zeroize on drop).
//! A prefix shared by many topics that is evicted is derived and cached again by the next new
//! topic under it: one full derivation per cache turnover.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::keys::{NodeKey, TopicKey};

/// Longest topic or prefix whose key is cached (bytes). Longer names are derived every time:
/// it bounds a cache's memory (each entry holds its name twice: in the map and in the eviction
/// order) and the cost of a lookup (a comparison reads at most this many bytes). 256 bytes is
/// the topic length limit of common brokers and cloud services (e.g. AWS IoT Core).
pub const MAX_CACHED_NAME_LEN: usize = 256;

/// How many derived keys an [`Opener`](crate::Opener) keeps
/// ([`Opener::set_key_cache_limits`](crate::Opener::set_key_cache_limits)).
///
/// Each entry is a (tree key, name) pair: a topic (or prefix) of at most
/// [`MAX_CACHED_NAME_LEN`] bytes and its 32-byte key, about 150 bytes plus twice the name on a
/// 64-bit host. The defaults, 256 each, bound both caches together to about 340 KiB with
/// 256-byte names (about 100 KiB with 40-byte ones); a firmware device that opens on many
/// topics may want less. 0 turns a cache off (every message derives its key from the tree key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheLimits {
    /// Most topic keys kept: (tree key, topic) pairs of authenticated messages. Default 256.
    pub topic_keys: usize,
    /// Most node keys kept: (tree key, prefix) pairs on the paths of those topics. Default 256.
    pub node_keys: usize,
}

impl KeyCacheLimits {
    /// The default limits: 256 topic keys and 256 node keys.
    pub const DEFAULT: KeyCacheLimits = KeyCacheLimits {
        topic_keys: 256,
        node_keys: 256,
    };
}

impl Default for KeyCacheLimits {
    fn default() -> KeyCacheLimits {
        KeyCacheLimits::DEFAULT
    }
}

/// The opener's two caches, both cleared whenever its keys change (ring indices move).
#[derive(Clone)]
pub(crate) struct DerivedKeys {
    /// Topic keys of authenticated topics: the whole derivation skipped.
    pub(crate) topics: KeyCache<TopicKey>,
    /// Node keys of their prefixes: a new topic derives only its new levels.
    pub(crate) nodes: KeyCache<NodeKey>,
}

impl DerivedKeys {
    pub(crate) fn clear(&mut self) {
        self.topics.clear();
        self.nodes.clear();
    }

    pub(crate) fn limits(&self) -> KeyCacheLimits {
        KeyCacheLimits {
            topic_keys: self.topics.limit(),
            node_keys: self.nodes.limit(),
        }
    }

    pub(crate) fn set_limits(&mut self, limits: KeyCacheLimits) {
        self.topics.set_limit(limits.topic_keys);
        self.nodes.set_limit(limits.node_keys);
    }
}

impl Default for DerivedKeys {
    fn default() -> DerivedKeys {
        DerivedKeys {
            topics: KeyCache::new(KeyCacheLimits::DEFAULT.topic_keys),
            nodes: KeyCache::new(KeyCacheLimits::DEFAULT.node_keys),
        }
    }
}

/// At most `limit` keys by (ring index, name), evicted oldest stamp first.
#[derive(Clone)]
pub(crate) struct KeyCache<K> {
    /// By ring index: name → (stamp, key).
    by_key: Vec<BTreeMap<String, (u64, K)>>,
    /// Stamp → (ring index, name): the eviction order, oldest first.
    order: BTreeMap<u64, (usize, String)>,
    next_stamp: u64,
    limit: usize,
}

impl<K> KeyCache<K> {
    pub(crate) const fn new(limit: usize) -> KeyCache<K> {
        KeyCache {
            by_key: Vec::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            limit,
        }
    }

    /// The key cached for `name` under ring index `index`. Allocation-free.
    pub(crate) fn get(&self, index: usize, name: &str) -> Option<&K> {
        if name.len() > MAX_CACHED_NAME_LEN {
            return None;
        }
        self.by_key.get(index)?.get(name).map(|(_, k)| k)
    }

    /// Whether a name of this length can be cached at all.
    pub(crate) fn can_hold(&self, name: &str) -> bool {
        self.limit > 0 && name.len() <= MAX_CACHED_NAME_LEN
    }

    /// Caches `key` for `name` under `index` with the newest stamp, evicting the oldest entries
    /// beyond the limit. An entry already there is replaced (with its new stamp).
    pub(crate) fn insert(&mut self, index: usize, name: &str, key: K) {
        if !self.can_hold(name) {
            return;
        }
        while self.order.len() >= self.limit && self.evict_oldest() {}
        if self.by_key.len() <= index {
            self.by_key
                .resize_with(index.saturating_add(1), BTreeMap::new);
        }
        let stamp = self.stamp();
        if let Some(map) = self.by_key.get_mut(index) {
            // Callers insert what they just missed; a name already there (rare) is replaced by
            // the same derived key and its old stamp dropped, so each name has one entry.
            if let Some((old, _)) = map.insert(name.to_string(), (stamp, key)) {
                self.order.remove(&old);
            }
            self.order.insert(stamp, (index, name.to_string()));
        }
    }

    fn stamp(&mut self) -> u64 {
        let s = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        s
    }

    /// Drops the entry with the oldest stamp (its key is zeroized on drop); false if empty.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, (index, name))) = self.order.pop_first() else {
            return false;
        };
        if let Some(map) = self.by_key.get_mut(index) {
            map.remove(&name);
        }
        true
    }

    /// Number of cached keys.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit, evicting the oldest entries beyond it.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        while self.order.len() > limit && self.evict_oldest() {}
        if self.order.is_empty() {
            self.by_key.clear();
        }
    }

    /// Drops every entry (the ring's indices changed).
    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_first_and_holds_the_limit() {
        let mut c: KeyCache<u32> = KeyCache::new(3);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            c.insert(0, name, i as u32);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(0, "a"), None);
        assert_eq!(c.get(0, "d"), Some(&3));
        // A hit changes nothing: "b" is the oldest now and goes first.
        assert_eq!(c.get(0, "b"), Some(&1));
        c.insert(1, "b", 9);
        assert_eq!(c.get(0, "b"), None);
        assert_eq!(c.get(0, "c"), Some(&2));
        assert_eq!(c.get(1, "b"), Some(&9));
        // Inserting an existing entry replaces it: still one entry per name (a full cache
        // evicts first, here "c": callers insert only what they just missed).
        c.insert(1, "b", 10);
        assert_eq!(c.get(1, "b"), Some(&10));
        assert_eq!(c.len(), 2);
        assert_eq!(c.by_key.iter().map(BTreeMap::len).sum::<usize>(), 2);
        c.set_limit(1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(1, "b"), Some(&10));
        c.set_limit(0);
        c.insert(0, "x", 1);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn long_names_are_not_cached() {
        let mut c: KeyCache<u32> = KeyCache::new(8);
        let long = "x".repeat(MAX_CACHED_NAME_LEN + 1);
        c.insert(0, &long, 1);
        assert_eq!(c.len(), 0);
        let edge = "x".repeat(MAX_CACHED_NAME_LEN);
        c.insert(0, &edge, 2);
        assert_eq!(c.get(0, &edge), Some(&2));
    }

    #[test]
    fn stays_bounded_under_ten_times_its_limit() {
        let mut c: KeyCache<u64> = KeyCache::new(64);
        for i in 0..640u64 {
            c.insert((i % 3) as usize, &alloc::format!("t/{i}"), i);
            assert!(c.len() <= 64);
        }
        assert_eq!(c.len(), 64);
        let held: usize = c.by_key.iter().map(BTreeMap::len).sum();
        assert_eq!(held, 64);
        // The newest 64 are the ones kept.
        assert_eq!(c.get(639 % 3, "t/639"), Some(&639));
        assert_eq!(c.get(575 % 3, "t/575"), None);
        assert_eq!(c.get(576 % 3, "t/576"), Some(&576));
    }
}
