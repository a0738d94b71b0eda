//! `mqseal_sealer` and `mqseal_seal`: sealing into caller buffers.

use alloc::boxed::Box;
use core::ffi::{c_char, c_void};

use mqseal::{Profile, SealOptions, Sealer};

use crate::identity::mqseal_identity;
use crate::keys::{filter_str, mqseal_tree_key};
use crate::random::{self, CallbackRandom, RegisteredRandom, mqseal_random_fn};
use crate::result::mqseal_result;
use crate::util::{
    FfiResult, FromC, Out, borrow, borrow_mut, bytes, bytes_mut, c_bool, c_str, free_handle, guard,
    guard_value, into_handle, overlaps, overlaps_str, overlaps_value,
};

/// Upper bound of the bytes sealing adds to a payload in the signed profile (the larger one):
/// the worst-case 42-byte header, the 16-byte tag and the 64-byte signature. Typical messages
/// (small sequence numbers, a timestamp) add 104 bytes, 99 without a timestamp.
pub const MQSEAL_MAX_OVERHEAD_SIGNED: usize = 122;
/// Upper bound of the bytes sealing adds to a payload in the group-mac profile (typically 40
/// with a timestamp, 35 without).
pub const MQSEAL_MAX_OVERHEAD_GROUP_MAC: usize = 58;
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

/// Per-message options of `mqseal_seal`. NULL means the default: not retained, the current
/// system time as timestamp (firmware builds have no clock: there NULL means no timestamp, so
/// pass options with the device's time). With options, the timestamp is exactly what they say: set
/// `has_timestamp` and `timestamp` (e.g. `time(NULL)`, or a device's RTC); leaving
/// `has_timestamp` false seals without one (5 bytes shorter, but receivers with a maximum age
/// refuse it as `MQSEAL_ERR_MISSING_TIMESTAMP`).
///
/// The timestamp is also the time at which key validities are checked
/// (`mqseal_tree_key_set_validity`): without one, hosted builds read the system clock, and
/// firmware builds have no time, so a key with a validity limit is refused
/// (`MQSEAL_ERR_KEY_EXPIRED`) — give such devices a timestamp.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mqseal_seal_options {
    /// The MQTT retain flag the message will be published with (bound into the message).
    pub retain: bool,
    /// Whether to include `timestamp` (needed by receivers that enforce a maximum age).
    pub has_timestamp: bool,
    /// Sender time in seconds since the Unix epoch, used when `has_timestamp` is true.
    pub timestamp: u64,
}

impl FromC for mqseal_seal_options {
    unsafe fn read_c(ptr: *const Self) -> Option<Self> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees `ptr` points to valid options; each field is read in
        // place, the bools as bytes.
        unsafe {
            Some(mqseal_seal_options {
                retain: c_bool(&raw const (*ptr).retain),
                has_timestamp: c_bool(&raw const (*ptr).has_timestamp),
                timestamp: (&raw const (*ptr).timestamp).read(),
            })
        }
    }
}

impl mqseal_seal_options {
    /// The core options: `None` (NULL) is not retained with the current time as timestamp (no
    /// timestamp without `std`: the core has no clock there).
    fn to_core(options: Option<&mqseal_seal_options>) -> SealOptions {
        match options {
            None => SealOptions::retain(false),
            Some(o) => SealOptions {
                retain: o.retain,
                timestamp: o.has_timestamp.then_some(o.timestamp),
            },
        }
    }
}

/// Seals messages for one sender identity, and owns its sequence counter (one counter for every
/// topic and both profiles). Every message also gets 8 fresh random bytes (its salt) mixed into
/// its key, so a sequence number used twice — a restored backup, a second sealer for the same
/// identity — never reuses a (key, nonce) pair; receivers do refuse the repeated number as a
/// replay, so persist the counter across restarts (see `mqseal_sealer_set_sequence`) and do not
/// run two sealers for one identity at once. Opaque; not thread-safe (use one per thread or lock
/// it).
#[allow(non_camel_case_types)]
pub struct mqseal_sealer {
    inner: Sealer,
}

/// Creates a sealer for (a copy of) `identity` with `profile` (`MQSEAL_PROFILE_SIGNED` or
/// `MQSEAL_PROFILE_GROUP_MAC`) and no keys, whose first message carries sequence number `start`
/// (no limit), drawing each message's salt from the generator registered with
/// `mqseal_set_random`, else (hosted builds) the operating system's. Firmware builds without a
/// registered generator return `MQSEAL_ERR_NO_RANDOM_SOURCE`. The generator is looked up at each
/// seal: while the registered one fails (or, in firmware, after it was unregistered),
/// `mqseal_seal` fails with `MQSEAL_ERR_RANDOMNESS` and spends no sequence number.
///
/// `start` must lie above every sequence number this identity used before (e.g. the limit of the
/// last block reserved with `mqseal_sealer_set_sequence`, read back from durable storage), or
/// receivers refuse the repeated numbers as replays (`MQSEAL_ERR_REPLAY`). It is never a nonce
/// reuse: the per-message salt keeps every message's key unique. 0 is right only for an
/// identity that has never sealed.
///
/// # Safety
/// `identity` must be a valid handle; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_new(
    identity: *const mqseal_identity,
    profile: u32,
    start: u64,
    out: *mut *mut mqseal_sealer,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        let profile = mqseal_profile::to_core(profile)?;
        if !cfg!(feature = "std") && !random::registered() {
            return Err(mqseal_result::MQSEAL_ERR_NO_RANDOM_SOURCE);
        }
        let random = Box::new(RegisteredRandom);
        out.write(into_handle(mqseal_sealer {
            inner: Sealer::with_random(identity.inner.clone(), profile, start, random),
        }));
        Ok(())
    })
}

