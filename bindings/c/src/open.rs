//! `mqseal_opener` and `mqseal_open`: verifying and decrypting into caller buffers.

use core::ffi::c_char;

use mqseal::{Delivery, Fingerprint, OpenPolicy, Opener, Profile, ReplayWindow};

use crate::identity::{MQSEAL_FINGERPRINT_LEN, MQSEAL_PUBLIC_IDENTITY_LEN, public_identity};
use crate::keys::{filter_str, mqseal_tree_key};
use crate::result::mqseal_result;
use crate::seal::mqseal_profile;
use crate::util::{
    FfiResult, FromC, Out, borrow, borrow_mut, bytes, bytes_mut, c_bool, c_str, copy_out, fixed,
    free_handle, guard, guard_value, into_handle, overlaps, overlaps_str, overlaps_value,
};

/// Length of a serialised replay window (`mqseal_opener_replay_window`).
pub const MQSEAL_REPLAY_WINDOW_LEN: usize = 265;
/// Length of the key id in a message header (`mqseal_header.key_id`).
pub const MQSEAL_KEY_ID_LEN: usize = 4;
/// Length of the per-message random salt in a message header (`mqseal_header.salt`).
pub const MQSEAL_SALT_LEN: usize = 8;

const _: () = assert!(MQSEAL_REPLAY_WINDOW_LEN == mqseal::REPLAY_WINDOW_BYTES);
const _: () = assert!(MQSEAL_KEY_ID_LEN == mqseal::KEY_ID_LEN);
const _: () = assert!(MQSEAL_SALT_LEN == mqseal::SALT_LEN);

/// What an opener accepts beyond authenticity. Start from `mqseal_open_policy_default()`.
/// (Which senders may use the group-mac profile, and on which topics, is set per sender:
/// `mqseal_opener_trust_group_mac_sender`.)
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mqseal_open_policy {
    /// Refuse messages without a timestamp. Default: false (but a maximum age implies it).
    pub require_timestamp: bool,
    /// Whether `max_age` applies. Default: false. With a maximum age, messages without a
    /// timestamp are refused (`MQSEAL_ERR_MISSING_TIMESTAMP`).
    pub has_max_age: bool,
    /// Refuse messages whose timestamp is more than this many seconds old.
    pub max_age: u64,
    /// With a max age, refuse timestamps more than this many seconds in the future; also how
    /// far ahead of its `not_before` a key is accepted. Default: 60.
    pub max_future_skew: u64,
    /// Seconds after a key's validity `not_after` during which messages under it are still
    /// opened (sealed just before it, delivered late); later: `MQSEAL_ERR_KEY_EXPIRED`.
    /// Default: 86400 (one day).
    pub validity_grace: u64,
}

impl FromC for mqseal_open_policy {
    unsafe fn read_c(ptr: *const Self) -> Option<Self> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees `ptr` points to a valid policy; each field is read in
        // place, the bools as bytes.
        unsafe {
            Some(mqseal_open_policy {
                require_timestamp: c_bool(&raw const (*ptr).require_timestamp),
                has_max_age: c_bool(&raw const (*ptr).has_max_age),
                max_age: (&raw const (*ptr).max_age).read(),
                max_future_skew: (&raw const (*ptr).max_future_skew).read(),
                validity_grace: (&raw const (*ptr).validity_grace).read(),
            })
        }
    }
}

impl FromC for mqseal_delivery {
    unsafe fn read_c(ptr: *const Self) -> Option<Self> {
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees `ptr` points to a valid delivery; each field is read
        // in place, the bools as bytes.
        unsafe {
            Some(mqseal_delivery {
                retained: c_bool(&raw const (*ptr).retained),
                duplicate: c_bool(&raw const (*ptr).duplicate),
                has_now: c_bool(&raw const (*ptr).has_now),
                now: (&raw const (*ptr).now).read(),
            })
        }
    }
}

impl mqseal_open_policy {
    fn to_core(self) -> OpenPolicy {
        OpenPolicy {
            max_age: self.has_max_age.then_some(self.max_age),
            max_future_skew: self.max_future_skew,
            require_timestamp: self.require_timestamp,
            validity_grace: self.validity_grace,
        }
    }
}

