//! `mqseal_tree_key`: the secret key of a topic filter (`#`, `prefix/#` or an exact topic) at an
//! epoch.

use core::ffi::c_char;

use mqseal::{TreeKey, Validity};
use zeroize::Zeroizing;

use crate::result::mqseal_result;
use crate::util::{
    Out, borrow, borrow_mut, bytes_mut, c_str, copy_out, fixed, free_handle, guard, guard_value,
    into_handle,
};

/// Length of a tree key's secret.
pub const MQSEAL_KEY_LEN: usize = 32;

const _: () = assert!(MQSEAL_KEY_LEN == mqseal::KEY_LEN);

/// The secret key of a topic filter at an epoch: the unit that is generated, granted and rotated.
/// A key for `plant/#` derives the keys of `plant/7/#` and `plant/7/temp`, never upwards. Opaque;
/// create with `mqseal_tree_key_new`, `mqseal_tree_key_generate`, `mqseal_tree_key_derive` or
/// `mqseal_grant_accept`, release with `mqseal_tree_key_free` (which wipes the secret).
#[allow(non_camel_case_types)]
pub struct mqseal_tree_key {
    pub(crate) inner: TreeKey,
}

/// Borrows a filter string (`MQSEAL_ERR_INVALID_FILTER` if it is not UTF-8).
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn filter_str<'a>(filter: *const c_char) -> Result<&'a str, mqseal_result> {
    // SAFETY: forwarded to the caller.
    unsafe { c_str(filter, mqseal_result::MQSEAL_ERR_INVALID_FILTER) }
}

/// Loads a key from its parts: the filter (`#`, `prefix/#` or an exact topic; NUL-terminated
/// UTF-8), the epoch and the `MQSEAL_KEY_LEN`-byte secret. On success `*out` receives a new
/// handle.
///
/// # Safety
/// `filter` must be a NUL-terminated string; `secret` must be valid for reads of `secret_len`
/// bytes; `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_new(
    filter: *const c_char,
    epoch: u32,
    secret: *const u8,
    secret_len: usize,
    out: *mut *mut mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        // SAFETY: the caller guarantees `secret` is valid for `secret_len` bytes.
        let secret = Zeroizing::new(*unsafe { fixed::<MQSEAL_KEY_LEN>(secret, secret_len) }?);
        let inner = TreeKey::from_secret(filter, epoch, *secret)?;
        out.write(into_handle(mqseal_tree_key { inner }));
        Ok(())
    })
}

/// Creates a fresh random key for `filter` at `epoch` from the generator registered with
/// `mqseal_set_random`, else (hosted builds) the operating system's (`MQSEAL_ERR_RANDOMNESS` if
/// it fails; builds without `std` and no registered generator: `MQSEAL_ERR_NO_RANDOM_SOURCE`).
///
/// # Safety
/// `filter` must be a NUL-terminated string; `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_generate(
    filter: *const c_char,
    epoch: u32,
    out: *mut *mut mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        let mut secret = Zeroizing::new([0u8; MQSEAL_KEY_LEN]);
        crate::random::fill(secret.as_mut())?;
        let inner = TreeKey::from_secret(filter, epoch, *secret)?;
        out.write(into_handle(mqseal_tree_key { inner }));
        Ok(())
    })
}

/// Derives the key of a narrower filter (a subtree below `key`'s, or an exact topic it covers) at
/// the same epoch; `MQSEAL_ERR_KEY_NOT_FOUND` if `filter` is not below `key`'s filter.
///
/// # Safety
/// `key` must be a valid handle; `filter` a NUL-terminated string; `out` valid for writing a
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_derive(
    key: *const mqseal_tree_key,
    filter: *const c_char,
    out: *mut *mut mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        // SAFETY: the caller guarantees `filter` is a NUL-terminated string.
        let filter = unsafe { filter_str(filter) }?;
        let inner = key.inner.derive(filter)?;
        out.write(into_handle(mqseal_tree_key { inner }));
        Ok(())
    })
}

