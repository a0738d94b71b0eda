//! Opening: sealed bytes → verified plaintext, with trusted senders, keys and replay windows.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::Zeroize;

use crate::cache::{DerivedKeys, KeyCacheLimits};
use crate::envelope::{self, Header, MAX_HEADER_LEN, Profile, SealedParts};
use crate::error::{Error, Result};
use crate::identity::{Fingerprint, PublicIdentity, transcript_digest};
use crate::keys::{KeyRing, TopicKey, TreeKey};
use crate::labels;
use crate::replay::ReplayWindow;
use crate::replay_state::{ReplayLimits, ReplayState};
use crate::signature;
use crate::topic::KeyFilter;
use crate::topic::validate_topic;

/// What an opener accepts beyond authenticity. (Which senders may use the `group-mac` profile,
/// and where, is set per sender: [`Opener::trust_group_mac_sender`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPolicy {
    /// Refuse messages whose timestamp is more than this many seconds old; messages without a
    /// timestamp are then refused too ([`Error::MissingTimestamp`]). Default: none.
    pub max_age: Option<u64>,
    /// With `max_age`, refuse timestamps more than this many seconds in the future. Default: 60.
    pub max_future_skew: u64,
    /// Refuse messages without a timestamp. Default: `false`.
    pub require_timestamp: bool,
    /// Seconds after a key's [`Validity`](crate::Validity) `not_after` during which messages
    /// under it are still opened (sealed just before it, delivered late); then
    /// [`Error::KeyExpired`]. Default: [`DEFAULT_VALIDITY_GRACE`] (one day, as the keystore's
    /// rotation grace). Keys whose `not_before` lies more than `max_future_skew` ahead are
    /// refused too.
    pub validity_grace: u64,
}

/// Default of [`OpenPolicy::validity_grace`]: one day.
pub const DEFAULT_VALIDITY_GRACE: u64 = 86_400;

impl Default for OpenPolicy {
    fn default() -> OpenPolicy {
        OpenPolicy {
            max_age: None,
            max_future_skew: 60,
            require_timestamp: false,
            validity_grace: DEFAULT_VALIDITY_GRACE,
        }
    }
}

/// How the transport delivered a message: MQTT flags and the receiver's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The broker delivered it with the retain flag set (a stored retained message).
    pub retained: bool,
    /// The broker marked it as a redelivery (MQTT DUP flag).
    pub duplicate: bool,
    /// The receiver's current time in seconds since the Unix epoch; needed with a max age,
    /// retired keys and keys with a validity limit (std builds read the system clock when this
    /// is `None`).
    pub now: Option<u64>,
}

/// Everything known about a message once it was opened, except the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedInfo {
    /// The sender (authenticated by signature in the `signed` profile; only a claim backed by the
    /// group key in `group-mac`).
    pub sender: PublicIdentity,
    /// The sender's sequence number.
    pub seq: u64,
    /// The key epoch the message was sealed under.
    pub epoch: u32,
    /// The authentication profile.
    pub profile: Profile,
    /// Whether the publisher published it retained.
    pub retain: bool,
    /// The sender's timestamp, if any.
    pub timestamp: Option<u64>,
    /// Length of the plaintext payload.
    pub payload_len: usize,
}

/// An opened message: the plaintext and who sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender (authenticated by signature in the `signed` profile; only a claim backed by the
    /// group key in `group-mac`).
    pub sender: PublicIdentity,
    /// The sender's sequence number.
    pub seq: u64,
    /// The key epoch the message was sealed under.
    pub epoch: u32,
    /// The authentication profile.
    pub profile: Profile,
    /// Whether the publisher published it retained.
    pub retain: bool,
    /// The sender's timestamp, if any.
    pub timestamp: Option<u64>,
    /// The plaintext.
    pub payload: Vec<u8>,
}

impl Opened {
    fn new(info: OpenedInfo, mut payload: Vec<u8>) -> Opened {
        payload.truncate(info.payload_len);
        Opened {
            sender: info.sender,
            seq: info.seq,
            epoch: info.epoch,
            profile: info.profile,
            retain: info.retain,
            timestamp: info.timestamp,
            payload,
        }
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("sender", &self.sender)
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("profile", &self.profile)
            .field("retain", &self.retain)
            .field("timestamp", &self.timestamp)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// A trusted sender and where it may use the `group-mac` profile (spec 7.1 step 4).
#[derive(Debug, Clone)]
struct TrustedSender {
    identity: PublicIdentity,
    /// Filters under which this sender's `group-mac` messages are accepted (none: signed only).
    group_mac: Vec<KeyFilter>,
}

impl TrustedSender {
    fn accepts(&self, profile: Profile, topic: &str) -> bool {
        match profile {
            Profile::Signed => true,
            Profile::GroupMac => self.group_mac.iter().any(|f| f.covers(topic)),
        }
    }
}

/// Opens sealed messages: holds trusted senders, keys and one replay window per
/// (sender, profile, epoch, topic).
///
/// Checks run in the order of the spec ("Receiver rules"): parse → profile policy → sender,
/// its profile policy and key lookup (keys retired past their grace period:
/// [`Error::EpochExpired`]; keys outside their validity, with the policy's skew and grace:
/// [`Error::KeyExpired`]) → signature → decryption → retain/timestamp policy → replay window
/// → accept.
///
/// ```
/// use mqseal::{Delivery, Error, Identity, Opener, Profile, Sealer, TreeKey};
/// let sender = Identity::from_seed([1; 32]);
/// let key = TreeKey::from_secret("#", 1, [2; 32]).unwrap();
/// let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
/// sealer.add_key(key.clone());
/// let msg = sealer.seal("a/b", b"hi", false).unwrap();
///
/// let mut opener = Opener::new();
/// opener.trust_sender(sender.public());
/// opener.add_key(key);
/// assert!(opener.open("a/b", &msg).is_ok());
/// assert_eq!(opener.open("a/b", &msg).unwrap_err(), Error::Replay);
/// let redelivered = Delivery { duplicate: true, ..Delivery::default() };
/// assert_eq!(opener.open_delivered("a/b", &msg, &redelivered).unwrap_err(), Error::Duplicate);
/// // Moved to another topic: the key id is per topic, so no held key has it there.
/// assert_eq!(opener.open("a/c", &msg).unwrap_err(), Error::KeyNotFound);
/// ```
#[derive(Clone, Default)]
pub struct Opener {
    keys: KeyRing,
    senders: Vec<TrustedSender>,
    /// Replay windows, eviction floors and high-water marks (spec 7.3).
    replay: ReplayState,
    policy: OpenPolicy,
    /// Derived topic keys by topic (cleared whenever the keys change).
    cache: TopicKeyCache,
}

/// Derived keys of authenticated topics: their topic keys and the node keys of their prefixes,
/// by (index in the key ring, name), each cache bounded ([`KeyCacheLimits`]).
type TopicKeyCache = DerivedKeys;

/// A message that passed steps 1–4 of the receiver rules.
struct Checked<'m> {
    topic: &'m str,
    parts: SealedParts<'m>,
    /// The topic key for `topic` of the tree key the key id selected: the only key this message
    /// is decrypted with.
    topic_key: TopicKey,
    /// The ring index of that tree key when its topic key was derived for this message (not
    /// cached yet), with where the derivation started (`TopicSecret::cached_to`): remembered
    /// only if the message authenticates. `None` when it came from the cache, so a message on a
    /// known topic allocates nothing.
    cache_as: Option<(usize, Option<usize>)>,
    signature_digest: Option<[u8; 64]>,
}

/// One message of a batch for [`Opener::open_batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The topic it was received on.
    pub topic: &'a str,
    /// The sealed message.
    pub message: &'a [u8],
    /// How it was delivered.
    pub delivery: Delivery,
}

