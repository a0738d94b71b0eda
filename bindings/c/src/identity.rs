//! `mqseal_identity` (a secret identity from a 32-byte seed) and 64-byte public identities.

use mqseal::{Identity, PublicIdentity};
use zeroize::Zeroizing;

use crate::result::mqseal_result;
use crate::util::{FfiResult, Out, borrow, bytes_mut, fixed, free_handle, guard, into_handle};

/// Length of an identity seed, the only secret an identity needs.
pub const MQSEAL_SEED_LEN: usize = 32;
/// Length of an encoded public identity: Ed25519 key, then X25519 key.
pub const MQSEAL_PUBLIC_IDENTITY_LEN: usize = 64;
/// Length of an identity fingerprint (SHA-256).
pub const MQSEAL_FINGERPRINT_LEN: usize = 32;

const _: () = assert!(MQSEAL_SEED_LEN == mqseal::SEED_LEN);
const _: () = assert!(MQSEAL_PUBLIC_IDENTITY_LEN == mqseal::PUBLIC_IDENTITY_LEN);

/// A participant's secret identity (Ed25519 signing key and X25519 agreement key, both derived
/// from a 32-byte seed). Opaque; create with `mqseal_identity_from_seed` or
/// `mqseal_identity_generate`, release with `mqseal_identity_free` (which wipes the secrets).
#[allow(non_camel_case_types)]
pub struct mqseal_identity {
    pub(crate) inner: Identity,
}

/// Parses a 64-byte public identity (NULL → `MQSEAL_ERR_NULL_ARGUMENT`, wrong length →
/// `MQSEAL_ERR_MALFORMED`, invalid or low-order key → `MQSEAL_ERR_INVALID_KEY`).
///
/// # Safety
/// As [`fixed`].
pub(crate) unsafe fn public_identity(ptr: *const u8, len: usize) -> FfiResult<PublicIdentity> {
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { fixed::<MQSEAL_PUBLIC_IDENTITY_LEN>(ptr, len) }?;
    Ok(PublicIdentity::from_bytes(bytes)?)
}

/// Creates the identity held in `seed` (`seed_len` must be `MQSEAL_SEED_LEN`, 32 uniformly random
/// bytes kept secret). On success `*out` receives a new handle.
///
/// # Safety
/// `seed` must be valid for reads of `seed_len` bytes; `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_from_seed(
    seed: *const u8,
    seed_len: usize,
    out: *mut *mut mqseal_identity,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `seed` is valid for `seed_len` bytes.
        let seed = Zeroizing::new(*unsafe { fixed::<MQSEAL_SEED_LEN>(seed, seed_len) }?);
        out.write(into_handle(mqseal_identity {
            inner: Identity::from_seed(*seed),
        }));
        Ok(())
    })
}

/// Creates a fresh random identity from the generator registered with `mqseal_set_random`, else
/// (hosted builds) the operating system's (`MQSEAL_ERR_RANDOMNESS` if it fails; builds without
/// `std` and no registered generator: `MQSEAL_ERR_NO_RANDOM_SOURCE`). Store its seed
/// (`mqseal_identity_seed`) to keep it.
///
/// # Safety
/// `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_generate(out: *mut *mut mqseal_identity) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        let mut seed = Zeroizing::new([0u8; MQSEAL_SEED_LEN]);
        crate::random::fill(seed.as_mut())?;
        out.write(into_handle(mqseal_identity {
            inner: Identity::from_seed(*seed),
        }));
        Ok(())
    })
}

/// Frees an identity and wipes its secrets. NULL is ignored.
///
/// # Safety
/// `identity` must be NULL or a handle from this library, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_free(identity: *mut mqseal_identity) {
    let _ = guard(|| {
        // SAFETY: the caller guarantees `identity` is NULL or a live handle freed once.
        unsafe { free_handle(identity) };
        Ok(())
    });
}

/// Writes the identity's 64-byte public identity (what peers trust) into `out`
/// (`out_len >= MQSEAL_PUBLIC_IDENTITY_LEN`).
///
/// # Safety
/// `identity` must be a valid handle; `out` must be valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_public(
    identity: *const mqseal_identity,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        crate::util::copy_out(&identity.inner.public().to_bytes(), out)
    })
}

/// Writes the identity's 32-byte fingerprint into `out` (`out_len >= MQSEAL_FINGERPRINT_LEN`).
///
/// # Safety
/// `identity` must be a valid handle; `out` must be valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_fingerprint(
    identity: *const mqseal_identity,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        crate::util::copy_out(&identity.inner.fingerprint().0, out)
    })
}

/// Writes the identity's 32-byte secret seed into `out` (`out_len >= MQSEAL_SEED_LEN`), e.g. to
/// store it. Keep it secret and wipe the buffer after use.
///
/// # Safety
/// `identity` must be a valid handle; `out` must be valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_identity_seed(
    identity: *const mqseal_identity,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `identity` is a valid handle.
        let identity = unsafe { borrow(identity) }?;
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        crate::util::copy_out(&*identity.inner.seed(), out)
    })
}

/// Checks a 64-byte public identity and writes its 32-byte fingerprint into `out`
/// (`MQSEAL_ERR_MALFORMED` for a wrong length, `MQSEAL_ERR_INVALID_KEY` for an invalid key).
///
/// # Safety
/// `public_identity_bytes` must be valid for reads of `public_identity_len` bytes; `out` must be valid
/// for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_public_identity_fingerprint(
    public_identity_bytes: *const u8,
    public_identity_len: usize,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        // SAFETY: the caller guarantees the input is valid for its length.
        let public = unsafe { public_identity(public_identity_bytes, public_identity_len) }?;
        crate::util::copy_out(&public.fingerprint().0, out)
    })
}
