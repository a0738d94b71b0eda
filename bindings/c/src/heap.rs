//! The heap: the firmware's `malloc`/`free`, or a static arena it hands over once.
//!
//! Every build exports the functions of this module, so that one `mqseal.h` links against every
//! library; what a build does not have returns `MQSEAL_ERR_UNSUPPORTED`:
//!
//! | build | heap | `mqseal_heap_init`, `mqseal_heap_usage`, `mqseal_set_critical_section` |
//! |---|---|---|
//! | hosted (`std`, the default) | the system allocator | `MQSEAL_ERR_UNSUPPORTED` |
//! | firmware (`--no-default-features`) | the firmware's `malloc`/`realloc`/`free` (src/panic.rs) | `MQSEAL_ERR_UNSUPPORTED` |
//! | firmware with feature `arena` | the arena handed over with `mqseal_heap_init` | available |
//!
//! The arena allocator is `embedded-alloc`'s `LlffHeap` (the rust-embedded working group's
//! linked-list first-fit heap over `linked_list_allocator`), chosen over `talc` because it
//! locks through the `critical-section` crate: a firmware's critical section (interrupts off
//! on bare metal, `taskENTER_CRITICAL` on FreeRTOS, `irq_lock` on Zephyr) is the right lock
//! for an allocator shared by tasks and interrupt handlers on one core, where a spin lock (what
//! `talc` offers without an OS) deadlocks as soon as an interrupt or a higher-priority task
//! spins on a lock that the code it preempted holds. The crate's implementation functions have
//! Rust ABI, so mqseal provides the implementation here (`critical_section::set_impl!`) and
//! forwards it to the C hooks registered with `mqseal_set_critical_section`; without hooks it
//! is a no-op, which is correct only while no interrupt handler or other task can call mqseal
//! while one call is running (single-core firmware that uses mqseal from one context).
//!
//! Before `mqseal_heap_init` the arena is empty: every allocation fails, and an allocation
//! failure is a panic (Rust's `no_std` allocation-error handler), i.e. the panic hook and a
//! halt (src/panic.rs). So hand the arena over at start-up, before any other mqseal call.

use crate::result::mqseal_result;

/// The smallest arena `mqseal_heap_init` accepts, in bytes (a smaller one gives
/// `MQSEAL_ERR_INVALID_ARGUMENT`). Real use needs far more: about 10 KiB for one sealer and one
/// opener with 8 senders' replay windows (bindings/c/README.md, "Budget").
pub const MQSEAL_HEAP_MIN_LEN: usize = 256;

/// Enters a critical section of the firmware (builds with the feature `arena`): e.g. saves
/// the interrupt mask and disables interrupts, `taskENTER_CRITICAL_FROM_ISR()` (FreeRTOS) or
/// `irq_lock()` (Zephyr), and returns the state that `mqseal_critical_exit_fn` restores.
/// Sections nest: an enter inside a section must work and its exit must restore the state
/// it returned. It must not call mqseal.
#[allow(non_camel_case_types)]
pub type mqseal_critical_enter_fn = Option<unsafe extern "C" fn() -> u32>;

/// Leaves the critical section entered by the matching `mqseal_critical_enter_fn`, restoring
/// the `state` it returned (e.g. `irq_unlock(state)`).
#[allow(non_camel_case_types)]
pub type mqseal_critical_exit_fn = Option<unsafe extern "C" fn(state: u32)>;

