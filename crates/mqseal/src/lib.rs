//! # mqseal — end-to-end payload encryption for MQTT
//!
//! Brokers route messages but only ever see ciphertext. A [`Sealer`] turns a topic and payload
//! into a sealed message: ChaCha20-Poly1305 under a per-topic, per-sender key derived from a
//! [`TreeKey`] with HKDF-SHA256, the topic and retain flag bound in, a sequence number as nonce,
//! and (in the `signed` [`Profile`]) an Ed25519 signature so that no other key holder can forge
//! the sender. An [`Opener`] verifies, decrypts and rejects replays. Keys travel to their holders
//! as [`Grant`]s (RFC 9180 HPKE to the recipient's X25519 key, signed by the issuer).
//!
//! The wire format is specified byte by byte in `spec/mqseal-v2.md`, with test vectors in
//! `spec/vectors/`.
//!
//! ```
//! use mqseal::{Grant, Identity, Opener, Profile, Sealer, TreeKey};
//!
//! // An administrator creates the key of a topic tree and grants a subtree to a sensor's reader.
//! let admin = Identity::from_seed([1; 32]);
//! let sensor = Identity::from_seed([2; 32]);
//! let dashboard = Identity::from_seed([3; 32]);
//! let plant = TreeKey::from_secret("plant/#", 1, [4; 32]).unwrap();
//! let grant = Grant::issue_with_ikm(&admin, &dashboard.public(), &plant, &[5; 32]).unwrap();
//!
//! let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
//! sealer.add_key(plant.derive("plant/7/temp").unwrap());
//! let sealed = sealer.seal("plant/7/temp", b"21.5", false).unwrap();   // what the broker sees
//!
//! let mut opener = Opener::new();
//! opener.trust_sender(sensor.public());
//! opener.add_key(grant.accept(&dashboard, &[admin.public()]).unwrap());
//! let opened = opener.open("plant/7/temp", &sealed).unwrap();
//! assert_eq!(opened.payload, b"21.5");
//! assert_eq!(opened.sender, sensor.public());
//! ```
//!
//! `no_std` + `alloc`: disable the default `std` feature; pass seeds and times in explicitly.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cache;
mod envelope;
mod error;
mod grant;
mod hpke;
mod identity;
mod issuer;
mod keys;
mod labels;
mod open;
mod random;
mod replay;
mod replay_state;
mod seal;
mod signature;
#[cfg(feature = "std")]
mod time;
mod topic;
mod validity;
mod varint;

pub use cache::{KeyCacheLimits, MAX_CACHED_NAME_LEN};
pub use envelope::{
    Header, KEY_ID_LEN, MAX_HEADER_LEN, MAX_OVERHEAD_GROUP_MAC, MAX_OVERHEAD_SIGNED,
    MAX_SEALED_LEN, Profile, SALT_LEN, SIGNATURE_LEN, SealedParts, TAG_LEN, VERSION, inspect,
};
pub use error::{Error, Result};
pub use grant::{GRANT_VERSION, Grant};
pub use identity::{
    Fingerprint, Identity, PUBLIC_IDENTITY_LEN, PublicIdentity, SEED_LEN, SenderId,
};
pub use issuer::Issuer;
pub use keys::{KEY_LEN, TopicKey, TreeKey};
pub use open::{
    BatchItem, DEFAULT_VALIDITY_GRACE, Delivery, OpenPolicy, Opened, OpenedInfo, Opener,
};
#[cfg(feature = "std")]
pub use random::OsRandom;
pub use random::RandomSource;
pub use replay::{REPLAY_WINDOW, REPLAY_WINDOW_BYTES, ReplayWindow};
pub use replay_state::{DEFAULT_WINDOWS_PER_SENDER, DEFAULT_WINDOWS_TOTAL, ReplayLimits};
pub use seal::{SealOptions, Sealer};
pub use topic::{FilterKind, KeyFilter, MAX_TOPIC_LEN, MAX_TOPIC_LEVELS, validate_topic};
pub use validity::Validity;

