//! `mqseal_sealer` and `mqseal_seal`: sealing into caller buffers.

use core::ffi::c_char;

use mqseal::{Profile, SealOptions, Sealer};

use crate::identity::mqseal_identity;
use crate::keys::{filter_str, mqseal_tree_key};
use crate::result::mqseal_result;
use crate::util::{
    FfiResult, Out, borrow, borrow_mut, borrow_opt, bytes, bytes_mut, c_str, free_handle, guard,
    guard_value, into_handle, overlaps,
};

/// Upper bound of the bytes sealing adds to a payload in the signed profile (the larger one).
pub const MQSEAL_MAX_OVERHEAD_SIGNED: usize = 110;
/// Upper bound of the bytes sealing adds to a payload in the group-mac profile.
pub const MQSEAL_MAX_OVERHEAD_GROUP_MAC: usize = 46;
/// The largest sealed message (the MQTT payload limit).
pub const MQSEAL_MAX_SEALED_LEN: usize = 268_435_455;

const _: () = assert!(MQSEAL_MAX_OVERHEAD_SIGNED == mqseal::MAX_OVERHEAD_SIGNED);
const _: () = assert!(MQSEAL_MAX_OVERHEAD_GROUP_MAC == mqseal::MAX_OVERHEAD_GROUP_MAC);
const _: () = assert!(MQSEAL_MAX_SEALED_LEN == mqseal::MAX_SEALED_LEN);

/// How messages are authenticated. Functions take the value as a `uint32_t`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mqseal_profile {
    /// AEAD plus an Ed25519 signature: nobody but the sender can produce the message.
    MQSEAL_PROFILE_SIGNED = 0,
    /// AEAD only (64 bytes less): any holder of the topic key can forge any sender.
    MQSEAL_PROFILE_GROUP_MAC = 1,
}

impl mqseal_profile {
    /// The C value of a core profile.
    pub(crate) fn from_core(profile: Profile) -> mqseal_profile {
        match profile {
            Profile::Signed => mqseal_profile::MQSEAL_PROFILE_SIGNED,
            Profile::GroupMac => mqseal_profile::MQSEAL_PROFILE_GROUP_MAC,
        }
    }

    /// The core profile of a C value (`MQSEAL_ERR_INVALID_ARGUMENT` if unknown).
    pub(crate) fn to_core(value: u32) -> FfiResult<Profile> {
        match value {
            0 => Ok(Profile::Signed),
            1 => Ok(Profile::GroupMac),
            _ => Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT),
        }
    }
}

/// Per-message options of `mqseal_seal` (NULL means: not retained, no timestamp).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mqseal_seal_options {
    /// The MQTT retain flag the message will be published with (bound into the message).
    pub retain: bool,
    /// Whether to include `timestamp` (for receivers that enforce a maximum age).
    pub has_timestamp: bool,
    /// Sender time in seconds since the Unix epoch, used when `has_timestamp` is true.
    pub timestamp: u64,
}

impl mqseal_seal_options {
    fn to_core(options: Option<&mqseal_seal_options>) -> SealOptions {
        let o = options.copied().unwrap_or_default();
        SealOptions {
            retain: o.retain,
            timestamp: o.has_timestamp.then_some(o.timestamp),
        }
    }
}

/// Seals messages for one sender identity, and owns its sequence counter: never run two sealers
/// for the same identity at once, and persist the counter across restarts (see
/// `mqseal_sealer_set_sequence`). Opaque; not thread-safe (use one per thread or lock it).
#[allow(non_camel_case_types)]
pub struct mqseal_sealer {
    inner: Sealer,
}

/// Creates a sealer for (a copy of) `identity` with `profile` (`MQSEAL_PROFILE_SIGNED` or
/// `MQSEAL_PROFILE_GROUP_MAC`), starting at sequence number 0 with no limit and no keys.
///
/// # Safety
/// `identity` must be a valid handle; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_new(
    identity: *const mqseal_identity,
    profile: u32,
    out: *mut *mut mqseal_sealer,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        let profile = mqseal_profile::to_core(profile)?;
        out.write(into_handle(mqseal_sealer {
            inner: Sealer::new(identity.inner.clone(), profile),
        }));
        Ok(())
    })
}