/// Hands the firmware's static arena (`len` bytes at `arena`, any alignment) to mqseal as its
/// heap, once, at start-up, before any other mqseal call that allocates (until then every
/// allocation fails, which is a panic: the panic hook, then a halt). mqseal owns the arena from
/// then on: never touch, free or reuse it.
///
/// Builds with the feature `arena` (firmware, `--no-default-features --features arena`):
/// `MQSEAL_ERR_NULL_ARGUMENT` for a NULL `arena`, `MQSEAL_ERR_INVALID_ARGUMENT` if `len` is
/// below `MQSEAL_HEAP_MIN_LEN` or the arena would wrap around the address space,
/// `MQSEAL_ERR_ALREADY_INITIALIZED` for every call after the first successful one (the arena
/// stays the first one). Every other build (hosted, or firmware over `malloc`):
/// `MQSEAL_ERR_UNSUPPORTED`, and the arena is not used.
///
/// # Safety
/// `arena` must be NULL or valid for reads and writes of `len` bytes for the rest of the
/// program (a `static` buffer), used by nothing else.
#[unsafe(no_mangle)]
#[cfg_attr(
    not(all(feature = "arena", not(feature = "std"))),
    allow(unused_variables)
)]
pub unsafe extern "C" fn mqseal_heap_init(
    arena: *mut core::ffi::c_void,
    len: usize,
) -> mqseal_result {
    #[cfg(all(feature = "arena", not(feature = "std")))]
    {
        // SAFETY: forwarded from the caller: `arena` is NULL or valid for `len` bytes forever.
        unsafe { arena_heap::init(arena, len) }
    }
    #[cfg(not(all(feature = "arena", not(feature = "std"))))]
    {
        mqseal_result::MQSEAL_ERR_UNSUPPORTED
    }
}

/// Writes the bytes of the arena in use now into `*used` and the most that was ever in use
/// since `mqseal_heap_init` (the high-water mark, to size the arena) into `*peak`; both are 0
/// before `mqseal_heap_init`. Counts what the allocator hands out, rounded up to its minimum
/// block (8 bytes on 32-bit targets) and alignment; the allocator's own bookkeeping lives in
/// the free blocks.
///
/// Builds with the feature `arena`: `MQSEAL_ERR_NULL_ARGUMENT` if `used` or `peak` is NULL.
/// Every other build: `MQSEAL_ERR_UNSUPPORTED` (nothing written; measure `malloc` instead).
///
/// # Safety
/// `used` and `peak` must be NULL or valid for writing a `size_t`.
#[unsafe(no_mangle)]
#[cfg_attr(
    not(all(feature = "arena", not(feature = "std"))),
    allow(unused_variables)
)]
pub unsafe extern "C" fn mqseal_heap_usage(used: *mut usize, peak: *mut usize) -> mqseal_result {
    #[cfg(all(feature = "arena", not(feature = "std")))]
    {
        crate::util::guard(|| {
            // SAFETY: the caller guarantees each pointer is NULL or valid for a write.
            let used = unsafe { crate::util::Out::new(used) }?;
            // SAFETY: as above.
            let peak = unsafe { crate::util::Out::new(peak) }?;
            let (now, high) = arena_heap::usage();
            used.write(now);
            peak.write(high);
            Ok(())
        })
    }
    #[cfg(not(all(feature = "arena", not(feature = "std"))))]
    {
        mqseal_result::MQSEAL_ERR_UNSUPPORTED
    }
}

/// Registers the firmware's critical section, which the arena allocator holds while it
/// changes its free list (builds with the feature `arena`): `enter` and `exit` both set, or
/// both NULL for none (the default: no locking, correct only while no interrupt handler or
/// other task calls mqseal while a call is running). Register it at start-up, before
/// `mqseal_heap_init`; afterwards the lock in use cannot change: `MQSEAL_ERR_ALREADY_INITIALIZED`.
/// One of the two NULL and the other not: `MQSEAL_ERR_NULL_ARGUMENT`. Every other build (hosted,
/// or firmware over `malloc`, whose `malloc` does its own locking): `MQSEAL_ERR_UNSUPPORTED`.
#[unsafe(no_mangle)]
#[cfg_attr(
    not(all(feature = "arena", not(feature = "std"))),
    allow(unused_variables)
)]
pub extern "C" fn mqseal_set_critical_section(
    enter: mqseal_critical_enter_fn,
    exit: mqseal_critical_exit_fn,
) -> mqseal_result {
    #[cfg(all(feature = "arena", not(feature = "std")))]
    {
        arena_heap::set_critical_section(enter, exit)
    }
    #[cfg(not(all(feature = "arena", not(feature = "std"))))]
    {
        mqseal_result::MQSEAL_ERR_UNSUPPORTED
    }
}