/// The default policy: no timestamp required, no maximum age, 60 s skew, one day of grace after
/// a key's validity.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_open_policy_default() -> mqseal_open_policy {
    // Should building the default ever panic: no timestamps, no skew, no grace.
    let strict = mqseal_open_policy {
        require_timestamp: false,
        has_max_age: false,
        max_age: 0,
        max_future_skew: 0,
        validity_grace: 0,
    };
    guard_value(strict, || {
        let d = OpenPolicy::default();
        mqseal_open_policy {
            require_timestamp: d.require_timestamp,
            has_max_age: d.max_age.is_some(),
            max_age: d.max_age.unwrap_or(0),
            max_future_skew: d.max_future_skew,
            validity_grace: d.validity_grace,
        }
    })
}

/// How the broker delivered a message (NULL in `mqseal_open`: a live delivery, no clock).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mqseal_delivery {
    /// The broker delivered it with the retain flag set (a stored retained message).
    pub retained: bool,
    /// The broker marked it as a redelivery (MQTT DUP flag).
    pub duplicate: bool,
    /// Whether `now` is set; needed with a max age, with retired keys and with keys that have a
    /// validity limit (otherwise hosted builds read the system clock; builds without `std` have
    /// none: such a message is refused with `MQSEAL_ERR_EXPIRED`, `MQSEAL_ERR_EPOCH_EXPIRED` or
    /// `MQSEAL_ERR_KEY_EXPIRED`).
    pub has_now: bool,
    /// The receiver's time in seconds since the Unix epoch.
    pub now: u64,
}

/// What `mqseal_open` learnt about a message besides its payload.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mqseal_opened {
    /// Length of the plaintext written to the output buffer.
    pub payload_len: usize,
    /// The sender's sequence number.
    pub seq: u64,
    /// The sender's timestamp (seconds since the Unix epoch), if `has_timestamp`.
    pub timestamp: u64,
    /// The key epoch the message was sealed under.
    pub epoch: u32,
    /// The profile (`MQSEAL_PROFILE_SIGNED`: the sender is authenticated by signature;
    /// `MQSEAL_PROFILE_GROUP_MAC`: only a claim backed by the group key).
    pub profile: mqseal_profile,
    /// Whether the publisher published it retained.
    pub retain: bool,
    /// Whether the message carries a timestamp.
    pub has_timestamp: bool,
    /// The sender's 64-byte public identity.
    pub sender: [u8; MQSEAL_PUBLIC_IDENTITY_LEN],
    /// The sender's fingerprint.
    pub sender_fingerprint: [u8; MQSEAL_FINGERPRINT_LEN],
}

/// The cleartext header of a sealed message, read by `mqseal_inspect` (nothing verified).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mqseal_header {
    /// The sender's sequence number.
    pub seq: u64,
    /// The timestamp, if `has_timestamp`.
    pub timestamp: u64,
    /// The key epoch.
    pub epoch: u32,
    /// The profile.
    pub profile: mqseal_profile,
    /// The retain flag the publisher sealed.
    pub retain: bool,
    /// Whether the message carries a timestamp.
    pub has_timestamp: bool,
    /// The sender id (first 4 bytes of the sender's fingerprint).
    pub sender_id: [u8; 4],
    /// The key id: names the one key (of this epoch, for this topic) the message is sealed under.
    pub key_id: [u8; MQSEAL_KEY_ID_LEN],
    /// The message's random salt (mixed into its key).
    pub salt: [u8; MQSEAL_SALT_LEN],
}

/// Opens sealed messages: holds trusted senders (each for the signed profile, and optionally for
/// group-mac on some filters), keys, one replay window per (sender, profile, epoch, topic), and
/// each sender's high-water mark per profile (the highest sequence number accepted from it in
/// that profile on any topic). Opaque; not thread-safe (use one per thread or lock it).
#[allow(non_camel_case_types)]
pub struct mqseal_opener {
    inner: Opener,
}

/// Creates an opener with `policy` (NULL: `mqseal_open_policy_default()`), no keys and no trusted
/// senders.
///
/// # Safety
/// `policy` must be NULL or valid; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_new(
    policy: *const mqseal_open_policy,
    out: *mut *mut mqseal_opener,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `policy` is NULL or valid.
        let policy = unsafe { mqseal_open_policy::read_c(policy) }
            .unwrap_or_else(|| mqseal_open_policy_default());
        out.write(into_handle(mqseal_opener {
            inner: Opener::with_policy(policy.to_core()),
        }));
        Ok(())
    })
}

