//! # mqseal-ffi — the C API of mqseal
//!
//! Builds `libmqseal_ffi.a` and `libmqseal_ffi.so` with the header `include/mqseal.h` (generated
//! from this crate by cbindgen, committed, checked by `scripts/checks/60-c.sh`).
//!
//! Conventions (after rustls-ffi):
//! - Opaque handles (`mqseal_identity`, `mqseal_tree_key`, `mqseal_sealer`, `mqseal_opener`)
//!   made by `_new`/`_from_*`/`_generate` functions and released by `_free` (NULL is ignored;
//!   secrets are wiped). Functions that only read a handle take it `const`.
//! - Every fallible function returns an [`mqseal_result`]: `MQSEAL_OK` (0) or a code equal to
//!   the core's stable `Error::code()` (1–24), or a C-API code from 200 (NULL argument, invalid
//!   argument, panic). `mqseal_error_name` / `mqseal_error_text` describe any code.
//! - Every pointer is checked for NULL; out-parameters are written only on success.
//! - Every exported function runs behind a panic boundary (`catch_unwind`): a panic becomes
//!   `MQSEAL_ERR_PANIC`, never an unwind into C.
//! - `mqseal_seal` and `mqseal_open` work on caller-provided buffers with no heap allocation
//!   per message once a topic has been seen (`MQSEAL_MAX_OVERHEAD_SIGNED`,
//!   `mqseal_sealed_max_len`, `MQSEAL_SEALED_BUFFER_LEN` size the buffers).
//! - Key material loads from bytes: identities from 32-byte seeds, public identities as 64
//!   bytes, tree keys from filter + epoch + 32 bytes, grants from their encoding.
//! - Protocol v2 (`spec/mqseal-v2.md`): sealers take their first sequence number explicitly and
//!   draw an 8-byte salt per message from the registered generator (else, std, the OS), or
//!   from their own callback (`mqseal_sealer_new_with_random`); module [`random`].
//! - Builds without the default feature `std` (firmware: `thumbv7em-none-eabihf`,
//!   `riscv32imc-unknown-none-elf`, profile `firmware`) are `no_std`: panics abort through the
//!   firmware's hook (`mqseal_set_panic_hook`, src/panic.rs), the heap is the firmware's
//!   `malloc`/`free` or, with the feature `arena`, a static arena handed over once
//!   (`mqseal_heap_init`, src/heap.rs), randomness comes from its callback
//!   (`mqseal_set_random`, src/random.rs) and time is passed in. The header is the same; what such a build lacks returns a code.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;

// Declared in the order the header presents them (cbindgen follows it; the blank lines keep
// rustfmt from sorting them).
#[allow(unsafe_code)]
pub mod result;

#[allow(unsafe_code)]
pub mod identity;

#[allow(unsafe_code)]
pub mod keys;

#[allow(unsafe_code)]
pub mod random;

#[allow(unsafe_code)]
pub mod seal;

#[allow(unsafe_code)]
pub mod open;

#[allow(unsafe_code)]
pub mod grant;

#[allow(unsafe_code)]
pub mod panic;

#[allow(unsafe_code)]
pub mod reassembly;

#[allow(unsafe_code)]
pub mod heap;

#[allow(unsafe_code)]
mod util;

pub use grant::*;
pub use heap::*;
pub use identity::*;
pub use keys::*;
pub use open::*;
pub use panic::*;
pub use random::*;
pub use reassembly::*;
pub use result::*;
pub use seal::*;
