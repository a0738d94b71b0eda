//! The one error type of the core crate, with stable numeric codes.

use core::fmt;

/// Everything that can go wrong in mqseal.
///
/// Each variant has a stable numeric [`code`](Error::code) that never changes meaning and is
/// reused by the Python and C bindings (`spec/mqseal-v2.md`, section "Error codes"). New
/// variants may be added, so match with a wildcard arm.
///
/// No variant ever carries secret material.
///
/// ```
/// use mqseal::Error;
/// assert_eq!(Error::Replay.code(), 10);
/// assert_eq!(Error::from_code(10), Some(Error::Replay));
/// assert_eq!(Error::Replay.name(), "replay");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The bytes are not a well-formed mqseal message, grant or key (truncated, bad varint,
    /// reserved bits set, trailing bytes…).
    Malformed,
    /// The message or grant uses a format version this implementation does not know.
    UnsupportedVersion,
    /// A publish topic is not valid for sealing: empty, longer than 65535 bytes, contains a NUL,
    /// `+` or `#`.
    InvalidTopic,
    /// A key filter is not `#`, `prefix/#` or an exact topic.
    InvalidFilter,
    /// A public key is not a valid Ed25519 or X25519 key (or is a weak/low-order key).
    InvalidKey,
    /// The sender id of the message does not belong to any trusted sender.
    UnknownSender,
    /// No held key covers this topic at the message's epoch (or, when sealing, the topic at all).
    KeyNotFound,
    /// The Ed25519 signature does not verify.
    BadSignature,
    /// AEAD decryption failed: wrong key, or the ciphertext, header, topic or retain flag were
    /// altered.
    AuthenticationFailed,
    /// The sequence number was already accepted from this sender on this topic and epoch.
    Replay,
    /// Like [`Error::Replay`], but the transport marked the delivery as a redelivery (MQTT DUP
    /// flag): an expected QoS 1 duplicate, not an attack.
    Duplicate,
    /// The sequence number is older than the replay window.
    TooOld,
    /// The message timestamp is older than the opener's maximum age, or too far in the future.
    Expired,
    /// The opener requires a timestamp and the message has none.
    MissingTimestamp,
    /// The message was delivered as retained, but its publisher did not publish it retained.
    RetainMismatch,
    /// The message uses the `group-mac` profile and the opener does not accept it from this
    /// sender on this topic.
    ProfileNotAllowed,
    /// A grant is not addressed to this identity.
    GrantNotForUs,
    /// A grant was issued by an identity the recipient does not trust as an issuer.
    UntrustedIssuer,
    /// The sender's sequence numbers are exhausted (or the reserved block is used up and was not
    /// extended): sealing more would reuse a nonce.
    SequenceExhausted,
    /// A caller-provided output buffer is too small.
    BufferTooSmall,
    /// The message is larger than an MQTT payload can be (268 435 455 bytes) or than a limit.
    TooLarge,
    /// The operating system's random number generator failed.
    Randomness,
    /// The message's epoch for this key was rotated out and its grace period is over.
    EpochExpired,
    /// A grant's filter lies outside the scope its issuer is trusted for.
    OutOfScope,
    /// The key is outside its validity period ([`Validity`](crate::Validity)): when sealing, no
    /// key covering the topic is valid now (the one that would be used has expired, the others
    /// have not begun, or there is no time to check a limited key against); when opening, the
    /// message's key expired more than the grace period ago or begins in the future.
    KeyExpired,
}

impl Error {
    /// Every variant, in code order.
    pub const ALL: [Error; 25] = [
        Error::Malformed,
        Error::UnsupportedVersion,
        Error::InvalidTopic,
        Error::InvalidFilter,
        Error::InvalidKey,
        Error::UnknownSender,
        Error::KeyNotFound,
        Error::BadSignature,
        Error::AuthenticationFailed,
        Error::Replay,
        Error::Duplicate,
        Error::TooOld,
        Error::Expired,
        Error::MissingTimestamp,
        Error::RetainMismatch,
        Error::ProfileNotAllowed,
        Error::GrantNotForUs,
        Error::UntrustedIssuer,
        Error::SequenceExhausted,
        Error::BufferTooSmall,
        Error::TooLarge,
        Error::Randomness,
        Error::EpochExpired,
        Error::OutOfScope,
        Error::KeyExpired,
    ];