/// Frees an opener (and wipes its keys). NULL is ignored.
///
/// # Safety
/// `opener` must be NULL or a handle from this library, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_free(opener: *mut mqseal_opener) {
    let _ = guard(|| {
        // SAFETY: the caller guarantees `opener` is NULL or a live handle freed once.
        unsafe { free_handle(opener) };
        Ok(())
    });
}

/// Trusts signed messages from the sender with this 64-byte public identity (idempotent). Its
/// group-mac messages are refused (`MQSEAL_ERR_PROFILE_NOT_ALLOWED`) unless
/// `mqseal_opener_trust_group_mac_sender` allows them on the topic. Errors:
/// `MQSEAL_ERR_MALFORMED` (not 64 bytes), `MQSEAL_ERR_INVALID_KEY`.
///
/// # Safety
/// `opener` must be a valid handle; `public_identity_bytes` valid for reads of
/// `public_identity_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_trust_sender(
    opener: *mut mqseal_opener,
    public_identity_bytes: *const u8,
    public_identity_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees the input is valid for its length.
        let sender = unsafe { public_identity(public_identity_bytes, public_identity_len) }?;
        opener.inner.trust_sender(sender);
        Ok(())
    })
}

/// Trusts the sender with this 64-byte public identity (as `mqseal_opener_trust_sender`) and
/// also accepts its group-mac messages on topics covered by `filter` (`#`, `prefix/#` or an
/// exact topic; NUL-terminated UTF-8); call again to add filters (idempotent per filter). In
/// group-mac any holder of the topic's key can forge such a message, so allow it only for
/// senders that cannot sign and only where they publish. A group-mac message is refused
/// `MQSEAL_ERR_PROFILE_NOT_ALLOWED` when no sender is trusted for group-mac at all, or when its
/// sender is not trusted for group-mac on a filter covering the topic. Replay windows and
/// high-water marks are kept per profile, so forged group-mac messages never move the sender's
/// signed window.
///
/// Errors: `MQSEAL_ERR_MALFORMED` (the identity is not 64 bytes), `MQSEAL_ERR_INVALID_KEY`,
/// `MQSEAL_ERR_INVALID_FILTER`, `MQSEAL_ERR_NULL_ARGUMENT`; on failure nothing changes.
///
/// # Safety
/// `opener` must be a valid handle; `public_identity_bytes` valid for reads of
/// `public_identity_len` bytes; `filter` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_trust_group_mac_sender(
    opener: *mut mqseal_opener,
    public_identity_bytes: *const u8,
    public_identity_len: usize,
    filter: *const c_char,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees the input is valid for its length.
        let sender = unsafe { public_identity(public_identity_bytes, public_identity_len) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        opener.inner.trust_group_mac_sender(sender, filter)?;
        Ok(())
    })
}

/// Stops trusting the sender with this 32-byte fingerprint (`MQSEAL_ERR_UNKNOWN_SENDER` if it was
/// not trusted).
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_untrust_sender(
    opener: *mut mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `fingerprint` is valid for `fingerprint_len` bytes.
        let fp = unsafe { fixed::<MQSEAL_FINGERPRINT_LEN>(fingerprint, fingerprint_len) }?;
        if opener.inner.untrust_sender(&mqseal::Fingerprint(*fp)) {
            Ok(())
        } else {
            Err(mqseal_result::MQSEAL_ERR_UNKNOWN_SENDER)
        }
    })
}

/// Adds (a copy of) `key` to open with. Adding the same key again changes nothing; keys of one
/// filter and epoch with different secrets (other issuers' lineages) are all kept: each
/// message's key id names the one it used.
///
/// # Safety
/// `opener` and `key` must be valid handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_add_key(
    opener: *mut mqseal_opener,
    key: *const mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        opener.inner.add_key(key.inner.clone());
        Ok(())
    })
}

