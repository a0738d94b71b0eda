//! Bounded caches of derived keys, by tree key and name (a topic or a topic prefix).
//!
//! The opener keeps two: topic keys of topics it authenticated a message on, and node keys of
//! their prefixes (spec section 4.2), so that a message on a new topic under a known prefix
//! derives only its new levels. Both hold only what an authenticated message used (a refusal
//! neither inserts nor evicts), at most [`KeyCacheLimits`] entries, and names of at most
//! [`MAX_CACHED_NAME_LEN`] bytes.
//!
//! Eviction is by generation: entries go into the young generation; when it holds half the
//! limit, the old generation is dropped whole and the young one becomes old. So an entry lives
//! for between half the limit and the limit of later insertions, oldest first out, with no
//! per-entry bookkeeping: a hit changes nothing and allocates nothing, an insertion is one
//! B-tree insert (O(log n)), and a rotation frees half the limit's entries at once (amortized
//! O(1) per insertion). No B-tree removal code is linked, which keeps firmware builds small.
//! Every dropped key is wiped (the cached key types zeroize on drop). A prefix shared by many
//! topics that is evicted is derived and cached again by the next new topic under it.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::keys::{NodeKey, TopicKey};

/// Longest topic or prefix whose key is cached (bytes). Longer names are derived every time:
/// it bounds a cache's memory and the cost of a lookup (a comparison reads at most this many
/// bytes). 256 bytes is
/// the topic length limit of common brokers and cloud services (e.g. AWS IoT Core).
pub const MAX_CACHED_NAME_LEN: usize = 256;

/// How many derived keys an [`Opener`](crate::Opener) keeps
/// ([`Opener::set_key_cache_limits`](crate::Opener::set_key_cache_limits)).
///
/// Each entry is a (tree key, name) pair: a topic (or prefix) of at most
/// [`MAX_CACHED_NAME_LEN`] bytes and its key. Measured on a 64-bit host (bytes requested from
/// the allocator, B-tree nodes included): a topic-key entry about 170 bytes plus its name, a
/// node-key entry about 110 bytes plus its name. The defaults, 256 each, so bound both caches
/// together to about 200 KiB with 256-byte names (about 90 KiB with 40-byte ones); a firmware
/// device that opens on many topics may want less. 0 turns a cache off (every message derives
/// its key from the tree key). When a cache is full, the older half of its entries is dropped
/// at once (see the module's eviction note), so it holds between half and all of its limit.
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

/// At most `limit` keys by (ring index, name), in two generations.
#[derive(Clone)]
pub(crate) struct KeyCache<K> {
    young: Generation<K>,
    old: Generation<K>,
    limit: usize,
}

/// Keys by ring index, then name. Keys are boxed: a B-tree node reserves room for 11 values,
/// and 11 inline topic keys (72 bytes each) would make the first entry cost ~1 KiB (measured on
/// firmware, as for the replay windows).
#[derive(Clone)]
struct Generation<K> {
    by_key: Vec<BTreeMap<String, Box<K>>>,
    len: usize,
}

impl<K> Generation<K> {
    const fn new() -> Generation<K> {
        Generation {
            by_key: Vec::new(),
            len: 0,
        }
    }

    fn get(&self, index: usize, name: &str) -> Option<&K> {
        self.by_key.get(index)?.get(name).map(|k| &**k)
    }

    fn insert(&mut self, index: usize, name: &str, key: K) {
        if self.by_key.len() <= index {
            self.by_key
                .resize_with(index.saturating_add(1), BTreeMap::new);
        }
        if let Some(map) = self.by_key.get_mut(index)
            && map.insert(name.to_string(), Box::new(key)).is_none()
        {
            self.len += 1;
        }
    }
}

impl<K> KeyCache<K> {
    pub(crate) const fn new(limit: usize) -> KeyCache<K> {
        KeyCache {
            young: Generation::new(),
            old: Generation::new(),
            limit,
        }
    }