/// Frees a sealer (and wipes its keys). NULL is ignored.
///
/// # Safety
/// `sealer` must be NULL or a handle from this library, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_free(sealer: *mut mqseal_sealer) {
    let _ = guard(|| {
        // SAFETY: the caller guarantees `sealer` is NULL or a live handle freed once.
        unsafe { free_handle(sealer) };
        Ok(())
    });
}

/// Adds (a copy of) `key` to seal with, replacing one of the same filter and epoch. For each topic
/// the most specific covering filter is used, at its newest epoch.
///
/// # Safety
/// `sealer` and `key` must be valid handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_add_key(
    sealer: *mut mqseal_sealer,
    key: *const mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `sealer` is a valid handle not used elsewhere meanwhile.
        let sealer = unsafe { borrow_mut(sealer) }?;
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        sealer.inner.add_key(key.inner.clone());
        Ok(())
    })
}

/// Forgets the key of `filter` at `epoch` (`MQSEAL_ERR_KEY_NOT_FOUND` if it was not held).
///
/// # Safety
/// `sealer` must be a valid handle; `filter` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_remove_key(
    sealer: *mut mqseal_sealer,
    filter: *const c_char,
    epoch: u32,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `sealer` is a valid handle not used elsewhere meanwhile.
        let sealer = unsafe { borrow_mut(sealer) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        if sealer.inner.remove_key(filter, epoch) {
            Ok(())
        } else {
            Err(mqseal_result::MQSEAL_ERR_KEY_NOT_FOUND)
        }
    })
}

/// Sets the next sequence number and the exclusive `limit` up to which numbers may be used.
/// Crash-safe persistence reserves blocks: durably store `limit`, then call this; sealing fails
/// with `MQSEAL_ERR_SEQUENCE_EXHAUSTED` at `limit` until a new block is reserved. After a restart
/// resume at the stored limit, never below it.
///
/// # Safety
/// `sealer` must be a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_set_sequence(
    sealer: *mut mqseal_sealer,
    next: u64,
    limit: u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `sealer` is a valid handle not used elsewhere meanwhile.
        let sealer = unsafe { borrow_mut(sealer) }?;
        sealer.inner.set_sequence(next, limit);
        Ok(())
    })
}

/// Writes the sequence number the next message will carry into `*out`.
///
/// # Safety
/// `sealer` must be a valid handle; `out` valid for writing a `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_next_seq(
    sealer: *const mqseal_sealer,
    out: *mut u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a u64.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `sealer` is a valid handle.
        let sealer = unsafe { borrow(sealer) }?;
        out.write(sealer.inner.next_seq());
        Ok(())
    })
}

/// Writes the sequence limit (the first number that may not be used) into `*out`.
///
/// # Safety
/// `sealer` must be a valid handle; `out` valid for writing a `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_sequence_limit(
    sealer: *const mqseal_sealer,
    out: *mut u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a u64.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `sealer` is a valid handle.
        let sealer = unsafe { borrow(sealer) }?;
        out.write(sealer.inner.sequence_limit());
        Ok(())
    })
}

/// Upper bound of the sealed length of a `payload_len`-byte payload in `profile`:
/// `payload_len + MQSEAL_MAX_OVERHEAD_SIGNED` (or `_GROUP_MAC`). Returns 0 for an unknown profile
/// or if the bound exceeds `MQSEAL_MAX_SEALED_LEN`. For static buffers use the macro
/// `MQSEAL_SEALED_BUFFER_LEN(payload_len)`.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_sealed_max_len(profile: u32, payload_len: usize) -> usize {
    guard_value(0, || {
        let overhead = match mqseal_profile::to_core(profile) {
            Ok(Profile::Signed) => MQSEAL_MAX_OVERHEAD_SIGNED,
            Ok(_) => MQSEAL_MAX_OVERHEAD_GROUP_MAC,
            Err(_) => return 0,
        };
        payload_len
            .checked_add(overhead)
            .filter(|n| *n <= MQSEAL_MAX_SEALED_LEN)
            .unwrap_or(0)
    })
}