/// Adds (a copy of) `key` already retired: messages under it are opened until `not_after`
/// (seconds since the Unix epoch, inclusive), then refused with `MQSEAL_ERR_EPOCH_EXPIRED`, as
/// after `mqseal_opener_retire_key` — but only this key, not other lineages of its filter and
/// epoch (e.g. a restarted receiver restoring a retired key next to another issuer's live one).
///
/// # Safety
/// `opener` and `key` must be valid handles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_add_retired_key(
    opener: *mut mqseal_opener,
    key: *const mqseal_tree_key,
    not_after: u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        opener.inner.add_retired_key(key.inner.clone(), not_after);
        Ok(())
    })
}

/// Forgets every key of `filter` at `epoch`, of every lineage (`MQSEAL_ERR_KEY_NOT_FOUND` if none
/// was held).
///
/// # Safety
/// `opener` must be a valid handle; `filter` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_remove_key(
    opener: *mut mqseal_opener,
    filter: *const c_char,
    epoch: u32,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        if opener.inner.remove_key(filter, epoch) {
            Ok(())
        } else {
            Err(mqseal_result::MQSEAL_ERR_KEY_NOT_FOUND)
        }
    })
}

/// Retires every key of `filter` at `epoch` after a rotation (each lineage held; to retire one
/// key only, `mqseal_opener_add_retired_key`): messages under it are still opened
/// until `not_after` (seconds since the Unix epoch, inclusive), then refused with
/// `MQSEAL_ERR_EPOCH_EXPIRED`. The time is the delivery's `now`, else the system clock (builds
/// without `std`: pass `now`; without it the retired epoch counts as expired).
///
/// # Safety
/// `opener` must be a valid handle; `filter` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_retire_key(
    opener: *mut mqseal_opener,
    filter: *const c_char,
    epoch: u32,
    not_after: u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        opener.inner.retire_key(filter, epoch, not_after);
        Ok(())
    })
}

/// The (sender fingerprint, profile, topic) a replay window belongs to, checked (an unknown
/// profile is `MQSEAL_ERR_INVALID_ARGUMENT`).
///
/// # Safety
/// `fingerprint` must be valid for reads of `fingerprint_len` bytes; `topic` a NUL-terminated
/// string.
unsafe fn window_id<'a>(
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    topic: *const c_char,
) -> FfiResult<(Fingerprint, Profile, &'a str)> {
    // SAFETY: forwarded to the caller.
    let fp = unsafe { fixed::<MQSEAL_FINGERPRINT_LEN>(fingerprint, fingerprint_len) }?;
    let profile = mqseal_profile::to_core(profile)?;
    // SAFETY: forwarded to the caller.
    let topic = unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }?;
    Ok((Fingerprint(*fp), profile, topic))
}

/// Writes the replay window of (sender `fingerprint`, `profile`, `epoch`, `topic`) as
/// `MQSEAL_REPLAY_WINDOW_LEN` bytes into `out` (an empty window if no message was accepted
/// there yet). `profile` is `MQSEAL_PROFILE_SIGNED` or `MQSEAL_PROFILE_GROUP_MAC`
/// (`MQSEAL_ERR_INVALID_ARGUMENT` otherwise): each profile has its own windows, so group-mac
/// messages, which any key holder can forge, never move a sender's signed window. A receiver
/// that restarts must restore its windows (`mqseal_opener_set_replay_window`), or it would
/// accept replays of messages it saw before: store them, e.g., after each accepted message or
/// before shutting down. The sender fingerprint, profile and epoch of a message are in its
/// `mqseal_opened`.
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes;
/// `topic` a NUL-terminated string; `out` valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_replay_window(
    opener: *const mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    epoch: u32,
    topic: *const c_char,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle.
        let opener = unsafe { borrow(opener) }?;
        // SAFETY: the caller guarantees the fingerprint and topic as documented.
        let (fp, profile, topic) =
            unsafe { window_id(fingerprint, fingerprint_len, profile, topic) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        let bytes = opener
            .inner
            .replay_window(&fp, profile, epoch, topic)
            .map_or_else(|| ReplayWindow::new().to_bytes(), ReplayWindow::to_bytes);
        copy_out(&bytes, out)
    })
}