    /// The key cached for `name` under ring index `index`. Allocation-free; at most two B-tree
    /// lookups, none for a name too long to be cached.
    pub(crate) fn get(&self, index: usize, name: &str) -> Option<&K> {
        if name.len() > MAX_CACHED_NAME_LEN {
            return None;
        }
        self.young
            .get(index, name)
            .or_else(|| self.old.get(index, name))
    }

    /// Whether a name of this length can be cached at all.
    pub(crate) fn can_hold(&self, name: &str) -> bool {
        self.limit > 0 && name.len() <= MAX_CACHED_NAME_LEN
    }

    /// Entries per generation: half the limit (at least 1).
    fn generation(&self) -> usize {
        (self.limit / 2).max(1)
    }

    /// Caches `key` for `name` under `index` in the young generation (replacing an entry of the
    /// same name there), first rotating the generations if it is full.
    pub(crate) fn insert(&mut self, index: usize, name: &str, key: K) {
        if !self.can_hold(name) {
            return;
        }
        if self.young.len >= self.generation() {
            let young = core::mem::replace(&mut self.young, Generation::new());
            // With a limit of 1 there is room for one generation only.
            self.old = if self.limit >= 2 {
                young
            } else {
                Generation::new()
            };
        }
        self.young.insert(index, name, key);
    }

    /// Number of cached keys (at most the limit).
    pub(crate) fn len(&self) -> usize {
        self.young.len + self.old.len
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit; empties the cache if it holds more than the new one allows.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        if self.len() > limit || self.young.len > self.generation() {
            self.clear();
        }
    }

    /// Drops every entry (the ring's indices changed).
    pub(crate) fn clear(&mut self) {
        self.young = Generation::new();
        self.old = Generation::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_by_generation_and_holds_the_limit() {
        let mut c: KeyCache<u32> = KeyCache::new(4);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            c.insert(0, name, i as u32);
        }
        assert_eq!(c.len(), 4);
        // The young generation (c, d) is full: e rotates it, dropping a and b.
        c.insert(1, "e", 4);
        assert_eq!(c.len(), 3);
        assert_eq!((c.get(0, "a"), c.get(0, "b")), (None, None));
        assert_eq!((c.get(0, "c"), c.get(0, "d")), (Some(&2), Some(&3)));
        assert_eq!((c.get(1, "e"), c.get(0, "e")), (Some(&4), None));
        // An entry of the same name in the young generation is replaced, not added.
        c.insert(1, "e", 5);
        assert_eq!((c.len(), c.get(1, "e")), (3, Some(&5)));
        c.set_limit(3);
        assert_eq!(c.len(), 3);
        c.set_limit(2);
        assert_eq!(c.len(), 0);
        for (i, name) in ["p", "q", "r"].iter().enumerate() {
            c.insert(0, name, i as u32);
            assert!(c.len() <= 2);
        }
        c.set_limit(1);
        for (i, name) in ["s", "t", "u"].iter().enumerate() {
            c.insert(0, name, i as u32);
            assert_eq!(c.len(), 1);
            assert_eq!(c.get(0, name), Some(&(i as u32)));
        }
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
        for limit in [1, 2, 3, 64, 65] {
            let mut c: KeyCache<u64> = KeyCache::new(limit);
            for i in 0..10 * limit as u64 {
                c.insert((i % 3) as usize, &alloc::format!("t/{i}"), i);
                assert!(c.len() <= limit, "{limit} {i}");
                let held: usize = [&c.young, &c.old]
                    .iter()
                    .flat_map(|g| g.by_key.iter())
                    .map(BTreeMap::len)
                    .sum();
                assert_eq!(held, c.len());
                // The newest entry is always there.
                assert_eq!(c.get((i % 3) as usize, &alloc::format!("t/{i}")), Some(&i));
            }
        }
        // With 64: the last 32 to 64 insertions are kept, oldest out first.
        let mut c: KeyCache<u64> = KeyCache::new(64);
        for i in 0..640u64 {
            c.insert(0, &alloc::format!("t/{i}"), i);
        }
        assert_eq!(c.len(), 64);
        assert_eq!(c.get(0, "t/576"), Some(&576));
        assert_eq!(c.get(0, "t/575"), None);
    }
}