impl<'a> BatchItem<'a> {
    /// A live delivery (not retained, not a redelivery) of `message` on `topic`.
    pub fn live(topic: &'a str, message: &'a [u8]) -> BatchItem<'a> {
        BatchItem {
            topic,
            message,
            delivery: Delivery::default(),
        }
    }
}

impl Opener {
    /// An opener with no keys, no trusted senders and the default policy.
    pub fn new() -> Opener {
        Opener::default()
    }

    /// An opener with the given policy.
    pub fn with_policy(policy: OpenPolicy) -> Opener {
        Opener {
            policy,
            ..Opener::default()
        }
    }

    /// The current policy.
    pub fn policy(&self) -> &OpenPolicy {
        &self.policy
    }

    /// Replaces the policy.
    pub fn set_policy(&mut self, policy: OpenPolicy) {
        self.policy = policy;
    }

    /// Trusts `signed` messages from `sender` (idempotent). Its `group-mac` messages are
    /// refused ([`Error::ProfileNotAllowed`]) unless [`Opener::trust_group_mac_sender`] allows
    /// them on the topic.
    pub fn trust_sender(&mut self, sender: PublicIdentity) {
        if !self.senders.iter().any(|s| s.identity == sender) {
            self.senders.push(TrustedSender {
                identity: sender,
                group_mac: Vec::new(),
            });
        }
    }

    /// Trusts `sender` (as [`Opener::trust_sender`]) and also accepts its `group-mac` messages
    /// on topics covered by `filter`; call again to add filters. In `group-mac` any holder of
    /// the topic's key can forge such a message, so allow it only for senders that cannot sign
    /// and only where they publish. Fails with [`Error::InvalidFilter`].
    ///
    /// ```
    /// use mqseal::{Error, Identity, Opener, Profile, Sealer, TreeKey};
    /// let sensor = Identity::from_seed([1; 32]);
    /// let key = TreeKey::from_secret("plant/#", 1, [2; 32]).unwrap();
    /// let mut sealer = Sealer::new(sensor.clone(), Profile::GroupMac, 0);
    /// sealer.add_key(key.clone());
    ///
    /// let mut opener = Opener::new();
    /// opener.add_key(key);
    /// opener.trust_sender(sensor.public());
    /// let m = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
    /// assert_eq!(opener.open("plant/7/temp", &m).unwrap_err(), Error::ProfileNotAllowed);
    /// opener.trust_group_mac_sender(sensor.public(), "plant/7/#").unwrap();
    /// assert!(opener.open("plant/7/temp", &m).is_ok());
    /// let elsewhere = sealer.seal("plant/8/temp", b"19", false).unwrap();
    /// assert_eq!(opener.open("plant/8/temp", &elsewhere).unwrap_err(), Error::ProfileNotAllowed);
    /// ```
    pub fn trust_group_mac_sender(&mut self, sender: PublicIdentity, filter: &str) -> Result<()> {
        let filter = KeyFilter::parse(filter)?;
        self.trust_sender(sender.clone());
        if let Some(s) = self.senders.iter_mut().find(|s| s.identity == sender)
            && !s.group_mac.contains(&filter)
        {
            s.group_mac.push(filter);
        }
        Ok(())
    }

    /// Stops trusting `sender` (for every profile); returns whether it was trusted.
    pub fn untrust_sender(&mut self, sender: &Fingerprint) -> bool {
        let before = self.senders.len();
        self.senders.retain(|s| s.identity.fingerprint() != *sender);
        before != self.senders.len()
    }

    /// Adds a key to open with. Adding the same key again changes nothing; keys of one filter
    /// and epoch with different secrets (other issuers' lineages) are all kept: each message's
    /// key id names the one it used.
    pub fn add_key(&mut self, key: TreeKey) {
        self.cache.clear();
        self.keys.insert(key);
    }

    /// Adds `key` already retired: opened until `not_after`, as after
    /// [`Opener::retire_key`], but only this key (not other lineages of its filter and epoch).
    pub fn add_retired_key(&mut self, key: TreeKey, not_after: u64) {
        self.cache.clear();
        self.keys.insert_retired(key, not_after);
    }