/// Restores a replay window saved by `mqseal_opener_replay_window` for the same (sender,
/// profile, epoch, topic) (`MQSEAL_ERR_MALFORMED` if `window` is not exactly such bytes,
/// `MQSEAL_ERR_INVALID_ARGUMENT` for an unknown profile), raising the sender's high-water mark
/// of that profile to its highest number.
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes;
/// `topic` a NUL-terminated string; `window` valid for reads of `window_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_set_replay_window(
    opener: *mut mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    epoch: u32,
    topic: *const c_char,
    window: *const u8,
    window_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees the fingerprint and topic as documented.
        let (fp, profile, topic) =
            unsafe { window_id(fingerprint, fingerprint_len, profile, topic) }?;
        mqseal::validate_topic(topic)?;
        // SAFETY: the caller guarantees `window` is valid for `window_len` bytes.
        let window = ReplayWindow::from_bytes(unsafe { bytes(window, window_len) }?)?;
        opener
            .inner
            .set_replay_window(fp, profile, epoch, topic, window);
        Ok(())
    })
}

/// Writes the high-water mark of the sender with this 32-byte `fingerprint` in `profile`
/// (`MQSEAL_PROFILE_SIGNED` or `MQSEAL_PROFILE_GROUP_MAC`, else `MQSEAL_ERR_INVALID_ARGUMENT`) —
/// the highest sequence number accepted from it in that profile on any topic and epoch — into
/// `*mark` and sets `*has_mark`; `*has_mark` is false (and `*mark` 0) if nothing was accepted
/// from it in that profile yet. A live first message on a topic with no replay window yet is
/// refused `MQSEAL_ERR_TOO_OLD` when it is 2048 or more below the mark of its profile. Restoring
/// replay windows (`mqseal_opener_set_replay_window`) raises the mark to their highest numbers,
/// so a restarted receiver that restores its windows keeps it.
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes;
/// `has_mark` valid for writing a `bool`; `mark` valid for writing a `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_high_water_mark(
    opener: *const mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    has_mark: *mut bool,
    mark: *mut u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `has_mark` is valid for writing a bool.
        let has_mark = unsafe { Out::new(has_mark) }?;
        // SAFETY: the caller guarantees `mark` is valid for writing a u64.
        let mark = unsafe { Out::new(mark) }?;
        // SAFETY: the caller guarantees `opener` is a valid handle.
        let opener = unsafe { borrow(opener) }?;
        // SAFETY: the caller guarantees `fingerprint` is valid for `fingerprint_len` bytes.
        let fp = unsafe { fixed::<MQSEAL_FINGERPRINT_LEN>(fingerprint, fingerprint_len) }?;
        let profile = mqseal_profile::to_core(profile)?;
        let found = opener.inner.high_water_mark(&Fingerprint(*fp), profile);
        has_mark.write(found.is_some());
        mark.write(found.unwrap_or(0));
        Ok(())
    })
}

/// Writes the eviction floor of the sender with this 32-byte `fingerprint` in `profile` into
/// `*floor` and sets `*has_floor` (false, and `*floor` 0, if it has none): the highest number of
/// any of its replay windows dropped to stay within the limits (`mqseal_opener_set_replay_limits`).
/// Numbers at or below it are refused `MQSEAL_ERR_TOO_OLD` on every topic. A receiver that
/// persists its windows persists the floors too and restores them with
/// `mqseal_opener_raise_replay_floor`, or an evicted window's replays would be accepted after a
/// restart.
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes;
/// `has_floor` valid for writing a `bool`; `floor` valid for writing a `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_replay_floor(
    opener: *const mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    has_floor: *mut bool,
    floor: *mut u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `has_floor` is valid for writing a bool.
        let has_floor = unsafe { Out::new(has_floor) }?;
        // SAFETY: the caller guarantees `floor` is valid for writing a u64.
        let floor = unsafe { Out::new(floor) }?;
        // SAFETY: the caller guarantees `opener` is a valid handle.
        let opener = unsafe { borrow(opener) }?;
        // SAFETY: the caller guarantees `fingerprint` is valid for `fingerprint_len` bytes.
        let fp = unsafe { fixed::<MQSEAL_FINGERPRINT_LEN>(fingerprint, fingerprint_len) }?;
        let profile = mqseal_profile::to_core(profile)?;
        let found = opener.inner.replay_floor(&Fingerprint(*fp), profile);
        has_floor.write(found.is_some());
        floor.write(found.unwrap_or(0));
        Ok(())
    })
}

