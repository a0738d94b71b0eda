//! What every exported function shares: the panic boundary, pointer checks and out-parameters.
//!
//! Exported functions check every pointer before doing any work, compute their results, and write
//! out-parameters last, only on success.

use alloc::boxed::Box;
use core::ffi::{CStr, c_char};
use core::mem::MaybeUninit;
#[cfg(feature = "std")]
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::mqseal_result;

/// The error side of every internal step: a result code other than `MQSEAL_OK`.
pub(crate) type FfiResult<T> = Result<T, mqseal_result>;

/// Runs `f` behind a panic boundary: a panic (a bug, never expected) becomes `MQSEAL_ERR_PANIC`
/// instead of unwinding into C. Without `std` panics abort (src/panic.rs): `f` runs as is.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> mqseal_result {
    #[cfg(feature = "std")]
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(mqseal_result::MQSEAL_ERR_PANIC));
    #[cfg(not(feature = "std"))]
    let result = f();
    match result {
        Ok(()) => mqseal_result::MQSEAL_OK,
        Err(code) => code,
    }
}

/// Like [`guard`] for functions that return a plain value: `fallback` if `f` panics.
#[cfg(feature = "std")]
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Like [`guard`] for functions that return a plain value (without `std`: panics abort).
#[cfg(not(feature = "std"))]
pub(crate) fn guard_value<T>(_fallback: T, f: impl FnOnce() -> T) -> T {
    f()
}

/// Borrows a handle or struct passed by pointer.
///
/// # Safety
/// `ptr` must be NULL or point to a valid, initialised `T` that nothing mutates while the
/// returned reference lives.
pub(crate) unsafe fn borrow<'a, T>(ptr: *const T) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees `ptr` is NULL or valid and not mutated for 'a; `as_ref`
    // handles NULL.
    unsafe { ptr.as_ref() }.ok_or(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT)
}

/// Borrows a handle mutably.
///
/// # Safety
/// `ptr` must be NULL or point to a valid `T` that nothing else accesses while the returned
/// reference lives.
pub(crate) unsafe fn borrow_mut<'a, T>(ptr: *mut T) -> FfiResult<&'a mut T> {
    // SAFETY: the caller guarantees `ptr` is NULL or valid and unaliased for 'a; `as_mut`
    // handles NULL.
    unsafe { ptr.as_mut() }.ok_or(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT)
}

/// Reads a caller's `bool` field as its byte, nonzero meaning true: a C program can store any
/// byte there (a `memset`, a `uint8_t` written through a cast), and reading such a byte as a
/// Rust `bool` would be undefined behaviour.
///
/// # Safety
/// `field` must point to a readable byte (a field of a valid struct).
pub(crate) unsafe fn c_bool(field: *const bool) -> bool {
    // SAFETY: forwarded to the caller; any byte is a valid `u8`.
    unsafe { field.cast::<u8>().read() != 0 }
}

/// An input struct of the C API copied from the caller's memory with its `bool` fields read
/// by [`c_bool`] (never as Rust `bool`s).
pub(crate) trait FromC: Sized {
    /// Copies `*ptr`, or `None` if `ptr` is NULL.
    ///
    /// # Safety
    /// `ptr` must be NULL or point to a readable, initialised value of the C struct.
    unsafe fn read_c(ptr: *const Self) -> Option<Self>;
}

/// Borrows `len` input bytes. `ptr` may be NULL when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `ptr` must be NULL or valid for reads of `len` bytes that nothing mutates
/// while the returned slice lives.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT);
    }
    if isize::try_from(len).is_err() {
        return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: `ptr` is non-NULL and, by the caller's guarantee, valid for `len` bytes (which fit
    // in an isize) that stay unmodified for 'a; u8 has no alignment requirement.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Borrows an input array of `len` values of `T` (e.g. structs or pointers). `ptr` may be NULL
/// when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `ptr` must be NULL or point to `len` consecutive, initialised, aligned
/// values of `T` that nothing mutates while the returned slice lives.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, len: usize) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT);
    }
    let fits = len
        .checked_mul(core::mem::size_of::<T>())
        .is_some_and(|total| isize::try_from(total).is_ok());
    if !fits || !ptr.is_aligned() {
        return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: `ptr` is non-NULL and aligned, and, by the caller's guarantee, points to `len`
    // initialised values of `T` (whose total size fits in an isize) unmodified for 'a.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Borrows a caller-provided output buffer of `len` bytes. `ptr` may be NULL when `len` is 0.
///
/// # Safety
/// Unless `len` is 0, `ptr` must be NULL or valid for reads and writes of `len` bytes that nothing
/// else accesses while the returned slice lives.
pub(crate) unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> FfiResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT);
    }
    if isize::try_from(len).is_err() {
        return Err(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: `ptr` is non-NULL and, by the caller's guarantee, valid for reads and writes of
    // `len` bytes (which fit in an isize) with no other access for 'a; u8 needs no alignment.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Borrows exactly `N` input bytes given as pointer and length: a wrong length is
/// `MQSEAL_ERR_MALFORMED`.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn fixed<'a, const N: usize>(
    ptr: *const u8,
    len: usize,
) -> FfiResult<&'a [u8; N]> {
    if len != N {
        return Err(if ptr.is_null() {
            mqseal_result::MQSEAL_ERR_NULL_ARGUMENT
        } else {
            mqseal_result::MQSEAL_ERR_MALFORMED
        });
    }
    // SAFETY: forwarded to the caller (same contract as `bytes`).
    let slice = unsafe { bytes(ptr, len) }?;
    slice
        .try_into()
        .map_err(|_| mqseal_result::MQSEAL_ERR_MALFORMED)
}