    /// Forgets every key of `filter` at `epoch` (and its retirement); returns whether one was
    /// held.
    pub fn remove_key(&mut self, filter: &str, epoch: u32) -> bool {
        self.cache.clear();
        self.keys.remove(filter, epoch)
    }

    /// Retires the key of `filter` at `epoch` after a rotation: messages under it are still
    /// opened until `not_after` (seconds since the Unix epoch, inclusive: the end of the grace
    /// period), then refused with [`Error::EpochExpired`]. The time is the delivery's
    /// [`Delivery::now`], else the system clock (std); without either a retired key counts as
    /// expired. Replaces an earlier retirement of the same key.
    ///
    /// ```
    /// use mqseal::{Delivery, Error, Identity, Opener, Profile, Sealer, TreeKey};
    /// let sender = Identity::from_seed([1; 32]);
    /// let old = TreeKey::from_secret("a/#", 1, [2; 32]).unwrap();
    /// let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    /// sealer.add_key(old.clone());
    /// let (m1, m2) = (sealer.seal("a/b", b"1", false).unwrap(), sealer.seal("a/b", b"2", false).unwrap());
    ///
    /// let mut opener = Opener::new();
    /// opener.trust_sender(sender.public());
    /// opener.add_key(old);
    /// opener.retire_key("a/#", 1, 1_000);
    /// let at = |now| Delivery { now: Some(now), ..Delivery::default() };
    /// assert!(opener.open_delivered("a/b", &m1, &at(1_000)).is_ok());
    /// assert_eq!(opener.open_delivered("a/b", &m2, &at(1_001)).unwrap_err(), Error::EpochExpired);
    /// ```
    pub fn retire_key(&mut self, filter: &str, epoch: u32, not_after: u64) {
        self.keys.retire(filter, epoch, not_after);
    }

    /// When the key of `filter` at `epoch` stops being accepted, if it was retired.
    pub fn key_retirement(&self, filter: &str, epoch: u32) -> Option<u64> {
        self.keys.retirement(filter, epoch)
    }

    /// The replay window of (sender, profile, epoch, topic), if any message was accepted
    /// there (and it was not evicted since). Each profile has its own windows (spec 7.3), so
    /// `group-mac` messages, which any key holder can forge, never move a sender's `signed`
    /// window.
    pub fn replay_window(
        &self,
        sender: &Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
    ) -> Option<&ReplayWindow> {
        self.replay.window(sender, profile, epoch, topic)
    }

    /// Installs a replay window (e.g. restored from disk after a restart), within the
    /// [`ReplayLimits`]; raises the sender's high-water mark to its highest number.
    pub fn set_replay_window(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        window: ReplayWindow,
    ) {
        self.replay
            .set_window(sender, profile, epoch, topic, window);
    }

    /// The sender's eviction floor in `profile` (spec 7.3): the highest number of any of its
    /// windows dropped to stay within the [`ReplayLimits`]. Numbers at or below it are refused
    /// [`Error::TooOld`] on every topic. Persist it with the windows.
    pub fn replay_floor(&self, sender: &Fingerprint, profile: Profile) -> Option<u64> {
        self.replay.floor(sender, profile)
    }

    /// Raises the sender's eviction floor in `profile` to at least `floor` (e.g. restored from
    /// disk; a floor never goes down). Raises its high-water mark with it.
    pub fn raise_replay_floor(&mut self, sender: Fingerprint, profile: Profile, floor: u64) {
        self.replay.raise_floor(sender, profile, floor);
    }

