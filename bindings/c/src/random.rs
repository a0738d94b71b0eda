//! Randomness: the one place the C library gets random bytes from.
//!
//! A firmware registers its hardware generator once with `mqseal_set_random`; hosted builds
//! (feature `std`) fall back to the operating system's generator when none is registered. Every
//! function that needs fresh randomness (`mqseal_identity_generate`, `mqseal_tree_key_generate`,
//! `mqseal_grant_issue`) draws it through [`fill`]; the `_from_seed`, `_new` and `_with_ikm`
//! functions need none.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::result::mqseal_result;
use crate::util::FfiResult;

/// A random generator supplied by the application: fills `buf` with `len` bytes from a
/// cryptographically secure source (a hardware TRNG, or a DRBG seeded from one) and returns 0, or
/// returns any other value if it cannot.
#[allow(non_camel_case_types)]
pub type mqseal_random_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int>;

/// The registered generator (a `mqseal_random_fn` as a data pointer; NULL: none).
static FILL: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// Its context pointer.
static CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Registers the random generator mqseal uses for new identities, new keys and grants, with the
/// `ctx` pointer passed back to it; `fill` NULL unregisters it.
///
/// Builds without `std` (firmware) have no other source: until one is registered, the functions
/// that need randomness return `MQSEAL_ERR_NO_RANDOM_SOURCE`. Hosted builds use the operating
/// system's generator when none is registered. A generator that returns non-zero makes the call
/// fail with `MQSEAL_ERR_RANDOMNESS`. Register it once at start-up, before other threads or tasks
/// use mqseal.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_set_random(fill: mqseal_random_fn, ctx: *mut c_void) {
    let fill = fill.map_or(core::ptr::null_mut(), |f| f as *mut c_void);
    // Unregister first so that a concurrent reader never pairs the new context with the old
    // generator.
    FILL.store(core::ptr::null_mut(), Ordering::Release);
    CTX.store(ctx, Ordering::Release);
    FILL.store(fill, Ordering::Release);
}

/// Fills `buf` with random bytes: the registered generator, else (std) the operating system's.
pub(crate) fn fill(buf: &mut [u8]) -> FfiResult<()> {
    let f = FILL.load(Ordering::Acquire);
    if !f.is_null() {
        let ctx = CTX.load(Ordering::Acquire);
        // SAFETY: `f` was stored by `mqseal_set_random` from a non-NULL `mqseal_random_fn`, so it
        // is that function pointer (function and data pointers have the same size on every
        // target this crate supports).
        let f: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> c_int = unsafe {
            core::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> c_int,
            >(f)
        };
        if buf.is_empty() {
            return Ok(());
        }
        // SAFETY: the application registered `f` as a generator that writes exactly `len` bytes
        // into `buf`, which is valid and exclusively ours for that length.
        let status = unsafe { f(ctx, buf.as_mut_ptr(), buf.len()) };
        return if status == 0 {
            Ok(())
        } else {
            Err(mqseal_result::MQSEAL_ERR_RANDOMNESS)
        };
    }
    os_fill(buf)
}

#[cfg(feature = "std")]
fn os_fill(buf: &mut [u8]) -> FfiResult<()> {
    getrandom::fill(buf).map_err(|_| mqseal_result::MQSEAL_ERR_RANDOMNESS)
}

#[cfg(not(feature = "std"))]
fn os_fill(_buf: &mut [u8]) -> FfiResult<()> {
    Err(mqseal_result::MQSEAL_ERR_NO_RANDOM_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn counting(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int {
        // SAFETY: the test passes a pointer to a live u8 as ctx; `fill` passes a valid buffer.
        unsafe {
            let next = &mut *ctx.cast::<u8>();
            for i in 0..len {
                *buf.add(i) = *next;
                *next = next.wrapping_add(1);
            }
        }
        0
    }

    unsafe extern "C" fn failing(_ctx: *mut c_void, _buf: *mut u8, _len: usize) -> c_int {
        -1
    }

    /// One test (the generator is process-wide state; no other unit test of this crate draws
    /// randomness): registered, failing, unregistered.
    #[test]
    fn the_registered_generator_is_used_and_its_failure_reported() {
        let mut next = 7u8;
        mqseal_set_random(Some(counting), (&raw mut next).cast());
        let mut buf = [0u8; 4];
        assert_eq!(fill(&mut buf), Ok(()));
        assert_eq!(buf, [7, 8, 9, 10]);
        mqseal_set_random(Some(failing), core::ptr::null_mut());
        assert_eq!(fill(&mut buf), Err(mqseal_result::MQSEAL_ERR_RANDOMNESS));
        mqseal_set_random(None, core::ptr::null_mut());
        // std: the operating system's generator.
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        assert_eq!(fill(&mut a), Ok(()));
        assert_eq!(fill(&mut b), Ok(()));
        assert_ne!(a, b);
    }
}
