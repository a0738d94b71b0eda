//! Panics and memory of builds without `std` (firmware), and the panic hook both builds export.
//!
//! - Hosted builds (`std`) catch panics at the API boundary: the call returns `MQSEAL_ERR_PANIC`.
//! - Without `std` a panic cannot unwind (`panic = "abort"`): the `#[panic_handler]` below
//!   formats the message into a stack buffer, hands it to the hook the firmware registered with
//!   `mqseal_set_panic_hook` (log it, reset the device), and halts if the hook returns.
//! - Without `std` the heap is the firmware's: the global allocator forwards to its C `malloc`,
//!   `realloc` and `free` (newlib, picolibc, ESP-IDF, Zephyr's libc, or the firmware's own
//!   definitions of those three, e.g. over an RTOS heap), or, with the feature `arena`, a static
//!   arena the firmware hands over once (src/heap.rs).

use core::ffi::c_char;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A function mqseal calls when it panics (a bug) in a build without `std`, with the panic
/// message (`msg`, `len` bytes, not NUL-terminated, valid only during the call). It should log
/// and reset the device; if it returns, mqseal halts in an endless loop.
#[allow(non_camel_case_types)]
pub type mqseal_panic_fn = Option<unsafe extern "C" fn(msg: *const c_char, len: usize)>;

/// The registered hook (a `mqseal_panic_fn` as a data pointer; NULL: none).
static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Registers the function called when mqseal panics in a build without `std` (firmware; NULL:
/// none). A panic is a bug in mqseal and never unwinds: the hook gets the message, then mqseal
/// halts if the hook returns. Hosted builds (with `std`) never call it: there a panic makes the
/// call return `MQSEAL_ERR_PANIC`.
#[unsafe(no_mangle)]
pub extern "C" fn mqseal_set_panic_hook(hook: mqseal_panic_fn) {
    HOOK.store(
        hook.map_or(core::ptr::null_mut(), |f| f as *mut ()),
        Ordering::Release,
    );
}

/// The registered hook, if any.
#[cfg_attr(feature = "std", allow(dead_code))]
fn hook() -> mqseal_panic_fn {
    let f = HOOK.load(Ordering::Acquire);
    if f.is_null() {
        return None;
    }
    // SAFETY: a non-NULL value was stored by `mqseal_set_panic_hook` from a `mqseal_panic_fn`
    // function pointer (function and data pointers have the same size on supported targets).
    Some(unsafe { core::mem::transmute::<*mut (), unsafe extern "C" fn(*const c_char, usize)>(f) })
}

/// A `fmt::Write` into a fixed buffer that drops what does not fit.
#[cfg_attr(feature = "std", allow(dead_code))]
struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Formats the panic for the hook: "mqseal panicked at FILE:LINE: MESSAGE", truncated to `buf`.
#[cfg_attr(feature = "std", allow(dead_code))]
fn describe(info: &core::panic::PanicInfo<'_>, buf: &mut [u8]) -> usize {
    use core::fmt::Write;
    let mut w = Truncating { buf, len: 0 };
    let _ = w.write_str("mqseal panicked");
    if let Some(location) = info.location() {
        let _ = write!(w, " at {}:{}", location.file(), location.line());
    }
    let _ = write!(w, ": {}", info.message());
    w.len
}

#[cfg(not(feature = "std"))]
#[panic_handler]
fn on_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut buf = [0u8; 160];
    let len = describe(info, &mut buf);
    if let Some(hook) = hook() {
        // SAFETY: the firmware registered `hook` as a function taking a message pointer and its
        // length; `buf` holds `len` initialised bytes for the duration of the call.
        unsafe { hook(buf.as_ptr().cast::<c_char>(), len) };
    }
    loop {
        core::hint::spin_loop();
    }
}

/// The global allocator of builds without `std` (and without the feature `arena`, src/heap.rs):
/// the firmware's C `malloc`/`realloc`/`free`.
#[cfg(all(not(feature = "std"), not(feature = "arena")))]
mod firmware_heap {
    use core::alloc::{GlobalAlloc, Layout};
    use core::ffi::c_void;

    /// The alignment C's `malloc` guarantees on the supported targets (that of `max_align_t`,
    /// 8 bytes on 32-bit Arm and RISC-V). mqseal never asks for more; a larger request fails
    /// (a null pointer, reported by Rust as an allocation failure, i.e. a panic).
    const MALLOC_ALIGN: usize = 8;

    unsafe extern "C" {
        fn malloc(size: usize) -> *mut c_void;
        fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
        fn free(ptr: *mut c_void);
    }

    /// Forwards to the firmware's `malloc`, `realloc` and `free`.
    struct FirmwareMalloc;

    // SAFETY: C's malloc/realloc return NULL or a block of at least `size` bytes aligned to
    // MALLOC_ALIGN, which serves every layout with align <= MALLOC_ALIGN; larger alignments get
    // NULL (an allocation failure). `free`/`realloc` receive only pointers from malloc/realloc.
    unsafe impl GlobalAlloc for FirmwareMalloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.align() > MALLOC_ALIGN {
                return core::ptr::null_mut();
            }
            // SAFETY: `layout.size()` is non-zero (GlobalAlloc contract); malloc has no other
            // precondition.
            unsafe { malloc(layout.size()) }.cast()
        }

        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            // SAFETY: `ptr` came from `alloc` or `realloc` above, i.e. from malloc/realloc.
            unsafe { free(ptr.cast()) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if layout.align() > MALLOC_ALIGN {
                return core::ptr::null_mut();
            }
            // SAFETY: `ptr` came from malloc/realloc (alloc above); on failure realloc leaves the
            // old block intact, as GlobalAlloc::realloc requires.
            unsafe { realloc(ptr.cast(), new_size) }.cast()
        }
    }

    #[global_allocator]
    static HEAP: FirmwareMalloc = FirmwareMalloc;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truncating_writer_keeps_what_fits() {
        use core::fmt::Write;
        let mut buf = [0u8; 8];
        let mut w = Truncating {
            buf: &mut buf,
            len: 0,
        };
        let word = "abcdef";
        let _ = write!(w, "{word}-{}", 1234);
        assert_eq!(w.len, 8);
        assert_eq!(&buf, b"abcdef-1");
    }

    unsafe extern "C" fn ignore(_msg: *const c_char, _len: usize) {}

    #[test]
    fn a_hook_is_registered_and_unregistered() {
        mqseal_set_panic_hook(Some(ignore));
        assert!(hook().is_some());
        mqseal_set_panic_hook(None);
        assert!(hook().is_none());
    }
}
