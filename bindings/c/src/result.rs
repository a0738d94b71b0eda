//! `mqseal_result`: the return code of every fallible function, and error texts for C.

use core::ffi::{CStr, c_char};

use mqseal::Error;

use crate::util::{guard_value, write_c_text};

/// The result of every fallible function: `MQSEAL_OK` (0) or an error code.
///
/// Codes 1 to 25 are the core's stable error codes (`spec/mqseal-v2.md`, section "Error codes"),
/// shared with the Rust and Python APIs. Codes from 200 up are C-API errors (bad arguments,
/// what a build lacks). A
/// code's meaning never changes; new codes may be added, so keep a default branch when switching.
/// `mqseal_error_name` and `mqseal_error_text` describe any code.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mqseal_result {
    /// Success.
    MQSEAL_OK = 0,
    /// The bytes are not a well-formed message, grant or key (or key material has the wrong
    /// length).
    MQSEAL_ERR_MALFORMED = 1,
    /// The message or grant uses an unknown format version.
    MQSEAL_ERR_UNSUPPORTED_VERSION = 2,
    /// The topic is empty, longer than 65535 bytes, not UTF-8, or contains NUL, `+` or `#`.
    MQSEAL_ERR_INVALID_TOPIC = 3,
    /// The key filter is not `#`, `prefix/#` or an exact topic (or is not UTF-8).
    MQSEAL_ERR_INVALID_FILTER = 4,
    /// A public key is invalid or a weak/low-order key.
    MQSEAL_ERR_INVALID_KEY = 5,
    /// No trusted sender has the message's sender id (or, when untrusting, the sender was not
    /// trusted).
    MQSEAL_ERR_UNKNOWN_SENDER = 6,
    /// No held key covers the topic at the message's epoch (or, when sealing, the topic at all).
    MQSEAL_ERR_KEY_NOT_FOUND = 7,
    /// The Ed25519 signature does not verify.
    MQSEAL_ERR_BAD_SIGNATURE = 8,
    /// Decryption failed: wrong key, or the message, topic or retain flag were altered.
    MQSEAL_ERR_AUTHENTICATION_FAILED = 9,
    /// The sequence number was already accepted from this sender on this topic and epoch.
    MQSEAL_ERR_REPLAY = 10,
    /// Already accepted, delivered again with the MQTT DUP flag: an expected QoS 1 duplicate.
    MQSEAL_ERR_DUPLICATE = 11,
    /// The sequence number is older than the replay window.
    MQSEAL_ERR_TOO_OLD = 12,
    /// The timestamp is older than the maximum age or too far in the future.
    MQSEAL_ERR_EXPIRED = 13,
    /// A timestamp is required and the message has none.
    MQSEAL_ERR_MISSING_TIMESTAMP = 14,
    /// Delivered as retained, but not published retained.
    MQSEAL_ERR_RETAIN_MISMATCH = 15,
    /// The message uses the group-mac profile and the opener does not accept it from this sender
    /// on this topic (`mqseal_opener_trust_group_mac_sender`).
    MQSEAL_ERR_PROFILE_NOT_ALLOWED = 16,
    /// The grant is addressed to another identity.
    MQSEAL_ERR_GRANT_NOT_FOR_US = 17,
    /// The grant's issuer is not trusted.
    MQSEAL_ERR_UNTRUSTED_ISSUER = 18,
    /// No sequence number left (or the reserved block is used up): reserve more first.
    MQSEAL_ERR_SEQUENCE_EXHAUSTED = 19,
    /// A caller-provided output buffer is too small (nothing was written).
    MQSEAL_ERR_BUFFER_TOO_SMALL = 20,
    /// The message is above the MQTT payload limit (268 435 455 bytes).
    MQSEAL_ERR_TOO_LARGE = 21,
    /// The random generator failed: the operating system's, or the caller's `mqseal_random_fn`
    /// (nothing was consumed).
    MQSEAL_ERR_RANDOMNESS = 22,
    /// The key epoch was rotated out and its grace period is over.
    MQSEAL_ERR_EPOCH_EXPIRED = 23,
    /// A grant's filter lies outside the scope its issuer is trusted for
    /// (`mqseal_grant_accept_scoped`).
    MQSEAL_ERR_OUT_OF_SCOPE = 24,
    /// The key is outside its validity period: when sealing, no key covering the topic is valid
    /// at the sealing time (expired, not begun, or no time to check a limit against); when
    /// opening, the message's key expired more than the policy's `validity_grace` ago, or begins
    /// more than `max_future_skew` ahead.
    MQSEAL_ERR_KEY_EXPIRED = 25,
    /// A required pointer argument is NULL.
    MQSEAL_ERR_NULL_ARGUMENT = 200,
    /// An argument is out of range (unknown profile, overlapping input and output buffers, a
    /// length above `PTRDIFF_MAX`).
    MQSEAL_ERR_INVALID_ARGUMENT = 201,
    /// mqseal panicked (a bug; please report it). The handles involved should be freed.
    MQSEAL_ERR_PANIC = 202,
    /// The core library returned an error this version of the C API does not know (a bug).
    MQSEAL_ERR_UNKNOWN = 203,
    /// Fresh randomness is needed and there is no source: builds without `std` (firmware) must
    /// register one with `mqseal_set_random` first.
    MQSEAL_ERR_NO_RANDOM_SOURCE = 204,
    /// This build does not have the function: the arena heap (`mqseal_heap_init`,
    /// `mqseal_heap_usage`, `mqseal_set_critical_section`) outside firmware builds with the
    /// feature `arena`.
    MQSEAL_ERR_UNSUPPORTED = 205,
    /// Done once and for good: `mqseal_heap_init` called again, or the critical section
    /// registered after the arena was handed over.
    MQSEAL_ERR_ALREADY_INITIALIZED = 206,
}