/// Internals exposed only so that `spec/vectors` can list every intermediate value (feature
/// `vectors-support`, for tests and the vector generator; never in a product). Not part of the
/// stable API.
#[cfg(feature = "vectors-support")]
#[doc(hidden)]
pub mod vectors_support {
    /// SHA-256 topic digest bound into every message.
    pub fn topic_digest(topic: &str) -> [u8; 32] {
        crate::keys::topic_digest(topic)
    }

    /// The AEAD nonce of a sequence number.
    pub fn nonce(seq: u64) -> [u8; 12] {
        crate::envelope::nonce(seq)
    }

    /// SHA-512 message-signature transcript digest.
    pub fn message_signature_digest(
        header: &[u8],
        topic_digest: &[u8; 32],
        ct_and_tag: &[u8],
    ) -> [u8; 64] {
        crate::identity::transcript_digest(
            crate::labels::MESSAGE_SIGNATURE,
            &[header, topic_digest, ct_and_tag],
        )
    }

    /// SHA-512 grant-signature transcript digest.
    pub fn grant_signature_digest(signed: &[u8]) -> [u8; 64] {
        crate::identity::transcript_digest(crate::labels::GRANT_SIGNATURE, &[signed])
    }

    /// Ed25519 verification of `signature` by `key` over `message` with the rule of spec 7.6
    /// (what opening a signed message and accepting a grant check), for benchmarks.
    pub fn ed25519_verify(
        key: &crate::PublicIdentity,
        message: &[u8],
        signature: &[u8; 64],
    ) -> bool {
        crate::signature::verify(key.verifying_key(), message, signature)
    }

    /// The raw Ed25519 and X25519 secret keys of an identity seed.
    pub fn identity_secrets(seed: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        use hkdf::Hkdf;
        use sha2::Sha256;
        let hk = Hkdf::<Sha256>::new(Some(crate::labels::IDENTITY_SALT), seed);
        let (mut ed, mut x) = ([0u8; 32], [0u8; 32]);
        let _ = hk.expand(crate::labels::IDENTITY_ED25519, &mut ed);
        let _ = hk.expand(crate::labels::IDENTITY_X25519, &mut x);
        (ed, x)
    }

    /// Every HPKE value of a grant's wrapping (secrets: wiped on drop, never in `Debug`).
    #[derive(zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
    pub struct GrantHpke {
        /// Encapsulated ephemeral public key.
        pub enc: [u8; 32],
        /// KEM shared secret.
        pub shared_secret: [u8; 32],
        /// Key schedule context.
        pub key_schedule_context: [u8; 65],
        /// Key schedule secret.
        pub secret: [u8; 32],
        /// AEAD key.
        pub key: [u8; 32],
        /// AEAD base nonce.
        pub base_nonce: [u8; 12],
        /// Exporter secret (unused by mqseal).
        pub exporter_secret: [u8; 32],
    }

    impl core::fmt::Debug for GrantHpke {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("GrantHpke")
                .field("enc", &self.enc)
                .finish_non_exhaustive()
        }
    }

    /// HPKE values of a grant's wrapping.
    pub fn grant_hpke(
        recipient: &crate::PublicIdentity,
        ikm_e: &[u8; 32],
    ) -> crate::Result<GrantHpke> {
        let (enc, ctx) =
            crate::hpke::setup_sender(recipient.agreement_key(), crate::labels::GRANT_INFO, ikm_e)?;
        Ok(GrantHpke {
            enc,
            shared_secret: *ctx.shared_secret,
            key_schedule_context: ctx.key_schedule_context,
            secret: *ctx.secret,
            key: *ctx.key,
            base_nonce: *ctx.base_nonce,
            exporter_secret: *ctx.exporter_secret,
        })
    }

    /// The node key of `levels` below a node key (one HKDF step per level).
    pub fn child_node_key(node: &[u8; 32], level: &str) -> [u8; 32] {
        crate::TreeKey::from_secret("#", 0, *node)
            .and_then(|k| k.derive(&alloc::format!("{level}/#")))
            .map(|k| *k.secret_bytes())
            .unwrap_or([0; 32])
    }
}
