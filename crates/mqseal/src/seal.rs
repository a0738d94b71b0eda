//! Sealing: topic + payload → sealed bytes, with the sender's sequence counter.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::envelope::{
    self, Header, MAX_HEADER_LEN, MAX_SEALED_LEN, Profile, SALT_LEN, SIGNATURE_LEN, TAG_LEN,
};
use crate::error::{Error, Result};
use crate::identity::{Identity, transcript_digest};
use crate::keys::{KeyRing, TopicKey, TreeKey};
use crate::labels;
use crate::random::RandomSource;
use crate::topic::validate_topic;

/// Per-message options for [`Sealer::seal_with`].
///
/// Messages carry the sender's timestamp by default (std builds: the system clock), so that
/// receivers with a maximum age can bound how long a broker held a message back.
///
/// The timestamp is also the **sealing time** at which key validities are checked (spec
/// section 6 step 2): without one, std builds read the system clock, and `no_std` builds have
/// no time, so a key with a validity limit cannot be used there ([`Error::KeyExpired`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// The MQTT retain flag the message will be published with (bound into the message).
    pub retain: bool,
    /// Sender timestamp (seconds since the Unix epoch) to include, for receivers with a max age.
    pub timestamp: Option<u64>,
}

impl SealOptions {
    /// Options with the retain flag set as given and the current time as the timestamp (std
    /// builds; `no_std` builds have no clock: use [`SealOptions::at`]).
    pub fn retain(retain: bool) -> SealOptions {
        SealOptions {
            retain,
            timestamp: now(),
        }
    }

    /// Options with the retain flag and an explicit timestamp (seconds since the Unix epoch).
    pub fn at(retain: bool, timestamp: u64) -> SealOptions {
        SealOptions {
            retain,
            timestamp: Some(timestamp),
        }
    }

    /// Options with the retain flag and no timestamp (5 bytes shorter; receivers with a maximum
    /// age refuse such messages with [`Error::MissingTimestamp`]).
    pub fn without_timestamp(retain: bool) -> SealOptions {
        SealOptions {
            retain,
            timestamp: None,
        }
    }

    /// Sets the current wall-clock time as the timestamp.
    #[cfg(feature = "std")]
    pub fn with_now(mut self) -> SealOptions {
        self.timestamp = Some(crate::time::unix_now());
        self
    }
}

#[cfg(feature = "std")]
fn now() -> Option<u64> {
    Some(crate::time::unix_now())
}

#[cfg(not(feature = "std"))]
fn now() -> Option<u64> {
    None
}

/// The time key validities are checked at (spec section 6 step 2): the message's timestamp,
/// else the system clock (std), else none.
fn sealing_time(options: &SealOptions) -> Option<u64> {
    options.timestamp.or_else(now)
}

/// Seals messages for one sender.
///
/// Every message gets a fresh 8-byte random salt mixed into its key, so (key, nonce) pairs stay
/// unique even when a sequence number is used twice (a restored backup, a fork, a VM snapshot,
/// one identity in two places). The sequence counter serves replay protection only: receivers
/// refuse a number they already accepted, so a sealer must still start above every number its
/// identity used (persist [`Sealer::next_seq`], or reserve blocks with [`Sealer::set_sequence`]
/// as the keystore does). The start is therefore an explicit argument.
///
/// ```
/// use mqseal::{Identity, Opener, Profile, Sealer, TreeKey};
/// let sender = Identity::from_seed([1; 32]);
/// let key = TreeKey::from_secret("plant/#", 1, [2; 32]).unwrap();
///
/// let mut sealer = Sealer::new(sender.clone(), Profile::Signed, 0);
/// sealer.add_key(key.clone());
/// let sealed = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
///
/// let mut opener = Opener::new();
/// opener.trust_sender(sender.public());
/// opener.add_key(key.derive("plant/7/#").unwrap());
/// let opened = opener.open("plant/7/temp", &sealed).unwrap();
/// assert_eq!(opened.payload, b"21.5");
/// assert_eq!(opened.seq, 0);
/// ```
pub struct Sealer {
    identity: Identity,
    profile: Profile,
    keys: KeyRing,
    next_seq: u64,
    limit: u64,
    /// Topic key by topic, with the ring index of the tree key it came from.
    cache: BTreeMap<String, (usize, TopicKey)>,
    random: Box<dyn RandomSource>,
}