impl mqseal_result {
    /// Every code, in numeric order.
    pub(crate) const ALL: [mqseal_result; 33] = {
        use mqseal_result::*;
        [
            MQSEAL_OK,
            MQSEAL_ERR_MALFORMED,
            MQSEAL_ERR_UNSUPPORTED_VERSION,
            MQSEAL_ERR_INVALID_TOPIC,
            MQSEAL_ERR_INVALID_FILTER,
            MQSEAL_ERR_INVALID_KEY,
            MQSEAL_ERR_UNKNOWN_SENDER,
            MQSEAL_ERR_KEY_NOT_FOUND,
            MQSEAL_ERR_BAD_SIGNATURE,
            MQSEAL_ERR_AUTHENTICATION_FAILED,
            MQSEAL_ERR_REPLAY,
            MQSEAL_ERR_DUPLICATE,
            MQSEAL_ERR_TOO_OLD,
            MQSEAL_ERR_EXPIRED,
            MQSEAL_ERR_MISSING_TIMESTAMP,
            MQSEAL_ERR_RETAIN_MISMATCH,
            MQSEAL_ERR_PROFILE_NOT_ALLOWED,
            MQSEAL_ERR_GRANT_NOT_FOR_US,
            MQSEAL_ERR_UNTRUSTED_ISSUER,
            MQSEAL_ERR_SEQUENCE_EXHAUSTED,
            MQSEAL_ERR_BUFFER_TOO_SMALL,
            MQSEAL_ERR_TOO_LARGE,
            MQSEAL_ERR_RANDOMNESS,
            MQSEAL_ERR_EPOCH_EXPIRED,
            MQSEAL_ERR_OUT_OF_SCOPE,
            MQSEAL_ERR_KEY_EXPIRED,
            MQSEAL_ERR_NULL_ARGUMENT,
            MQSEAL_ERR_INVALID_ARGUMENT,
            MQSEAL_ERR_PANIC,
            MQSEAL_ERR_UNKNOWN,
            MQSEAL_ERR_NO_RANDOM_SOURCE,
            MQSEAL_ERR_UNSUPPORTED,
            MQSEAL_ERR_ALREADY_INITIALIZED,
        ]
    };

    /// The code with this numeric value, if any.
    pub fn from_u32(code: u32) -> Option<mqseal_result> {
        mqseal_result::ALL
            .iter()
            .copied()
            .find(|r| *r as u32 == code)
    }

    /// The code of a core error (same number).
    pub fn from_error(error: Error) -> mqseal_result {
        mqseal_result::from_u32(error.code())
            .filter(|r| (1..100).contains(&(*r as u32)))
            .unwrap_or(mqseal_result::MQSEAL_ERR_UNKNOWN)
    }