/// The global allocator of firmware builds with the feature `arena`.
#[cfg(all(feature = "arena", not(feature = "std")))]
mod arena_heap {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::Cell;
    use core::ffi::c_void;
    use core::sync::atomic::{AtomicPtr, Ordering};

    use critical_section::{Mutex, RawRestoreState};
    use embedded_alloc::LlffHeap;

    use super::{MQSEAL_HEAP_MIN_LEN, mqseal_critical_enter_fn, mqseal_critical_exit_fn};
    use crate::result::mqseal_result;

    /// embedded-alloc's heap, with the high-water mark and whether the arena was handed over.
    struct ArenaHeap {
        heap: LlffHeap,
        /// (handed over, peak bytes in use), changed only inside a critical section (the
        /// riscv32imc target has no atomic read-modify-write).
        state: Mutex<Cell<(bool, usize)>>,
    }

    #[global_allocator]
    static HEAP: ArenaHeap = ArenaHeap {
        heap: LlffHeap::empty(),
        state: Mutex::new(Cell::new((false, 0))),
    };

    impl ArenaHeap {
        /// Raises the high-water mark to what is in use now.
        fn note_peak(&self) {
            critical_section::with(|cs| {
                let cell = self.state.borrow(cs);
                let (handed_over, peak) = cell.get();
                let used = self.heap.used();
                if used > peak {
                    cell.set((handed_over, used));
                }
            });
        }
    }

    // SAFETY: every method forwards to embedded-alloc's LlffHeap, a GlobalAlloc itself, with
    // the arguments it was given (its contract is ours); before `init` it has no memory and
    // returns NULL for every allocation (an allocation failure).
    unsafe impl GlobalAlloc for ArenaHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded: `layout` has a non-zero size (GlobalAlloc's contract).
            let ptr = unsafe { self.heap.alloc(layout) };
            if !ptr.is_null() {
                self.note_peak();
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded: `ptr` was allocated by this allocator with `layout`.
            unsafe { self.heap.dealloc(ptr, layout) }
        }
    }

    /// `mqseal_heap_init`.
    ///
    /// # Safety
    /// `arena` is NULL or valid for reads and writes of `len` bytes for the rest of the
    /// program, used by nothing else.
    pub(super) unsafe fn init(arena: *mut c_void, len: usize) -> mqseal_result {
        if arena.is_null() {
            return mqseal_result::MQSEAL_ERR_NULL_ARGUMENT;
        }
        if len < MQSEAL_HEAP_MIN_LEN || (arena as usize).checked_add(len).is_none() {
            return mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT;
        }
        // Claimed inside a critical section, so that two racing calls cannot both initialise.
        let first = critical_section::with(|cs| {
            let cell = HEAP.state.borrow(cs);
            let (handed_over, peak) = cell.get();
            cell.set((true, peak));
            !handed_over
        });
        if !first {
            return mqseal_result::MQSEAL_ERR_ALREADY_INITIALIZED;
        }
        // SAFETY: the caller hands over `len` bytes at `arena` for good (checked non-NULL, at
        // least MQSEAL_HEAP_MIN_LEN, which exceeds the list's minimum of 3 words, and not
        // wrapping); `first` makes this the only call of `init` (LlffHeap::init asserts once).
        unsafe { HEAP.heap.init(arena as usize, len) };
        mqseal_result::MQSEAL_OK
    }

    /// (bytes in use, high-water mark).
    pub(super) fn usage() -> (usize, usize) {
        let used = HEAP.heap.used();
        let peak = critical_section::with(|cs| HEAP.state.borrow(cs).get().1);
        (used, peak.max(used))
    }

    /// Whether `mqseal_heap_init` succeeded.
    fn handed_over() -> bool {
        critical_section::with(|cs| HEAP.state.borrow(cs).get().0)
    }