/// Topic keys cached per sealer before the cache is cleared (bounds memory).
const CACHE_LIMIT: usize = 1024;

impl Sealer {
    /// A sealer for `identity` using `profile` whose first message carries sequence number
    /// `start` (no limit), drawing salts from the operating system.
    ///
    /// `start` must lie above every number this identity used before, or receivers refuse the
    /// repeated numbers as replays (never a nonce reuse: the salt prevents that). Processes that
    /// restart should use the keystore's persistent sealer, which reserves numbers durably.
    #[cfg(feature = "std")]
    pub fn new(identity: Identity, profile: Profile, start: u64) -> Sealer {
        Sealer::with_random(identity, profile, start, Box::new(crate::random::OsRandom))
    }

    /// Like [`Sealer::new`], with salts drawn from `random` (a firmware's hardware RNG in
    /// `no_std` builds; see [`RandomSource`] for what qualifies).
    pub fn with_random(
        identity: Identity,
        profile: Profile,
        start: u64,
        random: Box<dyn RandomSource>,
    ) -> Sealer {
        Sealer {
            identity,
            profile,
            keys: KeyRing::default(),
            next_seq: start,
            limit: u64::MAX,
            cache: BTreeMap::new(),
            random,
        }
    }

    /// Adds a key to seal with (the same key again takes the new validity). For each topic the
    /// most specific covering filter is used, at its newest epoch that has begun; keys outside
    /// their [`Validity`](crate::Validity) are never used (spec section 6 step 2).
    pub fn add_key(&mut self, key: TreeKey) {
        self.keys.insert(key);
        self.cache.clear();
    }

    /// Forgets the key of `filter` at `epoch`; returns whether it was held.
    pub fn remove_key(&mut self, filter: &str, epoch: u32) -> bool {
        self.cache.clear();
        self.keys.remove(filter, epoch)
    }

    /// The profile messages are sealed with.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The identity messages are sealed as.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The sequence number the next message will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The first sequence number this sealer may not use (see [`Sealer::set_sequence`]).
    pub fn sequence_limit(&self) -> u64 {
        self.limit
    }

    /// Sets the next sequence number and the exclusive limit up to which numbers may be used.
    ///
    /// Crash-safe persistence reserves a block: durably store `limit`, then call this; sealing
    /// fails with [`Error::SequenceExhausted`] once `limit` is reached, until a new block is
    /// reserved. After a restart resume at the stored limit, never below it.
    pub fn set_sequence(&mut self, next: u64, limit: u64) {
        self.next_seq = next;
        self.limit = limit;
    }

    /// Sealed length of a `payload_len`-byte payload with the next sequence number, or `None` if
    /// no key covering `topic` can be used with these options (none held, or none valid at the
    /// sealing time). Saturates at `usize::MAX` for absurd lengths (anything above
    /// [`MAX_SEALED_LEN`] cannot be sealed).
    pub fn sealed_len(
        &self,
        topic: &str,
        payload_len: usize,
        options: &SealOptions,
    ) -> Option<usize> {
        let (_, key) = self.keys.best_for(topic, sealing_time(options)).ok()?;
        let header = self.header(key.epoch(), [0; 4], [0; SALT_LEN], self.next_seq, options);
        Some(
            header
                .encoded_len()
                .saturating_add(payload_len)
                .saturating_add(self.profile.trailer_len()),
        )
    }