/// Raises the eviction floor of the sender with this 32-byte `fingerprint` in `profile` to at
/// least `floor` (a floor never goes down), e.g. restored from what
/// `mqseal_opener_replay_floor` gave before a restart; raises its high-water mark with it.
///
/// # Safety
/// `opener` must be a valid handle; `fingerprint` valid for reads of `fingerprint_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_raise_replay_floor(
    opener: *mut mqseal_opener,
    fingerprint: *const u8,
    fingerprint_len: usize,
    profile: u32,
    floor: u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `fingerprint` is valid for `fingerprint_len` bytes.
        let fp = unsafe { fixed::<MQSEAL_FINGERPRINT_LEN>(fingerprint, fingerprint_len) }?;
        let profile = mqseal_profile::to_core(profile)?;
        opener
            .inner
            .raise_replay_floor(Fingerprint(*fp), profile, floor);
        Ok(())
    })
}

/// Caps the replay windows the opener keeps: at most `per_sender` per (sender, profile) and
/// `total` in all (each at least 1; defaults 1024 and 16384, about 300 bytes plus the topic per
/// window). Evicts down to the new caps at once. An evicted window leaves its sender a floor
/// (`mqseal_opener_replay_floor`), so no replay is ever re-admitted; firmware with little RAM
/// sets small caps.
///
/// # Safety
/// `opener` must be a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_set_replay_limits(
    opener: *mut mqseal_opener,
    per_sender: usize,
    total: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        opener
            .inner
            .set_replay_limits(mqseal::ReplayLimits { per_sender, total });
        Ok(())
    })
}

/// Caps the opener's caches of derived keys: at most `topic_keys` topic keys and `node_keys`
/// node keys (defaults 256 each; roughly 170 and 110 bytes plus the name per entry). Only keys
/// that opened a message are cached; when a cache is full its older half is dropped (and wiped).
/// 0 turns a cache off: every message then derives its key from the tree key. Firmware with
/// little RAM sets small caps.
///
/// # Safety
/// `opener` must be a valid handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_set_key_cache_limits(
    opener: *mut mqseal_opener,
    topic_keys: usize,
    node_keys: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        opener.inner.set_key_cache_limits(mqseal::KeyCacheLimits {
            topic_keys,
            node_keys,
        });
        Ok(())
    })
}

/// Writes the number of replay windows the opener holds into `*count`.
///
/// # Safety
/// `opener` must be a valid handle; `count` valid for writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_opener_replay_window_count(
    opener: *const mqseal_opener,
    count: *mut usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `count` is valid for writing a size_t.
        let count = unsafe { Out::new(count) }?;
        // SAFETY: the caller guarantees `opener` is a valid handle.
        let opener = unsafe { borrow(opener) }?;
        count.write(opener.inner.replay_window_count());
        Ok(())
    })
}