    /// The registered hooks (function pointers as data pointers; NULL: none).
    static ENTER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
    static EXIT: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    /// `mqseal_set_critical_section`.
    pub(super) fn set_critical_section(
        enter: mqseal_critical_enter_fn,
        exit: mqseal_critical_exit_fn,
    ) -> mqseal_result {
        if enter.is_some() != exit.is_some() {
            return mqseal_result::MQSEAL_ERR_NULL_ARGUMENT;
        }
        if handed_over() {
            return mqseal_result::MQSEAL_ERR_ALREADY_INITIALIZED;
        }
        // Unregister `enter` first and register it last, so that a section entered with the
        // new `enter` is left with the new `exit` (registration is meant for start-up anyway).
        ENTER.store(core::ptr::null_mut(), Ordering::Release);
        EXIT.store(
            exit.map_or(core::ptr::null_mut(), |f| f as *mut ()),
            Ordering::Release,
        );
        ENTER.store(
            enter.map_or(core::ptr::null_mut(), |f| f as *mut ()),
            Ordering::Release,
        );
        mqseal_result::MQSEAL_OK
    }

    /// The implementation of the `critical-section` crate: the firmware's hooks, or nothing.
    struct FirmwareCriticalSection;
    critical_section::set_impl!(FirmwareCriticalSection);

    // SAFETY: `acquire` enters the firmware's critical section (or, without hooks, nothing:
    // the documented single-context contract of mqseal_set_critical_section) and `release`
    // leaves it with the state `acquire` returned; the hooks were registered as a matching
    // pair that nests (the contract of mqseal_critical_enter_fn), before any section could be
    // open (mqseal_set_critical_section: at start-up, refused once the arena is in use).
    unsafe impl critical_section::Impl for FirmwareCriticalSection {
        unsafe fn acquire() -> RawRestoreState {
            let f = ENTER.load(Ordering::Acquire);
            if f.is_null() {
                return 0;
            }
            // SAFETY: a non-NULL value was stored by `set_critical_section` from a
            // `mqseal_critical_enter_fn` function pointer (function and data pointers have the
            // same size on every supported target).
            let enter =
                unsafe { core::mem::transmute::<*mut (), unsafe extern "C" fn() -> u32>(f) };
            // SAFETY: the firmware registered `enter` as its critical-section entry.
            unsafe { enter() }
        }

        unsafe fn release(state: RawRestoreState) {
            let f = EXIT.load(Ordering::Acquire);
            if f.is_null() {
                return;
            }
            // SAFETY: a non-NULL value was stored by `set_critical_section` from a
            // `mqseal_critical_exit_fn` function pointer (same size as a data pointer).
            let exit = unsafe { core::mem::transmute::<*mut (), unsafe extern "C" fn(u32)>(f) };
            // SAFETY: `state` is what the registered `enter` returned for this section.
            unsafe { exit(state) }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    unsafe extern "C" fn enter() -> u32 {
        0
    }

    unsafe extern "C" fn exit(_state: u32) {}

    #[test]
    fn hosted_builds_have_no_arena_and_say_so() {
        let mut arena = [0u8; MQSEAL_HEAP_MIN_LEN];
        let (mut used, mut peak) = (7usize, 7usize);
        // SAFETY: `arena` is valid for its length (and not used by a hosted build).
        let rc = unsafe { mqseal_heap_init(arena.as_mut_ptr().cast(), arena.len()) };
        assert_eq!(rc, mqseal_result::MQSEAL_ERR_UNSUPPORTED);
        // SAFETY: both pointers are valid for a write.
        let rc = unsafe { mqseal_heap_usage(&mut used, &mut peak) };
        assert_eq!(rc, mqseal_result::MQSEAL_ERR_UNSUPPORTED);
        assert_eq!((used, peak), (7, 7), "nothing written");
        assert_eq!(
            mqseal_set_critical_section(Some(enter), Some(exit)),
            mqseal_result::MQSEAL_ERR_UNSUPPORTED
        );
        assert_eq!(
            mqseal_result::MQSEAL_ERR_UNSUPPORTED.name().to_str().ok(),
            Some("unsupported")
        );
        assert_eq!(
            mqseal_result::MQSEAL_ERR_ALREADY_INITIALIZED
                .name()
                .to_str()
                .ok(),
            Some("already_initialized")
        );
    }
}