    /// Seals `payload` for `topic` with the given retain flag and the default options
    /// ([`SealOptions::retain`]: the current time as timestamp in std builds).
    pub fn seal(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<Vec<u8>> {
        self.seal_with(topic, payload, &SealOptions::retain(retain))
    }

    /// Seals `payload` for `topic` with explicit options.
    pub fn seal_with(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
    ) -> Result<Vec<u8>> {
        let max = payload.len() + MAX_HEADER_LEN + self.profile.trailer_len();
        let mut out = vec![0u8; max];
        let n = self.seal_into(topic, payload, options, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Seals into a caller-provided buffer without allocating (once the topic key is cached);
    /// returns the sealed length. `out` must hold `payload.len()` plus the profile's
    /// [`MAX_OVERHEAD_SIGNED`](crate::MAX_OVERHEAD_SIGNED) /
    /// [`MAX_OVERHEAD_GROUP_MAC`](crate::MAX_OVERHEAD_GROUP_MAC) bytes (or exactly
    /// [`Sealer::sealed_len`]).
    ///
    /// A sequence number is consumed once the checks passed (topic, key and its validity at
    /// the sealing time, length, buffer, counter) and the salt was drawn, even if a later step
    /// fails, so a number is never used twice. [`Error::KeyExpired`] if the key that covers
    /// `topic` is outside its validity and no other valid key covers it.
    pub fn seal_into(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
        out: &mut [u8],
    ) -> Result<usize> {
        validate_topic(topic)?;
        let (epoch, topic_key) = self.topic_key(topic, sealing_time(options))?;
        let mut salt = [0u8; SALT_LEN];
        let header = self.header(epoch, topic_key.key_id(), salt, self.next_seq, options);
        let hlen = header.encoded_len();
        let total = hlen + payload.len() + self.profile.trailer_len();
        if total > MAX_SEALED_LEN {
            return Err(Error::TooLarge);
        }
        if out.len() < total {
            return Err(Error::BufferTooSmall);
        }
        if self.next_seq >= self.limit {
            return Err(Error::SequenceExhausted);
        }
        self.random.fill(&mut salt)?;
        let header = Header { salt, ..header };
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1).ok_or(Error::SequenceExhausted)?;

        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let (head, body) = out.split_at_mut(hlen);
        header.encode(head)?;
        let (ct, trailer) = body.split_at_mut(payload.len());
        ct.copy_from_slice(payload);

        let mut aad = [0u8; MAX_HEADER_LEN + 32];
        let aad_len = envelope::associated_data(head, &topic_key.topic_digest(), &mut aad)?;
        let aad = aad.get(..aad_len).ok_or(Error::Malformed)?;
        let key = topic_key.message_key(self.profile, &self.identity.public().ed25519(), &salt);
        let cipher = ChaCha20Poly1305::new(<&Key>::from(&*key));
        let tag = cipher
            .encrypt_inout_detached(&Nonce::from(envelope::nonce(seq)), aad, ct.into())
            .map_err(|_| Error::TooLarge)?;
        let (tag_out, sig_out) = trailer.split_at_mut(TAG_LEN);
        tag_out.copy_from_slice(&tag);

        if self.profile == Profile::Signed {
            let digest = transcript_digest(
                labels::MESSAGE_SIGNATURE,
                &[head, &topic_key.topic_digest(), ct, tag_out],
            );
            let signature = self.identity.sign_digest(&digest);
            sig_out
                .get_mut(..SIGNATURE_LEN)
                .ok_or(Error::BufferTooSmall)?
                .copy_from_slice(&signature.to_bytes());
        }
        Ok(total)
    }

    fn header(
        &self,
        epoch: u32,
        key_id: [u8; crate::envelope::KEY_ID_LEN],
        salt: [u8; SALT_LEN],
        seq: u64,
        options: &SealOptions,
    ) -> Header {
        Header {
            profile: self.profile,
            retain: options.retain,
            epoch,
            sender: self.identity.public().sender_id(),
            key_id,
            salt,
            seq,
            timestamp: options.timestamp,
        }
    }

    fn topic_key(&mut self, topic: &str, now: Option<u64>) -> Result<(u32, TopicKey)> {
        let (index, best) = self.keys.best_for(topic, now)?;
        let epoch = best.epoch();
        // By ring index: the chosen key changes with time (validity), not only with the ring.
        if let Some((_, k)) = self.cache.get(topic).filter(|(i, _)| *i == index) {
            return Ok((epoch, k.clone()));
        }
        let k = best.topic_key(topic)?;
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(topic.to_string(), (index, k.clone()));
        Ok((epoch, k))
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("identity", &self.identity.fingerprint())
            .field("profile", &self.profile)
            .field("next_seq", &self.next_seq)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}
