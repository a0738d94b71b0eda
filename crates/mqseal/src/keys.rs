//! The key tree: tree keys for filters, topic keys for exact topics, sender keys for messages.
//!
//! A [`TreeKey`] for `plant/#` derives the key of `plant/7/#`, then of the exact topic
//! `plant/7/temp`, one HKDF step per topic level; nobody can go back up (spec: "Key schedule").

use alloc::vec::Vec;
use core::fmt;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cache::KeyCache;
use crate::envelope::{KEY_ID_LEN, Profile};
use crate::error::{Error, Result};
use crate::labels;
use crate::topic::{FilterKind, KeyFilter, MAX_TOPIC_LEVELS, validate_topic};
use crate::validity::{Phase, Validity};

/// Length of every symmetric key in the tree.
pub const KEY_LEN: usize = 32;

type Secret = Zeroizing<[u8; KEY_LEN]>;

/// HKDF-Expand(prk, info_parts…, 32) with a 32-byte PRK (always valid for HKDF-SHA256).
fn expand(prk: &[u8; KEY_LEN], info: &[&[u8]]) -> Secret {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(prk) {
        // 32 bytes never exceeds 255 * 32.
        let _ = hk.expand_multi_info(info, out.as_mut());
    }
    out
}

/// The node key one level below `node`.
fn child(node: &[u8; KEY_LEN], level: &str) -> Secret {
    expand(node, &[labels::LEVEL, level.as_bytes()])
}