/// Like `mqseal_sealer_new`, with each message's 8-byte salt drawn from the caller's generator
/// `fill` (called with `ctx`) instead of the operating system's: for firmware with a hardware
/// RNG. When `fill` returns nonzero, `mqseal_seal` fails with `MQSEAL_ERR_RANDOMNESS` and spends
/// no sequence number. `fill` is called once per sealed message (never by this function), and
/// only from within `mqseal_seal` on this sealer. `ctx` may be NULL; mqseal never dereferences or
/// frees it.
///
/// # Safety
/// `identity` must be a valid handle; `out` valid for writing a pointer; `fill` NULL
/// (`MQSEAL_ERR_NULL_ARGUMENT`) or a function that may be called with `ctx` (as documented for
/// `mqseal_random_fn`) until `mqseal_sealer_free`, on whichever thread uses the sealer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_sealer_new_with_random(
    identity: *const mqseal_identity,
    profile: u32,
    start: u64,
    fill: mqseal_random_fn,
    ctx: *mut c_void,
    out: *mut *mut mqseal_sealer,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        let profile = mqseal_profile::to_core(profile)?;
        let fill = fill.ok_or(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT)?;
        // SAFETY: the caller guarantees `fill` may be called with `ctx` for the sealer's lifetime
        // on the thread using it; the wrapper lives exactly as long as the sealer.
        let random = unsafe { CallbackRandom::new(fill, ctx) };
        out.write(into_handle(mqseal_sealer {
            inner: Sealer::with_random(identity.inner.clone(), profile, start, Box::new(random)),
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

/// Adds (a copy of) `key` to seal with (the same key again changes nothing). For each topic the
/// most specific covering filter is used, at its newest epoch; among keys of one filter and epoch
/// with different secrets (other issuers' lineages), the one added first.
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
/// resume at the stored limit, never below it (a number used twice is refused by receivers as a
/// replay; thanks to the per-message salt it never weakens the encryption).
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
/// on `topic` with `options` (NULL: not retained, current time as timestamp; no timestamp in
/// firmware builds) will produce (`MQSEAL_ERR_KEY_NOT_FOUND` if no key covers `topic`,
/// `MQSEAL_ERR_TOO_LARGE` if the result would exceed `MQSEAL_MAX_SEALED_LEN`).
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
        let options =
            mqseal_seal_options::to_core(unsafe { mqseal_seal_options::read_c(options) }.as_ref());
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
/// given in `options` (NULL: not retained, the current system time as timestamp; firmware
/// builds, which have no clock: no timestamp).
///
/// `out_cap >= payload_len + MQSEAL_MAX_OVERHEAD_SIGNED` always suffices (exact length:
/// `mqseal_sealer_sealed_len`); otherwise `MQSEAL_ERR_BUFFER_TOO_SMALL`. `payload` and `out` must
/// not overlap (`MQSEAL_ERR_INVALID_ARGUMENT`); `payload` may be NULL when `payload_len` is 0.
///
/// No heap allocation per message: the first message on a topic derives and caches the topic's
/// key (one allocation; the cache holds up to 1024 topics, then starts over), later messages on
/// that topic allocate nothing. Each message draws an 8-byte salt from the sealer's random
/// generator. A sequence number is consumed only once the topic, key, size, buffer and sequence
/// limit checks passed and the salt was drawn: a refused call spends none, and no number is ever
/// used twice. Errors: `MQSEAL_ERR_INVALID_TOPIC`, `MQSEAL_ERR_KEY_NOT_FOUND`,
/// `MQSEAL_ERR_KEY_EXPIRED` (no key covering the topic is valid at the options' timestamp, else
/// the system clock; firmware builds without a timestamp have no time, so a key with a validity
/// limit is refused), `MQSEAL_ERR_BUFFER_TOO_SMALL`, `MQSEAL_ERR_SEQUENCE_EXHAUSTED`,
/// `MQSEAL_ERR_TOO_LARGE`, `MQSEAL_ERR_RANDOMNESS` (the generator failed).
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
        // Inputs and outputs must not share memory (Rust may not alias them).
        if overlaps(payload, payload_len, out, out_cap)
            || overlaps_value(out_len, out, out_cap)
            || overlaps_value(out_len.cast_const(), payload, payload_len)
        {
            return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller guarantees `options` is NULL or valid; it is copied before any
        // output is borrowed.
        let options =
            mqseal_seal_options::to_core(unsafe { mqseal_seal_options::read_c(options) }.as_ref());
        // SAFETY: the caller guarantees `out_len` is valid for writing a size_t.
        let out_len = unsafe { Out::new(out_len) }?;
        // SAFETY: the caller guarantees `sealer` is a valid handle not used elsewhere meanwhile.
        let sealer = unsafe { borrow_mut(sealer) }?;
        // SAFETY: the caller guarantees `topic` is a NUL-terminated string.
        let topic = unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }?;
        if overlaps_str(topic, out, out_cap) {
            return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller guarantees `payload` is valid for `payload_len` bytes.
        let payload = unsafe { bytes(payload, payload_len) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_cap` bytes; it overlaps neither
        // `payload`, `topic` nor `out_len` (checked above).
        let out = unsafe { bytes_mut(out, out_cap) }?;
        let n = sealer.inner.seal_into(topic, payload, &options, out)?;
        out_len.write(n);
        Ok(())
    })
}
