//! Grants: a tree key wrapped to one recipient (RFC 9180 HPKE) and signed by its issuer. Safe to
//! publish on the broker.

use alloc::vec::Vec;

use mqseal::{Grant, PublicIdentity};
use zeroize::Zeroizing;

use crate::identity::{MQSEAL_PUBLIC_IDENTITY_LEN, mqseal_identity, public_identity};
use crate::keys::mqseal_tree_key;
use crate::result::mqseal_result;
use crate::util::{FfiResult, Out, borrow, bytes, bytes_mut, copy_out, fixed, guard, into_handle};

/// Upper bound of a grant's length beyond its key's filter: a grant of a key whose filter is
/// `n` bytes long is at most `n + MQSEAL_GRANT_MAX_OVERHEAD` bytes.
pub const MQSEAL_GRANT_MAX_OVERHEAD: usize = 222;
/// Length of the random input keying material of `mqseal_grant_issue_with_ikm`.
pub const MQSEAL_GRANT_IKM_LEN: usize = 32;

/// Writes an encoded grant into a caller buffer.
fn write_grant(grant: &Grant, out: &mut [u8], out_len: Option<Out<'_, usize>>) -> FfiResult<()> {
    copy_out(grant.as_bytes(), out)?;
    if let Some(out_len) = out_len {
        out_len.write(grant.as_bytes().len());
    }
    Ok(())
}

/// The arguments both issue functions share, checked.
struct IssueArgs<'a> {
    issuer: &'a mqseal_identity,
    recipient: PublicIdentity,
    key: &'a mqseal_tree_key,
    out: &'a mut [u8],
    out_len: Out<'a, usize>,
}

/// # Safety
/// As the issue functions.
unsafe fn issue_args<'a>(
    issuer: *const mqseal_identity,
    recipient: *const u8,
    recipient_len: usize,
    key: *const mqseal_tree_key,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> FfiResult<IssueArgs<'a>> {
    // SAFETY: the caller guarantees `out_len` is valid for writing a size_t.
    let out_len = unsafe { Out::new(out_len) }?;
    // SAFETY: the caller guarantees `out` is valid for `out_cap` bytes.
    let out = unsafe { bytes_mut(out, out_cap) }?;
    // SAFETY: the caller guarantees `issuer` is a valid handle.
    let issuer = unsafe { borrow(issuer) }?;
    // SAFETY: the caller guarantees `key` is a valid handle.
    let key = unsafe { borrow(key) }?;
    // SAFETY: the caller guarantees `recipient` is valid for `recipient_len` bytes.
    let recipient = unsafe { public_identity(recipient, recipient_len) }?;
    Ok(IssueArgs {
        issuer,
        recipient,
        key,
        out,
        out_len,
    })
}

/// Issues a grant of `key` to the holder of the 64-byte public identity `recipient`, signed by
/// `issuer`, with fresh randomness from the generator registered with `mqseal_set_random`, else
/// (hosted builds) the operating system's (builds without `std` and no registered generator:
/// `MQSEAL_ERR_NO_RANDOM_SOURCE`; or use `mqseal_grant_issue_with_ikm`). The grant is written
/// into `out` (`out_cap` of at least the key's filter length + `MQSEAL_GRANT_MAX_OVERHEAD`
/// always suffices; a smaller buffer fails with `MQSEAL_ERR_BUFFER_TOO_SMALL`); `*out_len`
/// receives its length.
///
/// # Safety
/// `issuer` and `key` must be valid handles; `recipient` valid for reads of `recipient_len`
/// bytes; `out` valid for writes of `out_cap` bytes; `out_len` valid for writing a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_grant_issue(
    issuer: *const mqseal_identity,
    recipient: *const u8,
    recipient_len: usize,
    key: *const mqseal_tree_key,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: forwarded to the caller, who guarantees every pointer as documented.
        let a =
            unsafe { issue_args(issuer, recipient, recipient_len, key, out, out_cap, out_len) }?;
        let mut ikm = Zeroizing::new([0u8; MQSEAL_GRANT_IKM_LEN]);
        crate::random::fill(ikm.as_mut())?;
        let grant = Grant::issue_with_ikm(&a.issuer.inner, &a.recipient, &a.key.inner, &ikm)?;
        write_grant(&grant, a.out, Some(a.out_len))
    })
}

