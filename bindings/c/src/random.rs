//! `mqseal_random_fn`: a random generator provided by the caller (a firmware's hardware RNG) as
//! the core's [`RandomSource`], for `mqseal_sealer_new_with_random`.
//!
//! Everything the C API needs for caller-provided randomness is here: the callback type and the
//! one wrapper that calls it.

use core::ffi::c_void;

use mqseal::{Error, RandomSource};

/// A cryptographically secure random generator provided by the caller: fills all `len` bytes at
/// `buf` with fresh random bytes and returns 0, or returns any other value if it cannot (sealing
/// then fails with `MQSEAL_ERR_RANDOMNESS` and spends no sequence number).
///
/// `ctx` is the pointer given to `mqseal_sealer_new_with_random`, passed through untouched.
/// Draw from a generator whose state is not copied with the process or the device image: a
/// hardware RNG (TRNG peripheral, secure element) or the operating system's (`getrandom`) —
/// never a seeded software PRNG or a fixed value outside test vectors. The callback must not
/// call mqseal functions on the sealer it belongs to, and must not unwind or `longjmp` out.
#[allow(non_camel_case_types)]
pub type mqseal_random_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> i32>;

/// The caller's `mqseal_random_fn` and its context, as the core's [`RandomSource`].
pub(crate) struct CallbackRandom {
    fill: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> i32,
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
        fill: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> i32,
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

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn counting(ctx: *mut c_void, buf: *mut u8, len: usize) -> i32 {
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

    unsafe extern "C" fn failing(_ctx: *mut c_void, _buf: *mut u8, _len: usize) -> i32 {
        -1
    }

    #[test]
    fn the_callback_fills_the_buffer_or_reports_randomness() {
        let mut counter = 0u8;
        // SAFETY: `counting` only touches the counter, which outlives the wrapper.
        let mut ok = unsafe { CallbackRandom::new(counting, (&raw mut counter).cast()) };
        let mut buf = [0u8; 8];
        assert_eq!(ok.fill(&mut buf), Ok(()));
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        // SAFETY: `failing` touches nothing.
        let mut bad = unsafe { CallbackRandom::new(failing, core::ptr::null_mut()) };
        assert_eq!(bad.fill(&mut buf), Err(Error::Randomness));
    }
}