    /// Stable snake_case name (the core's `Error::name` for codes 1 to 99).
    pub fn name(self) -> &'static CStr {
        use mqseal_result::*;
        match self {
            MQSEAL_OK => c"ok",
            MQSEAL_ERR_MALFORMED => c"malformed",
            MQSEAL_ERR_UNSUPPORTED_VERSION => c"unsupported_version",
            MQSEAL_ERR_INVALID_TOPIC => c"invalid_topic",
            MQSEAL_ERR_INVALID_FILTER => c"invalid_filter",
            MQSEAL_ERR_INVALID_KEY => c"invalid_key",
            MQSEAL_ERR_UNKNOWN_SENDER => c"unknown_sender",
            MQSEAL_ERR_KEY_NOT_FOUND => c"key_not_found",
            MQSEAL_ERR_BAD_SIGNATURE => c"bad_signature",
            MQSEAL_ERR_AUTHENTICATION_FAILED => c"authentication_failed",
            MQSEAL_ERR_REPLAY => c"replay",
            MQSEAL_ERR_DUPLICATE => c"duplicate",
            MQSEAL_ERR_TOO_OLD => c"too_old",
            MQSEAL_ERR_EXPIRED => c"expired",
            MQSEAL_ERR_MISSING_TIMESTAMP => c"missing_timestamp",
            MQSEAL_ERR_RETAIN_MISMATCH => c"retain_mismatch",
            MQSEAL_ERR_PROFILE_NOT_ALLOWED => c"profile_not_allowed",
            MQSEAL_ERR_GRANT_NOT_FOR_US => c"grant_not_for_us",
            MQSEAL_ERR_UNTRUSTED_ISSUER => c"untrusted_issuer",
            MQSEAL_ERR_SEQUENCE_EXHAUSTED => c"sequence_exhausted",
            MQSEAL_ERR_BUFFER_TOO_SMALL => c"buffer_too_small",
            MQSEAL_ERR_TOO_LARGE => c"too_large",
            MQSEAL_ERR_RANDOMNESS => c"randomness",
            MQSEAL_ERR_EPOCH_EXPIRED => c"epoch_expired",
            MQSEAL_ERR_OUT_OF_SCOPE => c"out_of_scope",
            MQSEAL_ERR_KEY_EXPIRED => c"key_expired",
            MQSEAL_ERR_NULL_ARGUMENT => c"null_argument",
            MQSEAL_ERR_INVALID_ARGUMENT => c"invalid_argument",
            MQSEAL_ERR_PANIC => c"panic",
            MQSEAL_ERR_UNKNOWN => c"unknown",
            MQSEAL_ERR_NO_RANDOM_SOURCE => c"no_random_source",
            MQSEAL_ERR_UNSUPPORTED => c"unsupported",
            MQSEAL_ERR_ALREADY_INITIALIZED => c"already_initialized",
        }
    }

    /// One-line human explanation (the core's `Error::message` for codes 1 to 99).
    pub fn message(self) -> &'static str {
        use mqseal_result::*;
        match self {
            MQSEAL_OK => "success",
            MQSEAL_ERR_NULL_ARGUMENT => "a required pointer argument is NULL",
            MQSEAL_ERR_INVALID_ARGUMENT => {
                "invalid argument (unknown profile, overlapping buffers or length too large)"
            }
            MQSEAL_ERR_PANIC => "internal error: mqseal panicked (please report this bug)",
            MQSEAL_ERR_UNKNOWN => "internal error: unknown core error",
            MQSEAL_ERR_NO_RANDOM_SOURCE => {
                "no random source: register one with mqseal_set_random (firmware builds have no OS generator)"
            }
            MQSEAL_ERR_UNSUPPORTED => {
                "not supported by this build (the arena heap needs a firmware build with the feature arena)"
            }
            MQSEAL_ERR_ALREADY_INITIALIZED => {
                "already initialized: the heap arena is handed over once, its lock set before that"
            }
            other => Error::from_code(other as u32).map_or("unknown error", Error::message),
        }
    }
}

impl From<Error> for mqseal_result {
    fn from(error: Error) -> mqseal_result {
        mqseal_result::from_error(error)
    }
}

/// The stable snake_case name of a result code (`"ok"`, `"replay"`, …; `"unknown"` for codes
/// this version does not know), as a static NUL-terminated string. Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_error_name(code: u32) -> *const c_char {
    guard_value(c"unknown".as_ptr(), || {
        mqseal_result::from_u32(code)
            .unwrap_or(mqseal_result::MQSEAL_ERR_UNKNOWN)
            .name()
            .as_ptr()
    })
}

/// Writes a one-line explanation of result code `code` into `buf` as a NUL-terminated string,
/// truncated to fit `len` bytes (nothing is written when `buf` is NULL or `len` is 0). Returns
/// the full length of the text without the NUL, like `snprintf`: a return value `>= len` means
/// the text was truncated. Unknown codes get the text "unknown error".
///
/// # Safety
/// `buf` must be NULL or valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_error_text(code: u32, buf: *mut c_char, len: usize) -> usize {
    guard_value(0, || {
        let text = mqseal_result::from_u32(code).map_or("unknown error", mqseal_result::message);
        // SAFETY: the caller guarantees `buf` is NULL or valid for `len` bytes.
        unsafe { write_c_text(text, buf, len) }
    })
}

/// The version of this library (`"0.1.0"`), a static NUL-terminated string. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_version() -> *const c_char {
    guard_value(c"".as_ptr(), || c"0.1.0".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_equal_the_core_codes_for_every_error() {
        for e in Error::ALL {
            let r = mqseal_result::from(e);
            assert_eq!(r as u32, e.code(), "{e:?}");
            assert_eq!(r.name().to_str().ok(), Some(e.name()));
            assert_eq!(r.message(), e.message());
        }
        // Every C code below 100 is a core error, and the table is complete and ordered.
        for (i, r) in mqseal_result::ALL.iter().enumerate() {
            assert_eq!(mqseal_result::from_u32(*r as u32), Some(*r));
            if (1..100).contains(&(*r as u32)) {
                assert!(Error::from_code(*r as u32).is_some(), "{r:?}");
            }
            if let Some(next) = mqseal_result::ALL.get(i + 1) {
                assert!((*r as u32) < (*next as u32));
            }
        }
        assert_eq!(
            mqseal_result::ALL.len(),
            Error::ALL.len() + 8,
            "every core error has a C code"
        );
    }

    #[test]
    fn version_matches_the_crate() {
        // SAFETY: mqseal_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(mqseal_version()) };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
    }
}