/// Like `mqseal_grant_issue`, with the HPKE ephemeral key derived from `ikm`
/// (`MQSEAL_GRANT_IKM_LEN` fresh random bytes): for callers that draw randomness themselves and
/// for test vectors. Never reuse `ikm`.
///
/// # Safety
/// As `mqseal_grant_issue`; `ikm` must be valid for reads of `ikm_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_grant_issue_with_ikm(
    issuer: *const mqseal_identity,
    recipient: *const u8,
    recipient_len: usize,
    key: *const mqseal_tree_key,
    ikm: *const u8,
    ikm_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: forwarded to the caller, who guarantees every pointer as documented.
        let a =
            unsafe { issue_args(issuer, recipient, recipient_len, key, out, out_cap, out_len) }?;
        // SAFETY: the caller guarantees `ikm` is valid for `ikm_len` bytes.
        let ikm = Zeroizing::new(*unsafe { fixed::<MQSEAL_GRANT_IKM_LEN>(ikm, ikm_len) }?);
        let grant = Grant::issue_with_ikm(&a.issuer.inner, &a.recipient, &a.key.inner, &ikm)?;
        write_grant(&grant, a.out, Some(a.out_len))
    })
}

/// Verifies and unwraps a grant received by `recipient`, trusting the issuers given as
/// `trusted_count` consecutive 64-byte public identities in `trusted_issuers`. On success `*out`
/// receives the key. Errors: `MQSEAL_ERR_GRANT_NOT_FOR_US`, `MQSEAL_ERR_UNTRUSTED_ISSUER`,
/// `MQSEAL_ERR_BAD_SIGNATURE`, `MQSEAL_ERR_AUTHENTICATION_FAILED`, `MQSEAL_ERR_MALFORMED`…
///
/// # Safety
/// `grant` must be valid for reads of `grant_len` bytes; `recipient` a valid handle;
/// `trusted_issuers` valid for reads of `trusted_count * MQSEAL_PUBLIC_IDENTITY_LEN` bytes;
/// `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_grant_accept(
    grant: *const u8,
    grant_len: usize,
    recipient: *const mqseal_identity,
    trusted_issuers: *const u8,
    trusted_count: usize,
    out: *mut *mut mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `grant` is valid for `grant_len` bytes.
        let grant = unsafe { bytes(grant, grant_len) }?;
        // SAFETY: the caller guarantees `recipient` is a valid handle.
        let recipient = unsafe { borrow(recipient) }?;
        let total = trusted_count
            .checked_mul(MQSEAL_PUBLIC_IDENTITY_LEN)
            .ok_or(mqseal_result::MQSEAL_ERR_INVALID_ARGUMENT)?;
        // SAFETY: the caller guarantees `trusted_issuers` is valid for `total` bytes.
        let trusted = unsafe { bytes(trusted_issuers, total) }?;
        let trusted = trusted
            .chunks_exact(MQSEAL_PUBLIC_IDENTITY_LEN)
            .map(PublicIdentity::from_slice)
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Grant::from_bytes(grant)?.accept(&recipient.inner, &trusted)?;
        out.write(into_handle(mqseal_tree_key { inner }));
        Ok(())
    })
}

/// Writes the fingerprint of the identity a grant is addressed to into `out`
/// (`out_len >= MQSEAL_FINGERPRINT_LEN`), without verifying the grant: to pick one's own grants.
///
/// # Safety
/// `grant` must be valid for reads of `grant_len` bytes; `out` valid for writes of `out_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_grant_recipient(
    grant: *const u8,
    grant_len: usize,
    out: *mut u8,
    out_len: usize,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for `out_len` bytes.
        let out = unsafe { bytes_mut(out, out_len) }?;
        // SAFETY: the caller guarantees `grant` is valid for `grant_len` bytes.
        let grant = unsafe { bytes(grant, grant_len) }?;
        copy_out(&Grant::from_bytes(grant)?.recipient().0, out)
    })
}
