//! The per-message path of the C API allocates nothing: after the first message on a topic
//! (which caches the topic key, and opens the replay window), `mqseal_seal` and `mqseal_open`
//! make zero heap allocations. Counted with a global allocator that tallies this thread's calls.
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

use mqseal_ffi::*;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // try_with: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn count_free() {
    let _ = FREES.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract, which System requires too.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract, which System requires too.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds GlobalAlloc's contract, which System requires too.
        unsafe { System.realloc(p, layout, new_size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        count_free();
        // SAFETY: the caller upholds GlobalAlloc's contract, which System requires too.
        unsafe { System.dealloc(p, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn frees() -> u64 {
    FREES.with(Cell::get)
}

fn ok(r: mqseal_result) {
    assert_eq!(r, mqseal_result::MQSEAL_OK);
}

/// Seals and opens `n` messages per topic after a warm-up message on each; returns the
/// allocations counted during the measured messages.
unsafe fn measure(profile: u32, n: u64) -> u64 {
    // SAFETY: every pointer passed below points to a live local of the right type and length, and
    // every handle is used only between its creation and its free.
    unsafe {
        let mut id = ptr::null_mut();
        ok(mqseal_identity_from_seed([7u8; 32].as_ptr(), 32, &mut id));
        let mut key = ptr::null_mut();
        ok(mqseal_tree_key_new(
            c"plant/#".as_ptr(),
            1,
            [9u8; 32].as_ptr(),
            32,
            &mut key,
        ));
        let mut public = [0u8; 64];
        ok(mqseal_identity_public(id, public.as_mut_ptr(), 64));
        let mut sealer = ptr::null_mut();
        ok(mqseal_sealer_new(id, profile, 0, &mut sealer));
        ok(mqseal_sealer_add_key(sealer, key));
        let mut opener = ptr::null_mut();
        ok(mqseal_opener_new(ptr::null(), &mut opener));
        // Trusted for signed and, on plant/#, for group-mac.
        ok(mqseal_opener_trust_group_mac_sender(
            opener,
            public.as_ptr(),
            64,
            c"plant/#".as_ptr(),
        ));
        ok(mqseal_opener_add_key(opener, key));

        let topics = [c"plant/7/temp", c"plant/7/pressure", c"plant/8/temp"];
        let payload = [0x42u8; 200];
        let mut sealed = [0u8; 200 + MQSEAL_MAX_OVERHEAD_SIGNED];
        let mut plain = [0u8; 200 + MQSEAL_MAX_OVERHEAD_SIGNED];
        let mut info = std::mem::MaybeUninit::<mqseal_opened>::uninit();
        let options = mqseal_seal_options {
            retain: false,
            has_timestamp: true,
            timestamp: 1_790_000_000,
        };
        let delivery = mqseal_delivery {
            retained: false,
            duplicate: false,
            has_now: true,
            now: 1_790_000_000,
        };
        let mut round = |topic: &std::ffi::CStr, len: usize| {
            let mut sealed_len = 0usize;
            ok(mqseal_seal(
                sealer,
                topic.as_ptr(),
                payload.as_ptr(),
                len,
                &options,
                sealed.as_mut_ptr(),
                sealed.len(),
                &mut sealed_len,
            ));
            ok(mqseal_open(
                opener,
                topic.as_ptr(),
                sealed.as_ptr(),
                sealed_len,
                &delivery,
                plain.as_mut_ptr(),
                plain.len(),
                info.as_mut_ptr(),
            ));
            assert_eq!(info.assume_init_ref().payload_len, len);
            assert_eq!(&plain[..len], &payload[..len]);
        };
        // Warm-up: the first message on each topic caches its key and opens its replay window.
        for topic in topics {
            round(topic, 10);
        }
        let before = allocations();
        for i in 0..n {
            for topic in topics {
                round(topic, (i as usize * 13) % payload.len());
            }
        }
        let counted = allocations() - before;

        // Refusals allocate nothing either (a replay, a wrong topic, a short buffer).
        let before_refusals = allocations();
        let mut sealed_len = 0usize;
        ok(mqseal_seal(
            sealer,
            topics[0].as_ptr(),
            payload.as_ptr(),
            10,
            ptr::null(),
            sealed.as_mut_ptr(),
            sealed.len(),
            &mut sealed_len,
        ));
        let plain_len = plain.len();
        let mut open = |topic: &std::ffi::CStr, cap: usize| {
            mqseal_open(
                opener,
                topic.as_ptr(),
                sealed.as_ptr(),
                sealed_len,
                ptr::null(),
                plain.as_mut_ptr(),
                cap,
                info.as_mut_ptr(),
            )
        };
        assert_eq!(
            open(topics[0], 4),
            mqseal_result::MQSEAL_ERR_BUFFER_TOO_SMALL
        );
        ok(open(topics[0], plain_len));
        assert_eq!(open(topics[0], plain_len), mqseal_result::MQSEAL_ERR_REPLAY);
        // Moved to another (known) topic: its key id names no key there, refused at the key
        // lookup, before any signature or AEAD work.
        assert_eq!(
            open(topics[1], plain_len),
            mqseal_result::MQSEAL_ERR_KEY_NOT_FOUND
        );
        let refusals = allocations() - before_refusals;
        assert_eq!(refusals, 0, "refusals allocated {refusals} times");

        // A forged ciphertext: group-mac fails the AEAD, a signed one fails Ed25519 verification
        // (mqseal's own, spec 7.6: no error value is boxed), neither allocating. Forged from a
        // fresh message: an accepted number is refused by the replay pre-check before any
        // signature or AEAD work.
        ok(mqseal_seal(
            sealer,
            topics[0].as_ptr(),
            payload.as_ptr(),
            10,
            ptr::null(),
            sealed.as_mut_ptr(),
            sealed.len(),
            &mut sealed_len,
        ));
        let (allocs_before, frees_before) = (allocations(), frees());
        let signed = profile == mqseal_profile::MQSEAL_PROFILE_SIGNED as u32;
        let ciphertext_byte = sealed_len - if signed { 81 } else { 17 };
        sealed[ciphertext_byte] ^= 1;
        assert_eq!(
            mqseal_open(
                opener,
                topics[0].as_ptr(),
                sealed.as_ptr(),
                sealed_len,
                ptr::null(),
                plain.as_mut_ptr(),
                plain_len,
                info.as_mut_ptr(),
            ),
            if signed {
                mqseal_result::MQSEAL_ERR_BAD_SIGNATURE
            } else {
                mqseal_result::MQSEAL_ERR_AUTHENTICATION_FAILED
            }
        );
        let forged = allocations() - allocs_before;
        let freed = frees() - frees_before;
        assert_eq!(forged, 0, "a forged refusal allocated {forged} times");
        assert_eq!(freed, 0, "a forged refusal freed {freed} times");

        mqseal_opener_free(opener);
        mqseal_sealer_free(sealer);
        mqseal_tree_key_free(key);
        mqseal_identity_free(id);
        counted
    }
}

#[test]
fn seal_and_open_allocate_nothing_per_message() {
    // The counter works: a Vec allocates.
    let before = allocations();
    drop(std::hint::black_box(vec![1u8; 16]));
    assert_eq!(allocations() - before, 1);

    for profile in [
        mqseal_profile::MQSEAL_PROFILE_SIGNED,
        mqseal_profile::MQSEAL_PROFILE_GROUP_MAC,
    ] {
        // SAFETY: every pointer passed is valid for the call (see `measure`).
        let counted = unsafe { measure(profile as u32, 100) };
        assert_eq!(
            counted, 0,
            "{profile:?}: 300 seal+open rounds allocated {counted} times"
        );
    }
}
