//! Randomness: the one place the C library gets random bytes from.
//!
//! - A firmware registers its hardware generator once with `mqseal_set_random`; hosted builds
//!   (feature `std`) fall back to the operating system's generator when none is registered.
//!   Every function that needs fresh randomness (`mqseal_identity_generate`,
//!   `mqseal_tree_key_generate`, `mqseal_grant_issue`, and each `mqseal_seal` of a sealer made
//!   with `mqseal_sealer_new`: an 8-byte salt per message) draws it through [`fill`]; the
//!   `_from_seed` and `_with_ikm` functions need none.
//! - `mqseal_sealer_new_with_random` gives one sealer its own generator ([`CallbackRandom`]).

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, Ordering};

use mqseal::{Error, RandomSource};

use crate::result::mqseal_result;
use crate::util::FfiResult;

/// A random generator supplied by the application: fills all `len` bytes at `buf` from a
/// cryptographically secure source and returns 0, or returns any other value if it cannot (the
/// call then fails with `MQSEAL_ERR_RANDOMNESS`; a seal spends no sequence number).
///
/// `ctx` is the pointer given with the generator, passed through untouched. Draw from a
/// generator whose state is not copied with the process or the device image: a hardware RNG
/// (TRNG peripheral, secure element) or the operating system's (`getrandom`) — never a seeded
/// software PRNG or a fixed value outside test vectors. The callback must not call mqseal
/// functions on the sealer it serves, and must not unwind or `longjmp` out.
#[allow(non_camel_case_types)]
pub type mqseal_random_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int>;

/// The registered generator (a `mqseal_random_fn` as a data pointer; NULL: none).
static FILL: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// Its context pointer.
static CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Registers the random generator mqseal uses for new identities, new keys and grants, and for
/// the per-message salts of every sealer made with `mqseal_sealer_new` (sealers made with
/// `mqseal_sealer_new_with_random` use their own), with the `ctx` pointer passed back to it;
/// `fill` NULL unregisters it.
///
/// Builds without `std` (firmware) have no other source: until one is registered, the functions
/// that need randomness, `mqseal_sealer_new` included, return `MQSEAL_ERR_NO_RANDOM_SOURCE`, and
/// `mqseal_seal` on a sealer of `mqseal_sealer_new` fails with `MQSEAL_ERR_RANDOMNESS` once the
/// generator is unregistered. Hosted builds use the operating system's generator when none is
/// registered. A generator that returns non-zero makes the call fail with
/// `MQSEAL_ERR_RANDOMNESS` (a seal spends no sequence number). Register it once at start-up,
/// before other threads or tasks use mqseal.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_set_random(fill: mqseal_random_fn, ctx: *mut c_void) {
    let fill = fill.map_or(core::ptr::null_mut(), |f| f as *mut c_void);
    // Unregister first, so that a reader that sees the new generator also sees its context. A
    // reader racing a re-registration could still pair the old generator with the new context:
    // hence "register once, before other threads use mqseal".
    FILL.store(core::ptr::null_mut(), Ordering::Release);
    CTX.store(ctx, Ordering::Release);
    FILL.store(fill, Ordering::Release);
}

/// Whether a generator is registered (firmware builds refuse to make sealers without one).
pub(crate) fn registered() -> bool {
    !FILL.load(Ordering::Acquire).is_null()
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

/// The caller's `mqseal_random_fn` and its context, as the core's [`RandomSource`].
pub(crate) struct CallbackRandom {
    fill: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int,
    ctx: *mut c_void,
}

impl CallbackRandom {
    /// Wraps `fill` and `ctx`.
    ///
    /// # Safety
    /// For as long as the wrapper lives, `fill` must be safe to call with `ctx` and any buffer
    /// of the given length, from whichever thread the sealer owning the wrapper is used on
    /// (the contract of `mqseal_sealer_new_with_random`).
    pub(crate) unsafe fn new(
        fill: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int,
        ctx: *mut c_void,
    ) -> CallbackRandom {
        CallbackRandom { fill, ctx }
    }
}

// SAFETY: the wrapper only passes `ctx` back to `fill`, never dereferences it. The caller of
// `mqseal_sealer_new_with_random` guarantees that `fill` may be called with `ctx` from any
// thread the sealer is used on (a sealer may be handed to another thread, never used by two at
// once: handles are not thread-safe), for the sealer's whole lifetime.
unsafe impl Send for CallbackRandom {}

impl RandomSource for CallbackRandom {
    fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call;
        // calling `fill` with `ctx` is allowed by the contract accepted in `CallbackRandom::new`.
        let rc = unsafe { (self.fill)(self.ctx, buf.as_mut_ptr(), buf.len()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::Randomness)
        }
    }
}

/// The registered generator (else, std, the OS) as the core's [`RandomSource`]: what sealers
/// made with `mqseal_sealer_new` draw their salts from, at each seal (so registering another
/// generator later changes theirs too). Any failure, including "no generator" in builds without
/// `std`, is the core's `Error::Randomness` (`MQSEAL_ERR_RANDOMNESS`).
pub(crate) struct RegisteredRandom;

impl RandomSource for RegisteredRandom {
    fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
        fill(buf).map_err(|_| Error::Randomness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn counting_up(ctx: *mut c_void, buf: *mut u8, len: usize) -> c_int {
        // SAFETY: the test passes a pointer to a live u8 counter as ctx, and `buf` is valid for
        // `len` bytes (the wrapper's contract).
        unsafe {
            let next = &mut *ctx.cast::<u8>();
            for i in 0..len {
                *next = next.wrapping_add(1);
                *buf.add(i) = *next;
            }
        }
        0
    }

    #[test]
    fn the_callback_fills_the_buffer_or_reports_randomness() {
        let mut counter = 0u8;
        // SAFETY: `counting_up` only touches the counter, which outlives the wrapper.
        let mut ok = unsafe { CallbackRandom::new(counting_up, (&raw mut counter).cast()) };
        let mut buf = [0u8; 8];
        assert_eq!(ok.fill(&mut buf), Ok(()));
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        // SAFETY: `failing` touches nothing.
        let mut bad = unsafe { CallbackRandom::new(failing, core::ptr::null_mut()) };
        assert_eq!(bad.fill(&mut buf), Err(Error::Randomness));
    }

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