/// Writes into `*out_len` the exact length the next `mqseal_seal` of a `payload_len`-byte payload
/// on `topic` with `options` (NULL: defaults) will produce (`MQSEAL_ERR_KEY_NOT_FOUND` if no key
/// covers `topic`, `MQSEAL_ERR_TOO_LARGE` if the result would exceed `MQSEAL_MAX_SEALED_LEN`).
///
/// # Safety
/// `sealer` must be a valid handle; `topic` a NUL-terminated string; `options` NULL or valid;
/// `out_len` valid for writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_sealed_len(
    sealer: *const mqseal_sealer,
    topic: *const c_char,
    payload_len: usize,
    options: *const mqseal_seal_options,
    out_len: *mut usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out_len` is valid for writing a size_t.
        let out_len = unsafe { Out::new(out_len) }?;
        // SAFETY: the caller guarantees `sealer` is a valid handle.
        let sealer = unsafe { borrow(sealer) }?;
        // SAFETY: the caller guarantees `topic` is a NUL-terminated string.
        let topic = unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }?;
        mqseal::validate_topic(topic)?;
        // SAFETY: the caller guarantees `options` is NULL or valid.
        let options = mqseal_seal_options::to_core(unsafe { borrow_opt(options) });
        let len = sealer
            .inner
            .sealed_len(topic, payload_len, &options)
            .ok_or(mqseal_result::MQSEAL_ERR_KEY_NOT_FOUND)?;
        if len > MQSEAL_MAX_SEALED_LEN {
            return Err(mqseal_result::MQSEAL_ERR_TOO_LARGE);
        }
        out_len.write(len);
        Ok(())
    })
}

/// Seals `payload` for `topic` into the caller's buffer `out` of `out_cap` bytes and writes the
/// sealed length into `*out_len`; publish exactly those bytes on `topic`, with the retain flag
/// given in `options` (NULL: not retained, no timestamp).
///
/// `out_cap >= payload_len + MQSEAL_MAX_OVERHEAD_SIGNED` always suffices (exact length:
/// `mqseal_sealer_sealed_len`); otherwise `MQSEAL_ERR_BUFFER_TOO_SMALL`. `payload` and `out` must
/// not overlap (`MQSEAL_ERR_INVALID_ARGUMENT`); `payload` may be NULL when `payload_len` is 0.
///
/// No heap allocation per message: the first message on a topic derives and caches the topic's
/// key (one allocation; the cache holds up to 1024 topics, then starts over), later messages on
/// that topic allocate nothing. A sequence number is consumed only once the topic, key, size,
/// buffer and sequence limit checks passed: a refused call spends none, and no number is ever
/// used twice. Errors: `MQSEAL_ERR_INVALID_TOPIC`,
/// `MQSEAL_ERR_KEY_NOT_FOUND`, `MQSEAL_ERR_BUFFER_TOO_SMALL`, `MQSEAL_ERR_SEQUENCE_EXHAUSTED`,
/// `MQSEAL_ERR_TOO_LARGE`.
///
/// # Safety
/// `sealer` must be a valid handle; `topic` a NUL-terminated string; `payload` valid for reads of
/// `payload_len` bytes; `options` NULL or valid; `out` valid for writes of `out_cap` bytes;
/// `out_len` valid for writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_seal(
    sealer: *mut mqseal_sealer,
    topic: *const c_char,
    payload: *const u8,
    payload_len: usize,
    options: *const mqseal_seal_options,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> mqseal_result {
    guard(|| {
        if overlaps(payload, payload_len, out, out_cap) {
            return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller guarantees `out_len` is valid for writing a size_t.
        let out_len = unsafe { Out::new(out_len) }?;
        // SAFETY: the caller guarantees `sealer` is a valid handle not used elsewhere meanwhile.
        let sealer = unsafe { borrow_mut(sealer) }?;
        // SAFETY: the caller guarantees `topic` is a NUL-terminated string.
        let topic = unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }?;
        // SAFETY: the caller guarantees `payload` is valid for `payload_len` bytes.
        let payload = unsafe { bytes(payload, payload_len) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_cap` bytes; it does not overlap
        // `payload` (checked above).
        let out = unsafe { bytes_mut(out, out_cap) }?;
        // SAFETY: the caller guarantees `options` is NULL or valid.
        let options = mqseal_seal_options::to_core(unsafe { borrow_opt(options) });
        let n = sealer.inner.seal_into(topic, payload, &options, out)?;
        out_len.write(n);
        Ok(())
    })
}
