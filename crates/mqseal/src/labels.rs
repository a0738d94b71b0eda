//! Domain-separation labels. Every label is ASCII and listed in `spec/mqseal-v2.md`
//! ("Labels"); no two labels are prefixes of one another where they share a key. Labels of
//! constructions that v2 did not change keep their `mqseal/v1/` names.

/// HKDF-Extract salt turning a 32-byte identity seed into a PRK.
pub const IDENTITY_SALT: &[u8] = b"mqseal/v1/identity";
/// HKDF-Expand info for the Ed25519 secret key seed.
pub const IDENTITY_ED25519: &[u8] = b"mqseal/v1/identity/ed25519";
/// HKDF-Expand info for the X25519 secret key.
pub const IDENTITY_X25519: &[u8] = b"mqseal/v1/identity/x25519";
/// SHA-256 prefix of the identity fingerprint.
pub const FINGERPRINT: &[u8] = b"mqseal/v1/fingerprint";
/// HKDF-Expand info prefix for one topic level (the level's bytes follow).
pub const LEVEL: &[u8] = b"mqseal/v1/level:";
/// HKDF-Expand info turning a node key into the topic key of that exact topic.
pub const TOPIC_KEY: &[u8] = b"mqseal/v1/topic-key";
/// HKDF-Expand info prefix for a sender's message key (profile byte and Ed25519 key follow).
pub const SENDER_KEY: &[u8] = b"mqseal/v1/sender-key:";
/// HKDF-Expand info turning a topic key into the key id carried in the header.
pub const KEY_ID: &[u8] = b"mqseal/v2/key-id";
/// HKDF-Expand info prefix turning a sender key into one message's key (the salt follows).
pub const MESSAGE_KEY: &[u8] = b"mqseal/v2/message-key:";
/// SHA-256 prefix of the topic digest bound into every message.
pub const TOPIC_DIGEST: &[u8] = b"mqseal/v1/topic-name:";
/// SHA-512 prefix of the transcript a message signature covers.
pub const MESSAGE_SIGNATURE: &[u8] = b"mqseal/v2/message-signature:";
/// HPKE `info` for grants.
pub const GRANT_INFO: &[u8] = b"mqseal/v1/grant";
/// SHA-512 prefix of the transcript a grant signature covers.
pub const GRANT_SIGNATURE: &[u8] = b"mqseal/v1/grant-signature:";