/// The levels `below` (the end of `topic`, as [`KeyFilter::levels_below`] gives it), each with
/// the end offset in `topic` of the name of its node (`topic[..end]`).
fn levels_with_ends<'t>(
    topic: &str,
    below: &'t str,
) -> Option<impl Iterator<Item = (usize, &'t str)> + 't> {
    let start = topic.len().checked_sub(below.len())?;
    Some(below.split('/').scan(start, |pos, level| {
        let end = pos.saturating_add(level.len());
        *pos = end.saturating_add(1);
        Some((end, level))
    }))
}

/// `key_id` of a topic key (spec section 4.6): the first bytes of `Expand32(topic_key, KEY_ID)`.
fn key_id_of(topic_key: &[u8; KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let full = expand(topic_key, &[labels::KEY_ID]);
    let mut id = [0u8; KEY_ID_LEN];
    if let Some(prefix) = full.get(..KEY_ID_LEN) {
        id.copy_from_slice(prefix);
    }
    id
}

/// The node key of a topic prefix (spec section 4.2), as the opener caches it.
///
/// Wiped when dropped (a [`Zeroizing`] array), also when a cache evicts it; never printed.
#[derive(Clone)]
pub(crate) struct NodeKey(Secret);

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

/// The secret is a [`Zeroizing`] array: wiped when the key is dropped.
impl zeroize::ZeroizeOnDrop for NodeKey {}

/// A topic key and its key id, before the topic digest is computed: what the receiver compares
/// with a header's key id (spec 7.1 step 4). Only a match pays for the digest.
pub(crate) struct TopicSecret {
    epoch: u32,
    secret: Secret,
    id: [u8; KEY_ID_LEN],
    /// The end in the topic of the deepest cached node the derivation started from, if any.
    cached_to: Option<usize>,
}

impl TopicSecret {
    pub(crate) fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    /// Where the derivation started: the end of the cached node's name in the topic (`None`:
    /// at the tree key itself). [`TreeKey::cache_nodes`] continues from there.
    pub(crate) fn cached_to(&self) -> Option<usize> {
        self.cached_to
    }

    /// The topic key of `topic` (the topic this secret was derived for).
    pub(crate) fn into_topic_key(self, topic: &str) -> TopicKey {
        TopicKey {
            epoch: self.epoch,
            secret: self.secret,
            id: self.id,
            digest: topic_digest(topic),
        }
    }
}

/// Walks from `node` down through the `/`-separated `levels`.
fn descend(node: &[u8; KEY_LEN], levels: Option<&str>) -> Secret {
    let mut key = Zeroizing::new(*node);
    if let Some(levels) = levels {
        for level in levels.split('/') {
            key = child(&key, level);
        }
    }
    key
}

/// SHA-256 of the topic label and the exact topic name: how a topic is bound into a message.
pub(crate) fn topic_digest(topic: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        &Sha256::new()
            .chain_update(labels::TOPIC_DIGEST)
            .chain_update(topic.as_bytes())
            .finalize(),
    );
    out
}

/// A secret key for a [`KeyFilter`] at an epoch: the unit that is generated, granted, rotated.
///
/// For a subtree filter (`a/b/#`) the secret is the node key of `a/b`; for an exact topic it is
/// that topic's key. Epochs number successive keys of the same filter (rotation).
///
/// ```
/// use mqseal::TreeKey;
/// let plant = TreeKey::from_secret("plant/#", 1, [9u8; 32]).unwrap();
/// let line7 = plant.derive("plant/7/#").unwrap();       // a narrower key to hand out
/// let exact = plant.derive("plant/7/temp").unwrap();    // an exact-topic key
/// let a = line7.topic_key("plant/7/temp").unwrap();
/// let b = exact.topic_key("plant/7/temp").unwrap();
/// assert!(a.ct_eq(&b));
/// assert!(line7.derive("plant/8/#").is_err());         // no way up or sideways
/// ```
#[derive(Clone)]
pub struct TreeKey {
    filter: KeyFilter,
    epoch: u32,
    secret: Secret,
    /// When the key may be used (signed into its grants; inherited by derived keys).
    validity: Validity,
}

impl TreeKey {
    /// Wraps an existing secret (e.g. loaded from a keystore), valid at all times
    /// ([`Validity::ALWAYS`]; see [`TreeKey::with_validity`]).
    pub fn from_secret(filter: &str, epoch: u32, secret: [u8; KEY_LEN]) -> Result<TreeKey> {
        Ok(TreeKey {
            filter: KeyFilter::parse(filter)?,
            epoch,
            secret: Zeroizing::new(secret),
            validity: Validity::ALWAYS,
        })
    }

    /// This key with the validity `validity` (spec section 4.1): sealers use it only inside
    /// it, receivers accept it within their skew and grace, grants carry it signed.
    ///
    /// ```
    /// use mqseal::{TreeKey, Validity};
    /// let next = TreeKey::from_secret("plant/#", 2, [9; 32]).unwrap()
    ///     .with_validity(Validity::new(1_800_000_000, None).unwrap());
    /// assert_eq!(next.derive("plant/7/#").unwrap().validity().not_before(), 1_800_000_000);
    /// ```
    pub fn with_validity(mut self, validity: Validity) -> TreeKey {
        self.validity = validity;
        self
    }

    /// When this key may be used.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// A fresh random key for `filter` at `epoch` from the operating system's RNG.
    #[cfg(feature = "std")]
    pub fn generate(filter: &str, epoch: u32) -> Result<TreeKey> {
        let mut secret = Zeroizing::new([0u8; KEY_LEN]);
        crate::random::fill(secret.as_mut())?;
        TreeKey::from_secret(filter, epoch, *secret)
    }

    /// The filter this key covers.
    pub fn filter(&self) -> &KeyFilter {
        &self.filter
    }

    /// The epoch of this key.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// A copy of the secret bytes, for storage or grants. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.secret.clone()
    }

    /// Whether this key covers the topic name `topic`.
    pub fn covers(&self, topic: &str) -> bool {
        self.filter.covers(topic)
    }

    /// Derives the key of a narrower filter at the same epoch and validity: a subtree below
    /// this one, or an exact topic covered by it. Fails with [`Error::KeyNotFound`] if `filter`
    /// is not covered.
    pub fn derive(&self, filter: &str) -> Result<TreeKey> {
        let target = KeyFilter::parse(filter)?;
        let secret = match target.kind() {
            FilterKind::Exact => self.topic_key_for(target.as_str())?.secret,
            FilterKind::Subtree => {
                if self.filter.kind() == FilterKind::Exact {
                    return Err(Error::KeyNotFound);
                }
                match target.prefix() {
                    None if self.filter.prefix().is_none() => self.secret.clone(),
                    None => return Err(Error::KeyNotFound),
                    Some(prefix) => {
                        let below = self.filter.levels_below(prefix).ok_or(Error::KeyNotFound)?;
                        descend(&self.secret, below)
                    }
                }
            }
        };
        Ok(TreeKey {
            filter: target,
            epoch: self.epoch,
            secret,
            validity: self.validity,
        })
    }

    /// The key of the exact topic `topic` (a topic name: no wildcards).
    pub fn topic_key(&self, topic: &str) -> Result<TopicKey> {
        validate_topic(topic)?;
        self.topic_key_for(topic)
    }

    fn topic_key_for(&self, topic: &str) -> Result<TopicKey> {
        let below = self.filter.levels_below(topic).ok_or(Error::KeyNotFound)?;
        let secret = match self.filter.kind() {
            FilterKind::Exact => self.secret.clone(),
            FilterKind::Subtree => expand(&descend(&self.secret, below), &[labels::TOPIC_KEY]),
        };
        Ok(TopicSecret {
            epoch: self.epoch,
            id: key_id_of(&secret),
            secret,
            cached_to: None,
        }
        .into_topic_key(topic))
    }

    /// The topic key and key id of `topic` (a valid topic name; `None` if this key does not
    /// cover it), starting from the deepest node key on its path that `nodes` holds for this key
    /// (ring index `index`): only the levels below it are derived. At most
    /// log2(levels) + 1 lookups (a binary search over depth), none for names longer than
    /// [`crate::MAX_CACHED_NAME_LEN`]. No allocation, no topic digest. Not inlined: its frame
    /// (the path's name ends) is gone before the signature verification, the opener's deepest
    /// stack (firmware budget).
    #[inline(never)]
    pub(crate) fn topic_secret(
        &self,
        topic: &str,
        nodes: &KeyCache<NodeKey>,
        index: usize,
    ) -> Option<TopicSecret> {
        let below = self.filter.levels_below(topic)?;
        let mut cached_to = None;
        let secret = match self.filter.kind() {
            FilterKind::Exact => self.secret.clone(),
            FilterKind::Subtree => {
                let mut node = self.secret.clone();
                if let Some(below) = below {
                    // The name ends of the path's nodes that could be cached (names grow with
                    // depth), then a binary search over depth for a cached one: O(log levels)
                    // lookups. It finds the deepest when every cached node's ancestors are
                    // cached (the usual case), else possibly a shallower one.
                    let mut ends = [0usize; MAX_TOPIC_LEVELS];
                    let mut cacheable = 0;
                    for ((end, _), slot) in levels_with_ends(topic, below)?.zip(ends.iter_mut()) {
                        if !topic.get(..end).is_some_and(|name| nodes.can_hold(name)) {
                            break;
                        }
                        *slot = end;
                        cacheable += 1;
                    }
                    let (mut lo, mut hi) = (0usize, cacheable);
                    while lo < hi {
                        let mid = lo + (hi - lo).div_ceil(2);
                        let end = ends.get(mid - 1).copied().unwrap_or(0);
                        match topic.get(..end).and_then(|name| nodes.get(index, name)) {
                            Some(cached) => {
                                *node = *cached.0;
                                cached_to = Some(end);
                                lo = mid;
                            }
                            None => hi = mid - 1,
                        }
                    }
                    for (_, level) in levels_with_ends(topic, below)?.skip(lo) {
                        node = child(&node, level);
                    }
                }
                expand(&node, &[labels::TOPIC_KEY])
            }
        };
        Some(TopicSecret {
            epoch: self.epoch,
            id: key_id_of(&secret),
            secret,
            cached_to,
        })
    }

    /// Caches in `nodes` (under ring index `index`) the node keys of the prefixes of `topic`
    /// below this key: called once a message on `topic` authenticated, with
    /// [`TopicSecret::cached_to`] of its derivation (the nodes down to there are cached; the
    /// ones below are derived again and added). The topic's own node is not cached: MQTT topics
    /// are mostly leaves, and its topic key is cached instead (a topic below it derives one
    /// level more). Names too long to cache, and everything below them, are skipped. The
    /// deepest are inserted first, so a generation rotation that splits a path drops the deeper
    /// nodes and keeps their ancestors.
    pub(crate) fn cache_nodes(
        &self,
        topic: &str,
        nodes: &mut KeyCache<NodeKey>,
        index: usize,
        cached_to: Option<usize>,
    ) {
        let (FilterKind::Subtree, Some(Some(below))) =
            (self.filter.kind(), self.filter.levels_below(topic))
        else {
            return;
        };
        let Some(levels) = levels_with_ends(topic, below) else {
            return;
        };
        let start = cached_to.and_then(|end| Some((end, topic.get(..end)?)));
        let (mut node, from) = match start.and_then(|(end, n)| Some((end, nodes.get(index, n)?))) {
            Some((end, cached)) => (cached.0.clone(), Some(end)),
            None => (self.secret.clone(), None),
        };
        let mut path: Vec<(usize, NodeKey)> = Vec::new();
        for (end, level) in levels.filter(|(end, _)| from.is_none_or(|from| *end > from)) {
            if end >= topic.len() || !topic.get(..end).is_some_and(|name| nodes.can_hold(name)) {
                break;
            }
            node = child(&node, level);
            path.push((end, NodeKey(node.clone())));
        }
        for (end, key) in path.into_iter().rev() {
            if let Some(name) = topic.get(..end) {
                nodes.insert(index, name, key);
            }
        }
    }

    /// Constant-time comparison of filter, epoch and secret (not the validity: compare
    /// [`TreeKey::validity`] for that).
    pub fn ct_eq(&self, other: &TreeKey) -> bool {
        self.filter == other.filter
            && self.epoch == other.epoch
            && bool::from(self.secret.ct_eq(&*other.secret))
    }
}