    /// Every replay window, as (sender, profile, epoch, topic, window), ordered by those keys:
    /// what a receiver persists (with [`Opener::replay_floors`]).
    pub fn replay_windows(
        &self,
    ) -> impl Iterator<Item = (Fingerprint, Profile, u32, &str, &ReplayWindow)> + '_ {
        self.replay.windows()
    }

    /// Every eviction floor, as (sender, profile, floor).
    pub fn replay_floors(&self) -> impl Iterator<Item = (Fingerprint, Profile, u64)> + '_ {
        self.replay.floors()
    }

    /// The number of replay windows held (at most [`ReplayLimits::total`]).
    pub fn replay_window_count(&self) -> usize {
        self.replay.len()
    }

    /// The caps on replay windows in force.
    pub fn replay_limits(&self) -> ReplayLimits {
        self.replay.limits()
    }

    /// Sets the caps on replay windows (each at least 1), evicting down to them at once.
    ///
    /// ```
    /// use mqseal::{Error, Identity, Opener, Profile, ReplayLimits, Sealer, TreeKey};
    /// let sender = Identity::from_seed([1; 32]);
    /// let key = TreeKey::from_secret("#", 1, [2; 32]).unwrap();
    /// let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    /// sealer.add_key(key.clone());
    /// let old = sealer.seal("t/0", b"0", false).unwrap();
    ///
    /// let mut opener = Opener::new();
    /// opener.trust_sender(sender.public());
    /// opener.add_key(key);
    /// opener.set_replay_limits(ReplayLimits { per_sender: 2, total: 100 });
    /// opener.open("t/0", &old).unwrap();
    /// for t in ["t/1", "t/2"] {
    ///     opener.open(t, &sealer.seal(t, b"x", false).unwrap()).unwrap();
    /// }
    /// // t/0's window was evicted: its replay is refused by the sender's floor.
    /// assert_eq!(opener.replay_window_count(), 2);
    /// assert_eq!(opener.open("t/0", &old).unwrap_err(), Error::TooOld);
    /// ```
    pub fn set_replay_limits(&mut self, limits: ReplayLimits) {
        self.replay.set_limits(limits);
    }

    /// Re-applies an acceptance read back from a receiver's journal: `seq` is recorded in the
    /// window of (sender, profile, epoch, topic) unless the state already refuses it (as a
    /// replay, or at or below the sender's floor), in which case nothing changes.
    pub fn restore_accepted(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        seq: u64,
    ) {
        self.replay
            .restore_accepted(sender, profile, epoch, topic, seq);
    }

    /// Forgets every replay window, floor and high-water mark (keys, senders and policy
    /// stay), e.g. before reloading them from disk.
    pub fn clear_replay_state(&mut self) {
        self.replay.clear();
    }

    /// Opens a message received on `topic` (a live delivery: not retained, not a redelivery).
    pub fn open(&mut self, topic: &str, message: &[u8]) -> Result<Opened> {
        self.open_delivered(topic, message, &Delivery::default())
    }

    /// Opens a message, taking the delivery's MQTT flags and time into account.
    pub fn open_delivered(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened> {
        // Allocate only for a message that passed the checks before decryption (steps 1–5):
        // junk costs no allocation of its own length.
        let checked = self.precheck(topic, message, delivery)?;
        let signer = self.verify(&checked)?;
        let mut payload = vec![0u8; checked.parts.ciphertext.len()];
        let info = self.finish(&checked, signer, delivery, &mut payload)?;
        Ok(Opened::new(info, payload))
    }

    /// Opens into a caller-provided buffer (at least as long as the ciphertext: the message length
    /// minus its overhead) without allocating per message (only the first message accepted from a
    /// sender on a topic and epoch allocates, for its replay window, and the first on a topic, for
    /// its cached topic key). On any error the buffer's first `payload_len` bytes are zeroed, so no
    /// unverified plaintext is left behind.
    pub fn open_into(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
        out: &mut [u8],
    ) -> Result<OpenedInfo> {
        let checked = self.precheck(topic, message, delivery)?;
        let signer = self.verify(&checked)?;
        self.finish(&checked, signer, delivery, out)
    }

    /// Opens many messages at once, verifying all their Ed25519 signatures in one batch
    /// (about twice as fast per message as one by one for batches of 64). Results come back in
    /// order, exactly as [`Opener::open_delivered`] would give them one after the other: if the
    /// batch does not verify, each signature is checked on its own so that only the bad messages
    /// fail (with [`Error::BadSignature`]), and replay windows see the messages in order.
    ///
    /// ```
    /// use mqseal::{BatchItem, Identity, Opener, Profile, Sealer, TreeKey};
    /// let sender = Identity::from_seed([1; 32]);
    /// let key = TreeKey::from_secret("#", 1, [2; 32]).unwrap();
    /// let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
    /// sealer.add_key(key.clone());
    /// let mut sealed: Vec<Vec<u8>> = (0..8u8).map(|i| sealer.seal("t", &[i], false).unwrap()).collect();
    /// sealed[3][10] ^= 1; // tampered
    ///
    /// let mut opener = Opener::new();
    /// opener.trust_sender(sender.public());
    /// opener.add_key(key);
    /// let items: Vec<BatchItem> = sealed.iter().map(|m| BatchItem::live("t", m)).collect();
    /// let results = opener.open_batch(&items);
    /// assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7);
    /// assert_eq!(results[3].as_ref().unwrap_err(), &mqseal::Error::BadSignature);
    /// ```
    pub fn open_batch(&mut self, items: &[BatchItem<'_>]) -> Vec<Result<Opened>> {
        let checked: Vec<Result<Checked<'_>>> = items
            .iter()
            .map(|it| self.precheck(it.topic, it.message, &it.delivery))
            .collect();
        let signers = self.verify_all(&checked);
        checked
            .into_iter()
            .zip(signers)
            .zip(items)
            .map(|((checked, signer), item)| {
                let checked = checked?;
                let signer = signer?;
                let mut payload = vec![0u8; checked.parts.ciphertext.len()];
                let info = self.finish(&checked, signer, &item.delivery, &mut payload)?;
                Ok(Opened::new(info, payload))
            })
            .collect()
    }

    /// Steps 1–4 of the receiver rules: parse, profile policy, topic, sender lookup, the one
    /// key the header's key id names, its retirement; computes the digests the later steps need.
    fn precheck<'m>(
        &self,
        topic: &'m str,
        message: &'m [u8],
        delivery: &Delivery,
    ) -> Result<Checked<'m>> {
        let parts = SealedParts::parse(message)?;
        let header = parts.header;
        // Step 2: group-mac only if some sender may use it somewhere (cheap, before any lookup).
        if header.profile == Profile::GroupMac
            && self.senders.iter().all(|s| s.group_mac.is_empty())
        {
            return Err(Error::ProfileNotAllowed);
        }
        validate_topic(topic)?;
        if !self
            .senders
            .iter()
            .any(|s| s.identity.sender_id() == header.sender)
        {
            return Err(Error::UnknownSender);
        }
        // The sender's profile policy: only senders trusted for this profile on this topic are
        // candidates (spec 7.1 step 4).
        if !self.candidates(&header, topic).any(|_| true) {
            return Err(Error::ProfileNotAllowed);
        }
        // The one key: the most specific covering key of this epoch whose topic key has the
        // header's key id (spec 7.1 step 4). No other key is ever tried.
        let (topic_key, fresh, retired, validity) = self
            .keys
            .candidates(topic, header.epoch)
            .find_map(|(i, k, retired)| match self.cache.topics.get(i, topic) {
                Some(tk) => (tk.key_id() == header.key_id)
                    .then(|| (tk.clone(), None, retired, k.validity())),
                // Derived from the deepest cached node key of the path; the digest only on a match.
                None => k
                    .topic_secret(topic, &self.cache.nodes, i)
                    .filter(|s| s.key_id() == header.key_id)
                    .map(|s| {
                        let from = s.cached_to();
                        (
                            s.into_topic_key(topic),
                            Some((i, from)),
                            retired,
                            k.validity(),
                        )
                    }),
            })
            .ok_or(Error::KeyNotFound)?;
        if let Some(not_after) = retired
            && delivery
                .now
                .or_else(system_now)
                .is_none_or(|now| now > not_after)
        {
            return Err(Error::EpochExpired);
        }
        // The key's own validity, after its retirement (spec 7.1 step 4).
        if validity.is_limited()
            && !validity.accepts(
                delivery.now.or_else(system_now),
                self.policy.max_future_skew,
                self.policy.validity_grace,
            )
        {
            return Err(Error::KeyExpired);
        }
        // Replay pre-check (end of spec 7.1 step 4): with exactly one candidate sender, a number
        // its window already refuses is refused now, read-only, before any signature or AEAD
        // work — a broker replaying real traffic costs a lookup, not a verification.
        let mut candidates = self.candidates(&header, topic);
        if let (Some(only), None) = (candidates.next(), candidates.next()) {
            self.window_check(
                &(only.1.fingerprint(), header.profile, header.epoch),
                topic,
                header.seq,
                delivery,
            )?;
        }
        let topic_digest = topic_key.topic_digest();
        let signature_digest = parts.signature.map(|_| {
            transcript_digest(
                labels::MESSAGE_SIGNATURE,
                &[
                    parts.header_bytes,
                    &topic_digest,
                    parts.ciphertext,
                    parts.tag,
                ],
            )
        });
        Ok(Checked {
            topic,
            parts,
            topic_key,
            cache_as: fresh,
            signature_digest,
        })
    }

    /// The candidate senders of a message, in the order they were trusted, with their index:
    /// the trusted senders whose sender id is the header's and that may use its profile on
    /// `topic`.
    fn candidates<'s>(
        &'s self,
        header: &'s Header,
        topic: &'s str,
    ) -> impl Iterator<Item = (usize, &'s PublicIdentity)> + 's {
        self.senders
            .iter()
            .enumerate()
            .filter(move |(_, s)| {
                s.identity.sender_id() == header.sender && s.accepts(header.profile, topic)
            })
            .map(|(i, s)| (i, &s.identity))
    }

    /// Step 5: the index of the trusted sender whose signature verifies (signed profile).
    fn verify(&self, checked: &Checked<'_>) -> Result<Option<usize>> {
        let (Some(signature), Some(digest)) = (checked.parts.signature, &checked.signature_digest)
        else {
            return Ok(None);
        };
        self.candidates(&checked.parts.header, checked.topic)
            .find(|(_, s)| s.verify_digest(digest, signature).is_ok())
            .map(|(i, _)| Some(i))
            .ok_or(Error::BadSignature)
    }

    /// Step 5 for a batch: one Ed25519 batch verification (spec 7.6, the same cofactored rule as
    /// [`Opener::verify`]) over every signed message whose sender id names exactly one trusted
    /// sender and whose signature passes the encoding checks; each message on its own if the
    /// batch fails (so that exactly the bad ones are refused) or cannot hold it.
    fn verify_all(&self, checked: &[Result<Checked<'_>>]) -> Vec<Result<Option<usize>>> {
        let unique_sender = |c: &Checked<'_>| {
            let mut it = self.candidates(&c.parts.header, c.topic);
            match (it.next(), it.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        };
        // (item, sender, signature): checks 1–3 of spec 7.6 done once, here.
        let mut batch: Vec<(usize, usize, signature::Prepared)> = Vec::new();
        for (i, c) in checked.iter().enumerate() {
            if let Ok(c) = c
                && let Some(sig) = c.parts.signature
                && let Some(s) = unique_sender(c)
                && let Some(prepared) = signature::Prepared::new(sig)
            {
                batch.push((i, s, prepared));
            }
        }
        let batch_ok = batch.len() > 1 && self.batch_verifies(checked, &batch);
        checked
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = c.as_ref().map_err(|e| *e)?;
                match batch.iter().find(|(item, _, _)| *item == i) {
                    Some((_, sender, _)) if batch_ok => Ok(Some(*sender)),
                    _ => self.verify(c),
                }
            })
            .collect()
    }

    fn batch_verifies(
        &self,
        checked: &[Result<Checked<'_>>],
        batch: &[(usize, usize, signature::Prepared)],
    ) -> bool {
        let mut entries = Vec::with_capacity(batch.len());
        for (item, sender, prepared) in batch {
            let (Some(Ok(c)), Some(s)) = (checked.get(*item), self.senders.get(*sender)) else {
                return false;
            };
            let Some(digest) = c.signature_digest.as_ref() else {
                return false;
            };
            entries.push(signature::BatchEntry {
                key: s.identity.verifying_key(),
                message: digest,
                signature: prepared,
            });
        }
        signature::verify_batch(&entries)
    }

    /// Steps 6–9: decrypt with the one key (and each candidate sender, for group-mac), delivery
    /// policy, replay window, accept.
    fn finish(
        &mut self,
        checked: &Checked<'_>,
        signer: Option<usize>,
        delivery: &Delivery,
        out: &mut [u8],
    ) -> Result<OpenedInfo> {
        let parts = &checked.parts;
        let header = parts.header;
        let topic = checked.topic;
        let out = out
            .get_mut(..parts.ciphertext.len())
            .ok_or(Error::BufferTooSmall)?;
        let mut aad = [0u8; MAX_HEADER_LEN + 32];
        let aad_len = envelope::associated_data(
            parts.header_bytes,
            &checked.topic_key.topic_digest(),
            &mut aad,
        )?;
        let aad = aad.get(..aad_len).ok_or(Error::Malformed)?;
        let nonce = Nonce::from(envelope::nonce(header.seq));
        let tag = Tag::from(*parts.tag);

        let mut opened_by = None;
        for (i, sender) in self.candidates(&header, topic) {
            if signer.is_some_and(|s| s != i) {
                continue;
            }
            out.copy_from_slice(parts.ciphertext);
            let k = checked.topic_key.message_key(
                header.profile,
                sender.verifying_key().as_bytes(),
                &header.salt,
            );
            let cipher = ChaCha20Poly1305::new(<&Key>::from(&*k));
            if cipher
                .decrypt_inout_detached(&nonce, aad, (&mut *out).into(), &tag)
                .is_ok()
            {
                opened_by = Some(sender.clone());
                break;
            }
        }
        let Some(sender) = opened_by else {
            out.zeroize();
            return Err(Error::AuthenticationFailed);
        };
        if let Some((index, from)) = checked.cache_as {
            // Cache only keys that authenticated a message: refusals (and junk on made-up
            // topics) neither allocate nor evict useful entries.
            self.remember_keys(index, from, topic, &checked.topic_key);
        }

        if let Err(e) = self.accept(topic, &header, &sender, delivery) {
            out.zeroize();
            return Err(e);
        }
        Ok(OpenedInfo {
            sender,
            seq: header.seq,
            epoch: header.epoch,
            profile: header.profile,
            retain: header.retain,
            timestamp: header.timestamp,
            payload_len: parts.ciphertext.len(),
        })
    }

    /// Policy checks on the authenticated header, then the replay window.
    fn accept(
        &mut self,
        topic: &str,
        header: &Header,
        sender: &PublicIdentity,
        delivery: &Delivery,
    ) -> Result<()> {
        if delivery.retained && !header.retain {
            return Err(Error::RetainMismatch);
        }
        match header.timestamp {
            // A maximum age implies a timestamp (spec 7.1 step 7).
            None if self.policy.require_timestamp || self.policy.max_age.is_some() => {
                return Err(Error::MissingTimestamp);
            }
            None => {}
            Some(ts) => {
                if let Some(max_age) = self.policy.max_age {
                    let now = delivery.now.or_else(system_now).ok_or(Error::Expired)?;
                    if ts.saturating_add(max_age) < now
                        || ts > now.saturating_add(self.policy.max_future_skew)
                    {
                        return Err(Error::Expired);
                    }
                }
            }
        }
        let lineage = (sender.fingerprint(), header.profile, header.epoch);
        self.window_check(&lineage, topic, header.seq, delivery)?;
        self.replay
            .record(lineage.0, lineage.1, lineage.2, topic, header.seq)
    }

    /// The replay rule of spec 7.3, read-only: whether `seq` would be accepted in the window of
    /// (sender, profile, epoch) on `topic` — `replay` (`duplicate` with the DUP flag) or
    /// `too_old` if not. Numbers at or below the sender's eviction floor are `too_old`; with no
    /// window yet, a live delivery must be within the window of the sender's high-water mark
    /// (for that profile), so a broker cannot replay a historic message to a receiver that has
    /// no window there yet; deliveries of stored retained messages are exempt from the mark
    /// (section 7.4), not from the floor.
    fn window_check(
        &self,
        lineage: &(Fingerprint, Profile, u32),
        topic: &str,
        seq: u64,
        delivery: &Delivery,
    ) -> Result<()> {
        self.replay.check(
            &lineage.0,
            lineage.1,
            lineage.2,
            topic,
            seq,
            delivery.retained,
            delivery.duplicate,
        )
    }

    /// The highest sequence number accepted from `sender` in `profile` on any topic and epoch
    /// (the first-contact bound of spec section 7.3), if any.
    pub fn high_water_mark(&self, sender: &Fingerprint, profile: Profile) -> Option<u64> {
        self.replay.high_water(sender, profile)
    }
}