/// Sets the key's validity (spec section 4.1), in seconds since the Unix epoch, both ends
/// inclusive: `not_before` 0 means always, `not_after` 0 means never expires (as in a grant).
/// Sealers use the key only inside it (`MQSEAL_ERR_KEY_EXPIRED` otherwise; a key whose
/// `not_before` is in the future waits until then, so the next epoch can be handed out ahead of
/// time); openers refuse messages under it outside `[not_before - max_future_skew, not_after +
/// validity_grace]`; grants of it (or of keys derived from it afterwards) carry it signed.
/// `MQSEAL_ERR_MALFORMED` if `not_after` is not 0 and below `not_before` (the key is unchanged).
///
/// # Safety
/// `key` must be a valid handle, not used by another thread at the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_set_validity(
    key: *mut mqseal_tree_key,
    not_before: u64,
    not_after: u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `key` is a valid handle used by no one else now.
        let key = unsafe { borrow_mut(key) }?;
        let validity = Validity::new(not_before, (not_after != 0).then_some(not_after))?;
        key.inner = key.inner.clone().with_validity(validity);
        Ok(())
    })
}

/// Writes the key's validity: `*not_before` (0: always) and `*not_after` (0: never expires).
/// Either pointer may be NULL.
///
/// # Safety
/// `key` must be a valid handle; `not_before` and `not_after` NULL or valid for writing a
/// `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_validity(
    key: *const mqseal_tree_key,
    not_before: *mut u64,
    not_after: *mut u64,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        let validity = key.inner.validity();
        // SAFETY: the caller guarantees each pointer is NULL or valid for writing a u64.
        if let Ok(out) = unsafe { Out::new(not_before) } {
            out.write(validity.not_before());
        }
        // SAFETY: as above.
        if let Ok(out) = unsafe { Out::new(not_after) } {
            out.write(validity.not_after().unwrap_or(0));
        }
        Ok(())
    })
}

/// Frees a key and wipes its secret. NULL is ignored.
///
/// # Safety
/// `key` must be NULL or a handle from this library, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_free(key: *mut mqseal_tree_key) {
    let _ = guard(|| {
        // SAFETY: the caller guarantees `key` is NULL or a live handle freed once.
        unsafe { free_handle(key) };
        Ok(())
    });
}

/// Writes the key's epoch into `*out`.
///
/// # Safety
/// `key` must be a valid handle; `out` valid for writing a `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_epoch(
    key: *const mqseal_tree_key,
    out: *mut u32,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a u32.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        out.write(key.inner.epoch());
        Ok(())
    })
}

/// Writes the key's filter as a NUL-terminated string into `buf` (`buf_len` must be at least the
/// filter length + 1, else `MQSEAL_ERR_BUFFER_TOO_SMALL`); `*out_len` (if not NULL) receives the
/// filter length without the NUL. Filters are at most 65535 bytes.
///
/// # Safety
/// `key` must be a valid handle; `buf` valid for writes of `buf_len` bytes; `out_len` NULL or
/// valid for writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_filter(
    key: *const mqseal_tree_key,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        // SAFETY: the caller guarantees `buf` is valid for `buf_len` bytes.
        let buf = unsafe { bytes_mut(buf.cast::<u8>(), buf_len) }?;
        let filter = key.inner.filter().as_str().as_bytes();
        if buf.len() <= filter.len() {
            return Err(mqseal_result::MQSEAL_ERR_BUFFER_TOO_SMALL);
        }
        // SAFETY: the caller guarantees `out_len` is NULL or valid for writing a usize.
        let out_len = unsafe { Out::new(out_len) }.ok();
        copy_out(filter, buf)?;
        if let Some(nul) = buf.get_mut(filter.len()) {
            *nul = 0;
        }
        if let Some(out_len) = out_len {
            out_len.write(filter.len());
        }
        Ok(())
    })
}

/// Writes the key's `MQSEAL_KEY_LEN`-byte secret into `out` (`out_len >= MQSEAL_KEY_LEN`), e.g.
/// to store it. Keep it secret and wipe the buffer after use.
///
/// # Safety
/// `key` must be a valid handle; `out` valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_secret(
    key: *const mqseal_tree_key,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `key` is a valid handle.
        let key = unsafe { borrow(key) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        copy_out(&*key.inner.secret_bytes(), out)
    })
}

/// Whether `key` covers the topic name `topic` (false for NULL arguments or non-UTF-8 text).
///
/// # Safety
/// `key` must be NULL or a valid handle; `topic` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_tree_key_covers(
    key: *const mqseal_tree_key,
    topic: *const c_char,
) -> bool {
    guard_value(false, || {
        // SAFETY: the caller guarantees `key` is NULL or a valid handle.
        let Ok(key) = (unsafe { borrow(key) }) else {
            return false;
        };
        // SAFETY: the caller guarantees `topic` is NULL or a NUL-terminated string.
        let Ok(topic) = (unsafe { c_str(topic, mqseal_result::MQSEAL_ERR_INVALID_TOPIC) }) else {
            return false;
        };
        key.inner.covers(topic)
    })
}