impl fmt::Debug for TreeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeKey")
            .field("filter", &self.filter)
            .field("epoch", &self.epoch)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// The secret is a [`Zeroizing`] array: wiped when the key is dropped.
impl zeroize::ZeroizeOnDrop for TreeKey {}

/// The key of one exact topic at one epoch, from which each sender's message key is derived.
#[derive(Clone)]
pub struct TopicKey {
    epoch: u32,
    secret: Secret,
    /// The key id (derived with the key: every seal and open compares or writes it).
    id: [u8; KEY_ID_LEN],
    digest: [u8; 32],
}

impl TopicKey {
    /// The epoch of the tree key this was derived from.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// A copy of the secret bytes (for test vectors and interop checks). Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.secret.clone()
    }

    /// The topic digest bound into every message on this topic.
    pub fn topic_digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Constant-time comparison of the secrets (and epochs).
    pub fn ct_eq(&self, other: &TopicKey) -> bool {
        self.epoch == other.epoch && bool::from(self.secret.ct_eq(&*other.secret))
    }

    /// The key id messages under this topic key carry: the first 4 bytes of
    /// `Expand32(topic_key, KEY_ID)` (spec section 4.6). Every holder of this topic and epoch
    /// of the tree computes the same id, whichever covering key it holds.
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    /// The AEAD key of one message: `Expand32(sender_key, MESSAGE_KEY || salt)` (spec
    /// section 4.7). Two messages share a (key, nonce) pair only if they share the sender key,
    /// the 8-byte random salt and the sequence number.
    pub fn message_key(
        &self,
        profile: Profile,
        sender_ed25519: &[u8; 32],
        salt: &[u8; crate::envelope::SALT_LEN],
    ) -> Zeroizing<[u8; KEY_LEN]> {
        let sender = self.sender_key(profile, sender_ed25519);
        expand(&sender, &[labels::MESSAGE_KEY, salt])
    }

    /// The AEAD key of `sender` (its Ed25519 key) under `profile` on this topic.
    pub fn sender_key(
        &self,
        profile: Profile,
        sender_ed25519: &[u8; 32],
    ) -> Zeroizing<[u8; KEY_LEN]> {
        expand(
            &self.secret,
            &[labels::SENDER_KEY, &[profile.code()], sender_ed25519],
        )
    }
}