/// The caches of derived keys (topic keys and node keys, spec section 4).
impl Opener {
    /// Bounds the caches of derived keys (default [`KeyCacheLimits::DEFAULT`]: 256 topic keys,
    /// 256 node keys); a cache holding more than its new limit is emptied. Only keys that
    /// authenticated a message are cached, so refused messages never grow or evict them; when
    /// a cache is full, the older half of its entries (by insertion) is dropped. A lower limit
    /// costs derivations, never correctness.
    pub fn set_key_cache_limits(&mut self, limits: KeyCacheLimits) {
        self.cache.set_limits(limits);
    }

    /// The limits of the caches of derived keys.
    pub fn key_cache_limits(&self) -> KeyCacheLimits {
        self.cache.limits()
    }

    /// How many derived keys are cached now: (topic keys, node keys).
    pub fn cached_key_counts(&self) -> (usize, usize) {
        (self.cache.topics.len(), self.cache.nodes.len())
    }

    /// After a message on `topic` authenticated under the ring's key `index` with a topic key
    /// that was not cached (derived from the cached node ending at `from` in `topic`, if any):
    /// caches it, and the node keys of its path below `from`.
    fn remember_keys(
        &mut self,
        index: usize,
        from: Option<usize>,
        topic: &str,
        topic_key: &TopicKey,
    ) {
        self.cache.topics.insert(index, topic, topic_key.clone());
        if let Some(key) = self.keys.get(index) {
            key.cache_nodes(topic, &mut self.cache.nodes, index, from);
        }
    }
}