/// Verifies, decrypts and replay-checks `message` received on `topic`, writing the plaintext
/// into the caller's buffer `out` of `out_cap` bytes and what is known about the message into
/// `*info` (`info->payload_len` is the plaintext length).
///
/// `out_cap >= message_len` always suffices (the plaintext is shorter than the message); a
/// smaller buffer may fail with `MQSEAL_ERR_BUFFER_TOO_SMALL`. `delivery` gives the MQTT flags
/// of the delivery (NULL: live, not a redelivery). `message` and `out` must not overlap
/// (`MQSEAL_ERR_INVALID_ARGUMENT`).
///
/// `*info` is written only on success. On failure `out` holds no plaintext: bytes mqseal wrote
/// there are zeroed. Errors, in the order of the checks: `MQSEAL_ERR_MALFORMED` /
/// `_UNSUPPORTED_VERSION` (also any v1 message) / `_TOO_LARGE`, `_PROFILE_NOT_ALLOWED` (group-mac
/// and no sender trusted for it), `_INVALID_TOPIC`, `_UNKNOWN_SENDER`, `_PROFILE_NOT_ALLOWED`
/// (group-mac and its sender not trusted for it on a filter covering the topic),
/// `_KEY_NOT_FOUND` (no held key has the message's key id on
/// this topic: also a message moved to another topic), `_EPOCH_EXPIRED`, `_BAD_SIGNATURE`,
/// `_AUTHENTICATION_FAILED`, `_RETAIN_MISMATCH` / `_MISSING_TIMESTAMP` (also when a maximum age
/// is set) / `_EXPIRED`, `_REPLAY` (`_DUPLICATE` for a redelivery) / `_TOO_OLD` (older than the
/// window, or a live first message on a topic 2048 or more below the sender's high-water mark of
/// the message's profile).
///
/// No heap allocation per message: only the first message accepted from a sender in a profile on
/// a topic and epoch allocates (its replay window).
///
/// # Safety
/// `opener` must be a valid handle; `topic` a NUL-terminated string; `message` valid for reads of
/// `message_len` bytes; `delivery` NULL or valid; `out` valid for writes of `out_cap` bytes;
/// `info` valid for writing an `mqseal_opened`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_open(
    opener: *mut mqseal_opener,
    topic: *const c_char,
    message: *const u8,
    message_len: usize,
    delivery: *const mqseal_delivery,
    out: *mut u8,
    out_cap: usize,
    info: *mut mqseal_opened,
) -> mqseal_result {
    guard(|| {
        // Inputs and outputs must not share memory (Rust may not alias them).
        if overlaps(message, message_len, out, out_cap)
            || overlaps_value(info, out, out_cap)
            || overlaps_value(info.cast_const(), message, message_len)
        {
            return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller guarantees `delivery` is NULL or valid; it is copied before any
        // output is borrowed.
        let d = unsafe { mqseal_delivery::read_c(delivery) }.unwrap_or_default();
        // SAFETY: the caller guarantees `info` is valid for writing an mqseal_opened.
        let info = unsafe { Out::new(info) }?;
        // SAFETY: the caller guarantees `opener` is a valid handle not used elsewhere meanwhile.
        let opener = unsafe { borrow_mut(opener) }?;
        // SAFETY: the caller guarantees `topic` is a NUL-terminated string.
        let topic = unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }?;
        if overlaps_str(topic, out, out_cap) {
            return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller guarantees `message` is valid for `message_len` bytes.
        let message = unsafe { bytes(message, message_len) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_cap` bytes; it overlaps neither
        // `message`, `topic` nor `info` (checked above).
        let out = unsafe { bytes_mut(out, out_cap) }?;
        let delivery = Delivery {
            retained: d.retained,
            duplicate: d.duplicate,
            now: d.has_now.then_some(d.now),
        };
        let opened = opener.inner.open_into(topic, message, &delivery, out)?;
        info.write(mqseal_opened {
            payload_len: opened.payload_len,
            seq: opened.seq,
            timestamp: opened.timestamp.unwrap_or(0),
            epoch: opened.epoch,
            profile: mqseal_profile::from_core(opened.profile),
            retain: opened.retain,
            has_timestamp: opened.timestamp.is_some(),
            sender: opened.sender.to_bytes(),
            sender_fingerprint: opened.sender.fingerprint().0,
        });
        Ok(())
    })
}

/// Reads the cleartext header of a sealed message without verifying anything (e.g. to log or
/// route it); `MQSEAL_ERR_MALFORMED` / `_UNSUPPORTED_VERSION` / `_TOO_LARGE` if it does not
/// parse.
///
/// # Safety
/// `message` must be valid for reads of `message_len` bytes; `out` valid for writing an
/// `mqseal_header`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_inspect(
    message: *const u8,
    message_len: usize,
    out: *mut mqseal_header,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing an mqseal_header.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `message` is valid for `message_len` bytes.
        let message = unsafe { bytes(message, message_len) }?;
        let h = mqseal::inspect(message)?;
        out.write(mqseal_header {
            seq: h.seq,
            timestamp: h.timestamp.unwrap_or(0),
            epoch: h.epoch,
            profile: mqseal_profile::from_core(h.profile),
            retain: h.retain,
            has_timestamp: h.timestamp.is_some(),
            sender_id: h.sender.0,
            key_id: h.key_id,
            salt: h.salt,
        });
        Ok(())
    })
}