impl fmt::Debug for TopicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The secret is a [`Zeroizing`] array: wiped when the key is dropped.
impl zeroize::ZeroizeOnDrop for TopicKey {}

/// The tree keys a sealer or opener holds, with the lookups both need.
///
/// Keys of one filter and epoch from different issuers (different secrets) coexist: each
/// issuer's keys are its own lineage (spec 8.1), and a message's key id names the one it used.
#[derive(Clone, Default)]
pub(crate) struct KeyRing {
    /// Each key with its retirement time, if retired (accepted up to and including it).
    keys: Vec<(TreeKey, Option<u64>)>,
}

impl KeyRing {
    /// Adds a key; the same key again (filter, epoch and secret) keeps its place and retirement
    /// and takes the new key's validity.
    pub(crate) fn insert(&mut self, key: TreeKey) {
        match self.keys.iter_mut().find(|(k, _)| k.ct_eq(&key)) {
            Some((k, _)) => k.validity = key.validity,
            None => self.keys.push((key, None)),
        }
    }

    /// Adds `key` (or finds it, taking its validity) and retires it at `not_after`.
    pub(crate) fn insert_retired(&mut self, key: TreeKey, not_after: u64) {
        match self.keys.iter_mut().find(|(k, _)| k.ct_eq(&key)) {
            Some((k, t)) => {
                k.validity = key.validity;
                *t = Some(not_after);
            }
            None => self.keys.push((key, Some(not_after))),
        }
    }