    /// The stable numeric code of this error (never 0; 0 means success in the C API).
    pub const fn code(self) -> u32 {
        match self {
            Error::Malformed => 1,
            Error::UnsupportedVersion => 2,
            Error::InvalidTopic => 3,
            Error::InvalidFilter => 4,
            Error::InvalidKey => 5,
            Error::UnknownSender => 6,
            Error::KeyNotFound => 7,
            Error::BadSignature => 8,
            Error::AuthenticationFailed => 9,
            Error::Replay => 10,
            Error::Duplicate => 11,
            Error::TooOld => 12,
            Error::Expired => 13,
            Error::MissingTimestamp => 14,
            Error::RetainMismatch => 15,
            Error::ProfileNotAllowed => 16,
            Error::GrantNotForUs => 17,
            Error::UntrustedIssuer => 18,
            Error::SequenceExhausted => 19,
            Error::BufferTooSmall => 20,
            Error::TooLarge => 21,
            Error::Randomness => 22,
            Error::EpochExpired => 23,
            Error::OutOfScope => 24,
            Error::KeyExpired => 25,
        }
    }

    /// The error with this code, if any.
    pub fn from_code(code: u32) -> Option<Error> {
        Error::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// A stable snake_case name (used in test vectors and by the bindings).
    pub const fn name(self) -> &'static str {
        match self {
            Error::Malformed => "malformed",
            Error::UnsupportedVersion => "unsupported_version",
            Error::InvalidTopic => "invalid_topic",
            Error::InvalidFilter => "invalid_filter",
            Error::InvalidKey => "invalid_key",
            Error::UnknownSender => "unknown_sender",
            Error::KeyNotFound => "key_not_found",
            Error::BadSignature => "bad_signature",
            Error::AuthenticationFailed => "authentication_failed",
            Error::Replay => "replay",
            Error::Duplicate => "duplicate",
            Error::TooOld => "too_old",
            Error::Expired => "expired",
            Error::MissingTimestamp => "missing_timestamp",
            Error::RetainMismatch => "retain_mismatch",
            Error::ProfileNotAllowed => "profile_not_allowed",
            Error::GrantNotForUs => "grant_not_for_us",
            Error::UntrustedIssuer => "untrusted_issuer",
            Error::SequenceExhausted => "sequence_exhausted",
            Error::BufferTooSmall => "buffer_too_small",
            Error::TooLarge => "too_large",
            Error::Randomness => "randomness",
            Error::EpochExpired => "epoch_expired",
            Error::OutOfScope => "out_of_scope",
            Error::KeyExpired => "key_expired",
        }
    }

    /// The error with this [`name`](Error::name), if any.
    pub fn from_name(name: &str) -> Option<Error> {
        Error::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// A one-line human explanation.
    pub const fn message(self) -> &'static str {
        match self {
            Error::Malformed => "malformed mqseal data",
            Error::UnsupportedVersion => "unsupported mqseal format version",
            Error::InvalidTopic => "invalid publish topic (empty, too long, NUL, '+' or '#')",
            Error::InvalidFilter => {
                "invalid key filter (expected '#', 'prefix/#' or an exact topic)"
            }
            Error::InvalidKey => "invalid public key",
            Error::UnknownSender => "message from an unknown sender",
            Error::KeyNotFound => {
                "no held key for this topic, epoch and key id (a key not held, or a message moved from another topic)"
            }
            Error::BadSignature => "signature verification failed",
            Error::AuthenticationFailed => "decryption failed (message altered or wrong key)",
            Error::Replay => "replayed message (sequence number already accepted)",
            Error::Duplicate => "duplicate delivery of an already accepted message",
            Error::TooOld => "sequence number older than the replay window",
            Error::Expired => "message timestamp outside the accepted age",
            Error::MissingTimestamp => "message has no timestamp but one is required",
            Error::RetainMismatch => "delivered as retained but not published retained",
            Error::ProfileNotAllowed => {
                "group-mac not accepted from this sender on this topic (trust it for group-mac on a covering filter)"
            }
            Error::GrantNotForUs => "grant addressed to another identity",
            Error::UntrustedIssuer => "grant issued by an untrusted identity",
            Error::SequenceExhausted => "sequence numbers exhausted (reserve more before sealing)",
            Error::BufferTooSmall => "output buffer too small",
            Error::TooLarge => "message too large",
            Error::Randomness => "random number generator failure",
            Error::EpochExpired => "key epoch expired (rotated and past its grace period)",
            Error::OutOfScope => "grant filter outside the scope its issuer is trusted for",
            Error::KeyExpired => {
                "key outside its validity period (expired, not yet valid, or no clock to check it)"
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.code() as usize, i + 1);
            assert_eq!(Error::from_code(e.code()), Some(*e));
            assert_eq!(Error::from_name(e.name()), Some(*e));
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(999), None);
    }
}