#[cfg(feature = "std")]
fn system_now() -> Option<u64> {
    Some(crate::time::unix_now())
}

#[cfg(not(feature = "std"))]
fn system_now() -> Option<u64> {
    None
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("senders", &self.senders)
            .field("keys", &self.keys.iter().collect::<Vec<_>>())
            .field("windows", &self.replay.len())
            .field("policy", &self.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::seal::{SealOptions, Sealer};

    fn at(now: u64) -> Delivery {
        Delivery {
            now: Some(now),
            ..Delivery::default()
        }
    }

    fn sealer(seed: u8, keys: &[&TreeKey]) -> Sealer {
        let mut s = Sealer::new(Identity::from_seed([seed; 32]), Profile::Signed, 0);
        for k in keys {
            s.add_key((*k).clone());
        }
        s
    }

    #[test]
    fn retired_epoch_is_accepted_through_grace_then_refused() {
        let e1 = TreeKey::from_secret("a/#", 1, [1; 32]).unwrap();
        let e2 = TreeKey::from_secret("a/#", 2, [2; 32]).unwrap();
        let mut old = sealer(9, &[&e1]);
        let mut new = sealer(9, &[&e1, &e2]);
        new.set_sequence(100, u64::MAX);
        let mut opener = Opener::new();
        opener.trust_sender(Identity::from_seed([9; 32]).public());
        opener.add_key(e1.clone());
        opener.add_key(e2.clone());
        opener.retire_key("a/#", 1, 500);
        assert_eq!(opener.key_retirement("a/#", 1), Some(500));
        assert_eq!(opener.key_retirement("a/#", 2), None);

        let m = old.seal("a/x", b"in grace", false).unwrap();
        assert_eq!(opener.open_delivered("a/x", &m, &at(500)).unwrap().epoch, 1);
        let m = old.seal("a/x", b"late", false).unwrap();
        assert_eq!(
            opener.open_delivered("a/x", &m, &at(501)).unwrap_err(),
            Error::EpochExpired
        );
        // The new epoch is unaffected; the sealer already uses it.
        let m = new.seal("a/x", b"new", false).unwrap();
        assert_eq!(
            opener.open_delivered("a/x", &m, &at(10_000)).unwrap().epoch,
            2
        );
        // System clock when the delivery has no time: far past / far future.
        let m = old.seal("a/x", b"clock", false).unwrap();
        assert_eq!(opener.open("a/x", &m).unwrap_err(), Error::EpochExpired);
        opener.retire_key("a/#", 1, u64::MAX);
        assert!(opener.open("a/x", &m).is_ok());
        // Removing the key clears its retirement; a re-added key is live again.
        assert!(opener.remove_key("a/#", 1));
        assert_eq!(opener.key_retirement("a/#", 1), None);
        let m = old.seal("a/x", b"gone", false).unwrap();
        assert_eq!(
            opener.open_delivered("a/x", &m, &at(0)).unwrap_err(),
            Error::KeyNotFound
        );
        opener.add_key(e1);
        assert!(opener.open_delivered("a/x", &m, &at(u64::MAX)).is_ok());
    }

    #[test]
    fn epoch_expired_is_checked_after_sender_and_key_lookup() {
        let e1 = TreeKey::from_secret("#", 1, [1; 32]).unwrap();
        let mut s = sealer(3, &[&e1]);
        let m = s.seal("t", b"x", false).unwrap();
        let mut opener = Opener::new();
        opener.add_key(e1);
        opener.retire_key("#", 1, 0);
        assert_eq!(
            opener.open_delivered("t", &m, &at(1)).unwrap_err(),
            Error::UnknownSender
        );
        opener.trust_sender(Identity::from_seed([3; 32]).public());
        assert_eq!(
            opener.open_delivered("t", &m, &at(1)).unwrap_err(),
            Error::EpochExpired
        );
        // Checked before the signature: a forged message under an expired epoch says so too.
        let mut forged = m.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(
            opener.open_delivered("t", &forged, &at(1)).unwrap_err(),
            Error::EpochExpired
        );
    }

    #[test]
    fn the_key_id_names_the_one_key_even_when_another_covers_the_topic() {
        // Independent keys of the same epoch: a broad one retired and expired, a narrow one live.
        // The key id selects the broad key for messages sealed with it: its expiry is reported
        // (v1 tried the narrow key too and said authentication_failed).
        let broad = TreeKey::from_secret("#", 1, [1; 32]).unwrap();
        let narrow = TreeKey::from_secret("a/#", 1, [2; 32]).unwrap();
        let mut opener = Opener::new();
        opener.trust_sender(Identity::from_seed([4; 32]).public());
        opener.add_key(broad.clone());
        opener.add_key(narrow.clone());
        opener.retire_key("#", 1, 10);
        let via_narrow = sealer(4, &[&narrow]).seal("a/b", b"ok", false).unwrap();
        assert!(opener.open_delivered("a/b", &via_narrow, &at(11)).is_ok());
        let mut s = sealer(4, &[&broad]);
        s.set_sequence(5, u64::MAX);
        let via_broad = s.seal("a/b", b"expired key", false).unwrap();
        assert_eq!(
            opener
                .open_delivered("a/b", &via_broad, &at(11))
                .unwrap_err(),
            Error::EpochExpired
        );
        assert!(opener.open_delivered("a/b", &via_broad, &at(10)).is_ok());
    }

    #[test]
    fn only_the_key_named_by_the_key_id_is_tried() {
        // Two independent trees of one epoch both cover the topic; a message sealed under the
        // narrow one opens, and a key id that names neither is key_not_found, not a trial.
        let broad = TreeKey::from_secret("#", 1, [1; 32]).unwrap();
        let narrow = TreeKey::from_secret("a/#", 1, [2; 32]).unwrap();
        let mut opener = Opener::new();
        opener.trust_sender(Identity::from_seed([4; 32]).public());
        opener.add_key(broad.clone());
        opener.add_key(narrow.clone());
        let m = sealer(4, &[&broad])
            .seal("a/b", b"via broad", false)
            .unwrap();
        assert_eq!(opener.open("a/b", &m).unwrap().payload, b"via broad");
        let mut s = sealer(4, &[&narrow]);
        s.set_sequence(1, u64::MAX);
        let m = s.seal("a/b", b"via narrow", false).unwrap();
        let mut other = m.clone();
        assert_eq!(opener.open("a/b", &m).unwrap().payload, b"via narrow");
        // Header layout: flags, epoch (1 byte here), sender id (4), key id (4).
        other[6] ^= 0x80;
        assert_eq!(opener.open("a/b", &other).unwrap_err(), Error::KeyNotFound);
        assert_eq!(opener.open("a/b", &m).unwrap_err(), Error::Replay);
    }

    #[test]
    fn every_message_gets_a_fresh_salt_so_a_reused_sequence_number_reuses_no_nonce() {
        // Two sealers of one identity, both at 0 (a restored backup, a fork): same sequence
        // numbers, different salts, so different message keys and ciphertexts.
        let key = TreeKey::from_secret("#", 1, [7; 32]).unwrap();
        let opts = SealOptions::at(false, 1_800_000_000);
        let a = sealer(5, &[&key]).seal_with("t", b"same", &opts).unwrap();
        let b = sealer(5, &[&key]).seal_with("t", b"same", &opts).unwrap();
        let (ha, la) = Header::decode(&a).unwrap();
        let (hb, lb) = Header::decode(&b).unwrap();
        assert_eq!((ha.seq, la), (hb.seq, lb));
        assert_ne!(ha.salt, hb.salt);
        assert_ne!(a[la..la + 4], b[lb..lb + 4]);
    }

    #[test]
    fn first_contact_on_a_new_topic_is_held_to_the_senders_high_water_mark() {
        let key = TreeKey::from_secret("#", 1, [7; 32]).unwrap();
        let mut s = sealer(6, &[&key]);
        let old = s.seal("b", b"historic", false).unwrap(); // seq 0
        let old_retained = s.seal("c", b"historic retained", true).unwrap(); // seq 1
        s.set_sequence(5_000, u64::MAX);
        let live = s.seal("a", b"now", false).unwrap();
        let near = s.seal("d", b"new topic, new number", false).unwrap();
        let mut opener = Opener::new();
        opener.trust_sender(Identity::from_seed([6; 32]).public());
        opener.add_key(key);
        assert!(opener.open("a", &live).is_ok());
        let fp = Identity::from_seed([6; 32]).fingerprint();
        assert_eq!(opener.high_water_mark(&fp, Profile::Signed), Some(5_000));
        // A broker replays a historic message live on a topic the receiver has no window for.
        assert_eq!(opener.open("b", &old).unwrap_err(), Error::TooOld);
        assert!(opener.replay_window(&fp, Profile::Signed, 1, "b").is_none());
        // A stored retained message delivered as such is not held to the mark (section 7.4).
        let retained = Delivery {
            retained: true,
            ..Delivery::default()
        };
        assert!(opener.open_delivered("c", &old_retained, &retained).is_ok());
        assert!(opener.open("d", &near).is_ok());
    }

    #[test]
    fn a_maximum_age_implies_a_timestamp() {
        let key = TreeKey::from_secret("#", 1, [7; 32]).unwrap();
        let mut s = sealer(8, &[&key]);
        let bare = s
            .seal_with("t", b"x", &SealOptions::without_timestamp(false))
            .unwrap();
        let stamped = s
            .seal_with("t", b"y", &SealOptions::at(false, 1_000))
            .unwrap();
        let mut opener = Opener::with_policy(OpenPolicy {
            max_age: Some(60),
            ..OpenPolicy::default()
        });
        opener.trust_sender(Identity::from_seed([8; 32]).public());
        opener.add_key(key);
        assert_eq!(
            opener.open_delivered("t", &bare, &at(1_000)).unwrap_err(),
            Error::MissingTimestamp
        );
        assert!(opener.open_delivered("t", &stamped, &at(1_030)).is_ok());
    }

    #[test]
    fn group_mac_forgeries_cannot_move_a_senders_signed_window() {
        // Alice may use group-mac on a/# (a constrained device) and also signs. Mallory, a key
        // holder, forges alice in group-mac with seq 2^64-2: it lands in alice's group-mac
        // window only, so alice's signed messages are not locked out (spec 7.3).
        let key = TreeKey::from_secret("a/#", 1, [7; 32]).unwrap();
        let alice = Identity::from_seed([5; 32]);
        let mut opener = Opener::new();
        opener
            .trust_group_mac_sender(alice.public(), "a/#")
            .unwrap();
        opener.add_key(key.clone());
        let mut forger = Sealer::new(alice.clone(), Profile::GroupMac, u64::MAX - 2);
        forger.add_key(key.clone());
        let forged = forger.seal("a/b", b"forged", false).unwrap();
        assert!(opener.open("a/b", &forged).is_ok());
        let fp = alice.public().fingerprint();
        assert_eq!(
            opener.high_water_mark(&fp, Profile::GroupMac),
            Some(u64::MAX - 2)
        );
        assert_eq!(opener.high_water_mark(&fp, Profile::Signed), None);
        let mut real = Sealer::new(alice, Profile::Signed, 7);
        real.add_key(key);
        let m = real.seal("a/b", b"real", false).unwrap();
        assert_eq!(opener.open("a/b", &m).unwrap().payload, b"real");
        assert!(
            opener
                .replay_window(&fp, Profile::Signed, 1, "a/b")
                .is_some()
        );
    }

    #[test]
    fn two_issuers_lineages_of_one_filter_and_epoch_both_open() {
        // Two issuers each granted their own plant/# at epoch 1 (different secrets): both are
        // held, and each message's key id names the one it was sealed with (spec 8.1).
        let first = TreeKey::from_secret("a/#", 1, [1; 32]).unwrap();
        let second = TreeKey::from_secret("a/#", 1, [2; 32]).unwrap();
        let mut opener = Opener::new();
        let s1 = sealer(3, &[&first]);
        let s2 = sealer(4, &[&second]);
        for s in [&s1, &s2] {
            opener.trust_sender(s.identity().public());
        }
        opener.add_key(first.clone());
        opener.add_key(second);
        let (mut s1, mut s2) = (s1, s2);
        let m1 = s1.seal("a/b", b"one", false).unwrap();
        let m2 = s2.seal("a/b", b"two", false).unwrap();
        assert_eq!(opener.open("a/b", &m2).unwrap().payload, b"two");
        assert_eq!(opener.open("a/b", &m1).unwrap().payload, b"one");
        // Retiring only the first lineage leaves the second open.
        let mut opener2 = Opener::new();
        opener2.trust_sender(s1.identity().public());
        opener2.trust_sender(s2.identity().public());
        opener2.add_retired_key(first, 10);
        opener2.add_key(TreeKey::from_secret("a/#", 1, [2; 32]).unwrap());
        let at = |now| Delivery {
            now: Some(now),
            ..Delivery::default()
        };
        let m1 = s1.seal("a/c", b"one", false).unwrap();
        let m2 = s2.seal("a/c", b"two", false).unwrap();
        assert_eq!(
            opener2.open_delivered("a/c", &m1, &at(11)).unwrap_err(),
            Error::EpochExpired
        );
        assert!(opener2.open_delivered("a/c", &m2, &at(11)).is_ok());
    }
}