    /// Retires every key of `filter` at `epoch`; returns whether one was held.
    pub(crate) fn retire(&mut self, filter: &str, epoch: u32, not_after: u64) -> bool {
        let mut found = false;
        for (k, t) in self.keys.iter_mut() {
            if k.filter.as_str() == filter && k.epoch == epoch {
                *t = Some(not_after);
                found = true;
            }
        }
        found
    }

    /// The retirement time of the first key of `filter` at `epoch` that was retired.
    pub(crate) fn retirement(&self, filter: &str, epoch: u32) -> Option<u64> {
        self.keys
            .iter()
            .filter(|(k, _)| k.filter.as_str() == filter && k.epoch == epoch)
            .find_map(|(_, t)| *t)
    }

    /// Removes every key of `filter` at `epoch`; returns whether one was removed.
    pub(crate) fn remove(&mut self, filter: &str, epoch: u32) -> bool {
        let before = self.keys.len();
        self.keys
            .retain(|(k, _)| !(k.filter.as_str() == filter && k.epoch == epoch));
        before != self.keys.len()
    }

    /// The key at ring index `index` (as [`KeyRing::candidates`] numbers them).
    pub(crate) fn get(&self, index: usize) -> Option<&TreeKey> {
        self.keys.get(index).map(|(k, _)| k)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &TreeKey> {
        self.keys.iter().map(|(k, _)| k)
    }

    /// The key a sealer uses for `topic` at `now` (spec section 6 step 2), with its index in
    /// the ring: each covering filter's **current key** is its highest epoch that is not
    /// pending (`now < not_before`; among equals, the one added first); the most specific
    /// filter (exact before subtree, deeper before shallower) whose current key is valid at
    /// `now` wins. An expired current key is never replaced by an older epoch of its filter.
    /// [`Error::KeyNotFound`] if no key covers `topic`, [`Error::KeyExpired`] if none is usable.
    pub(crate) fn best_for(&self, topic: &str, now: Option<u64>) -> Result<(usize, &TreeKey)> {
        type Rank = (bool, usize);
        let mut covered = false;
        let mut best: Option<(Rank, usize, &TreeKey)> = None;
        let started = |k: &TreeKey| k.validity.phase(now) != Phase::Pending;
        for (i, (k, _)) in self.keys.iter().enumerate() {
            if !k.covers(topic) {
                continue;
            }
            covered = true;
            // Superseded: a started key of the same filter with a higher epoch (or the same
            // epoch, added earlier).
            let superseded = self.keys.iter().enumerate().any(|(j, (o, _))| {
                o.filter == k.filter
                    && started(o)
                    && (o.epoch, core::cmp::Reverse(j)) > (k.epoch, core::cmp::Reverse(i))
            });
            if superseded || k.validity.phase(now) != Phase::Valid {
                continue;
            }
            let rank = (k.filter.kind() == FilterKind::Exact, k.filter.depth());
            if best.is_none_or(|(r, ..)| rank > r) {
                best = Some((rank, i, k));
            }
        }
        match best {
            Some((_, i, k)) => Ok((i, k)),
            None if covered => Err(Error::KeyExpired),
            None => Err(Error::KeyNotFound),
        }
    }

    /// Every key covering `topic` at `epoch`, most specific first (ties in insertion order),
    /// with its index in the ring (stable until the ring changes) and its retirement.
    ///
    /// Allocation-free (the opener's per-message path): each step selects the next key below the
    /// previous one in (specificity, insertion order); rings hold a handful of keys.
    pub(crate) fn candidates<'a>(
        &'a self,
        topic: &'a str,
        epoch: u32,
    ) -> impl Iterator<Item = (usize, &'a TreeKey, Option<u64>)> + 'a {
        type Rank = (bool, usize, core::cmp::Reverse<usize>);
        let rank = |i: usize, k: &TreeKey| -> Rank {
            (
                k.filter.kind() == FilterKind::Exact,
                k.filter.depth(),
                core::cmp::Reverse(i),
            )
        };
        let mut last: Option<Rank> = None;
        core::iter::from_fn(move || {
            let (r, i, k, t) = self
                .keys
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| k.epoch == epoch && k.covers(topic))
                .map(|(i, (k, t))| (rank(i, k), i, k, *t))
                .filter(|(r, ..)| last.is_none_or(|l| *r < l))
                .max_by_key(|(r, ..)| *r)?;
            last = Some(r);
            Some((i, k, t))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> TreeKey {
        TreeKey::from_secret("a/#", 3, [0x11; 32]).unwrap()
    }

    #[test]
    fn wildcard_and_exact_holders_agree() {
        let r = root();
        let via_root = r.topic_key("a/b/c").unwrap();
        let via_sub = r.derive("a/b/#").unwrap().topic_key("a/b/c").unwrap();
        let via_exact = r.derive("a/b/c").unwrap().topic_key("a/b/c").unwrap();
        assert!(via_root.ct_eq(&via_sub));
        assert!(via_root.ct_eq(&via_exact));
        assert_eq!(via_root.epoch(), 3);
        // The prefix topic itself is covered by its subtree key.
        let self_topic = r.derive("a/b/#").unwrap().topic_key("a/b").unwrap();
        assert!(self_topic.ct_eq(&r.topic_key("a/b").unwrap()));
        assert!(!self_topic.ct_eq(&via_root));
    }

    #[test]
    fn cannot_go_up_or_sideways() {
        let ab = root().derive("a/b/#").unwrap();
        assert_eq!(ab.topic_key("a/c").err(), Some(Error::KeyNotFound));
        assert_eq!(ab.derive("a/#").err(), Some(Error::KeyNotFound));
        assert_eq!(ab.derive("#").err(), Some(Error::KeyNotFound));
        assert_eq!(ab.topic_key("a").err(), Some(Error::KeyNotFound));
        assert_eq!(ab.topic_key("a/bc").err(), Some(Error::KeyNotFound));
        let exact = root().derive("a/b").unwrap();
        assert_eq!(exact.derive("a/b/#").err(), Some(Error::KeyNotFound));
        assert_eq!(exact.topic_key("a/b/c").err(), Some(Error::KeyNotFound));
    }

    #[test]
    fn exact_topic_key_is_not_a_node_key() {
        // Holding the exact key of a/b must not give the node key of a/b (which would open a/b/c).
        let r = root();
        let exact = r.derive("a/b").unwrap();
        let node = r.derive("a/b/#").unwrap();
        assert!(!bool::from(exact.secret.ct_eq(&*node.secret)));
    }

    fn cold(key: &TreeKey, topic: &str) -> TopicKey {
        key.topic_key(topic).unwrap()
    }

    fn via_cache(key: &TreeKey, topic: &str, nodes: &KeyCache<NodeKey>) -> TopicKey {
        key.topic_secret(topic, nodes, 0)
            .unwrap()
            .into_topic_key(topic)
    }

    #[test]
    fn a_new_topic_under_a_cached_prefix_derives_the_cold_key() {
        for key in [
            TreeKey::from_secret("#", 1, [0x22; 32]).unwrap(),
            root(),
            root().derive("a/b/#").unwrap(),
            root().derive("a/b/c").unwrap(),
        ] {
            let mut nodes = KeyCache::new(64);
            key.cache_nodes("a/b/c", &mut nodes, 0, None);
            for topic in [
                "a/b/c",
                "a/b/d",
                "a/b/c/d",
                "a/x/y",
                "a/b",
                "a",
                "a//",
                "a/b/c/d/e/f",
            ] {
                if !key.covers(topic) {
                    assert!(key.topic_secret(topic, &nodes, 0).is_none());
                    continue;
                }
                let warm = via_cache(&key, topic, &nodes);
                let cold = cold(&key, topic);
                assert!(warm.ct_eq(&cold), "{:?} {topic}", key.filter());
                assert_eq!(warm.key_id(), cold.key_id());
                assert_eq!(warm.topic_digest(), cold.topic_digest());
            }
        }
    }

    #[test]
    fn derivation_starts_at_the_deepest_cached_node() {
        // A planted (wrong) node key for a/b shows which node the derivation started from.
        let key = root();
        let mut nodes = KeyCache::new(64);
        nodes.insert(0, "a/b", NodeKey(Zeroizing::new([0x99; KEY_LEN])));
        let planted = TreeKey::from_secret("a/b/#", 3, [0x99; 32]).unwrap();
        assert!(via_cache(&key, "a/b/new", &nodes).ct_eq(&cold(&planted, "a/b/new")));
        assert!(via_cache(&key, "a/b", &nodes).ct_eq(&cold(&planted, "a/b")));
        // Other paths, and other ring indices, do not see it.
        assert!(via_cache(&key, "a/c/new", &nodes).ct_eq(&cold(&key, "a/c/new")));
        let other = key.topic_secret("a/b/new", &nodes, 1).unwrap();
        assert!(
            other
                .into_topic_key("a/b/new")
                .ct_eq(&cold(&key, "a/b/new"))
        );
        // cache_nodes continues below the node the derivation started from (the topic's own
        // node, a/b/new/x, is not cached).
        let from = key
            .topic_secret("a/b/new/x", &nodes, 0)
            .unwrap()
            .cached_to();
        assert_eq!(from, Some(3));
        key.cache_nodes("a/b/new/x", &mut nodes, 0, from);
        assert_eq!(nodes.len(), 2);
        assert!(nodes.get(0, "a/b/new").is_some());
        assert!(via_cache(&key, "a/b/new/x/y", &nodes).ct_eq(&cold(&planted, "a/b/new/x/y")));
    }

    #[test]
    fn cache_nodes_stores_the_path_shallowest_newest_and_skips_long_names() {
        let key = TreeKey::from_secret("#", 1, [0x22; 32]).unwrap();
        let mut nodes = KeyCache::new(2);
        key.cache_nodes("p/q/r/s", &mut nodes, 0, None);
        // Only two fit: the shallowest two, which more topics share.
        assert!(nodes.get(0, "p").is_some() && nodes.get(0, "p/q").is_some());
        assert_eq!(nodes.len(), 2);
        let long = alloc::format!("p/{}/z", "y".repeat(crate::cache::MAX_CACHED_NAME_LEN));
        let mut nodes = KeyCache::new(64);
        key.cache_nodes(&long, &mut nodes, 0, None);
        assert_eq!(nodes.len(), 1); // "p"; the next name is too long, so is everything below
        assert!(via_cache(&key, &long, &nodes).ct_eq(&cold(&key, &long)));
        // An exact key and a topic at a subtree key's own prefix have no node below the key.
        let exact = TreeKey::from_secret("p/q", 1, [1; 32]).unwrap();
        let sub = TreeKey::from_secret("p/q/#", 1, [1; 32]).unwrap();
        let mut nodes = KeyCache::new(64);
        exact.cache_nodes("p/q", &mut nodes, 0, None);
        sub.cache_nodes("p/q", &mut nodes, 1, None);
        assert_eq!(nodes.len(), 0);
    }

    #[test]
    fn cached_keys_are_wiped_when_dropped() {
        // Eviction and clearing drop the entries; these types zeroize on drop (their secrets
        // are Zeroizing arrays), and print no secret.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<NodeKey>();
        wiped_on_drop::<TopicKey>();
        wiped_on_drop::<Secret>();
        let n = NodeKey(Zeroizing::new([0xab; KEY_LEN]));
        assert_eq!(alloc::format!("{n:?}"), "NodeKey(..)");
    }

    #[test]
    fn ring_prefers_specific_then_newest() {
        let mut ring = KeyRing::default();
        ring.insert(TreeKey::from_secret("#", 9, [1; 32]).unwrap());
        ring.insert(TreeKey::from_secret("a/#", 1, [2; 32]).unwrap());
        ring.insert(TreeKey::from_secret("a/#", 2, [3; 32]).unwrap());
        let (_, best) = ring.best_for("a/x", None).unwrap();
        assert_eq!((best.filter().as_str(), best.epoch()), ("a/#", 2));
        assert_eq!(ring.best_for("b", None).unwrap().1.filter().as_str(), "#");
        assert_eq!(ring.candidates("a/x", 9).count(), 1);
        ring.insert(TreeKey::from_secret("a/x", 2, [4; 32]).unwrap());
        let order: Vec<&str> = ring
            .candidates("a/x", 2)
            .map(|(_, k, _)| k.filter().as_str())
            .collect();
        assert_eq!(order, ["a/x", "a/#"]);
        assert!(ring.remove("a/x", 2));
        assert!(ring.remove("a/#", 2));
        assert_eq!(ring.best_for("a/x", None).unwrap().1.epoch(), 1);
    }

    #[test]
    fn two_lineages_of_one_filter_and_epoch_coexist() {
        let mut ring = KeyRing::default();
        ring.insert(TreeKey::from_secret("a/#", 1, [1; 32]).unwrap());
        ring.insert(TreeKey::from_secret("a/#", 1, [2; 32]).unwrap());
        ring.insert(TreeKey::from_secret("a/#", 1, [1; 32]).unwrap());
        assert_eq!(ring.candidates("a/x", 1).count(), 2);
        // The sealer keeps the first one added among equals.
        assert!(bool::from(
            ring.best_for("a/x", None)
                .unwrap()
                .1
                .secret
                .ct_eq(&[1u8; 32])
        ));
        ring.insert_retired(TreeKey::from_secret("a/#", 1, [2; 32]).unwrap(), 5);
        let retired: Vec<Option<u64>> = ring.candidates("a/x", 1).map(|(.., t)| t).collect();
        assert_eq!(retired, [None, Some(5)]);
    }
}