/// Borrows a NUL-terminated UTF-8 string; `invalid` is the error for non-UTF-8 text.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that nothing mutates while the returned
/// `&str` lives.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, invalid: mqseal_result) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT);
    }
    // SAFETY: `ptr` is non-NULL and, by the caller's guarantee, a NUL-terminated string that
    // outlives 'a unmodified.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|_| invalid)
}

/// Whether the byte ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte (an input and an
/// output buffer must not: Rust may not alias them).
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// Whether the `T` at `p` (if not NULL) shares a byte with `[b, b + b_len)`.
pub(crate) fn overlaps_value<T>(p: *const T, b: *const u8, b_len: usize) -> bool {
    !p.is_null() && overlaps(p.cast::<u8>(), core::mem::size_of::<T>(), b, b_len)
}

/// Whether the NUL-terminated `text` (its terminator included) shares a byte with
/// `[b, b + b_len)`.
pub(crate) fn overlaps_str(text: &str, b: *const u8, b_len: usize) -> bool {
    overlaps(text.as_ptr(), text.len() + 1, b, b_len)
}

/// An out-parameter checked for NULL up front and written once, at the end, on success.
pub(crate) struct Out<'a, T>(&'a mut MaybeUninit<T>);

impl<'a, T> Out<'a, T> {
    /// Checks `ptr` without reading or writing it.
    ///
    /// # Safety
    /// `ptr` must be NULL or valid for writing a `T` (aligned; its old value is not read or
    /// dropped) and not accessed by anything else while the `Out` lives.
    pub(crate) unsafe fn new(ptr: *mut T) -> FfiResult<Out<'a, T>> {
        // SAFETY: MaybeUninit<T> has the layout of T; the caller guarantees `ptr` is NULL or
        // valid for writes and unaliased for 'a; `as_mut` handles NULL.
        let slot = unsafe { ptr.cast::<MaybeUninit<T>>().as_mut() };
        slot.map(Out).ok_or(mqseal_result::MQSEAL_ERR_NULL_ARGUMENT)
    }

    /// Writes the value (the previous contents are neither read nor dropped).
    pub(crate) fn write(self, value: T) {
        self.0.write(value);
    }
}

/// Copies `src` into a caller buffer of at least `src.len()` bytes (`MQSEAL_ERR_BUFFER_TOO_SMALL`
/// otherwise, nothing written).
pub(crate) fn copy_out(src: &[u8], dst: &mut [u8]) -> FfiResult<()> {
    dst.get_mut(..src.len())
        .ok_or(mqseal_result::MQSEAL_ERR_BUFFER_TOO_SMALL)?
        .copy_from_slice(src);
    Ok(())
}

/// Moves `value` to the heap and hands the pointer to C (freed by the matching `_free`).
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` must be NULL or a pointer returned by [`into_handle`] for this `T`, not freed before and
/// not used afterwards.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller guarantees `ptr` came from `Box::into_raw` in `into_handle` and is
        // freed exactly once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// A NUL-terminated copy of `text` into `buf` (truncated to fit, always terminated when
/// `len > 0`); returns `text.len()`, the length without the NUL, like `snprintf`.
///
/// # Safety
/// As [`bytes_mut`] for (`buf`, `len`).
pub(crate) unsafe fn write_c_text(text: &str, buf: *mut c_char, len: usize) -> usize {
    if buf.is_null() || len == 0 {
        return text.len();
    }
    // SAFETY: forwarded to the caller; c_char and u8 have the same size and alignment.
    let Ok(dst) = (unsafe { bytes_mut(buf.cast::<u8>(), len) }) else {
        return text.len();
    };
    let n = text.len().min(len - 1);
    if let (Some(d), Some(s)) = (dst.get_mut(..n), text.as_bytes().get(..n)) {
        d.copy_from_slice(s);
    }
    if let Some(nul) = dst.get_mut(n) {
        *nul = 0;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_result_code() {
        // The default hook would print the (expected) panic; keep the test output clean.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = guard(|| panic!("boom"));
        let v = guard_value(7u32, || panic!("boom"));
        std::panic::set_hook(hook);
        assert_eq!(r, mqseal_result::MQSEAL_ERR_PANIC);
        assert_eq!(v, 7);
        assert_eq!(guard(|| Ok(())), mqseal_result::MQSEAL_OK);
        assert_eq!(
            guard(|| Err(mqseal_result::MQSEAL_ERR_REPLAY)),
            mqseal_result::MQSEAL_ERR_REPLAY
        );
    }

    #[test]
    fn overlap_and_text_helpers() {
        let buf = [0u8; 16];
        let p = buf.as_ptr();
        assert!(overlaps(p, 8, p.wrapping_add(7), 8));
        assert!(!overlaps(p, 8, p.wrapping_add(8), 8));
        assert!(!overlaps(p, 0, p, 8));
        let mut out = [0x55 as c_char; 4];
        // SAFETY: `out` is valid for 4 bytes.
        assert_eq!(unsafe { write_c_text("hello", out.as_mut_ptr(), 4) }, 5);
        assert_eq!(out.map(|c| c as u8), *b"hel\0");
    }
}
