//! Grants: a tree key wrapped to one recipient (RFC 9180 HPKE) and signed by its issuer. Safe to
//! publish on the broker.

use alloc::vec::Vec;
use core::ffi::c_char;

use mqseal::{Grant, Issuer, PublicIdentity};
use zeroize::Zeroizing;

use crate::identity::{MQSEAL_PUBLIC_IDENTITY_LEN, mqseal_identity, public_identity};
use crate::keys::{filter_str, mqseal_tree_key};
use crate::result::mqseal_result;
use crate::util::{
    FfiResult, Out, array, borrow, bytes, bytes_mut, copy_out, fixed, guard, into_handle,
};

/// Upper bound of a grant's length beyond its key's filter: a grant of a key whose filter is
/// `n` bytes long is at most `n + MQSEAL_GRANT_MAX_OVERHEAD` bytes (version, issuer, recipient
/// and `enc`: 97; the ciphertext length: at most 5; the body around the filter: epoch 5, filter
/// length 3, secret 32, validity 10 + 10; the HPKE tag 16; the signature 64).
pub const MQSEAL_GRANT_MAX_OVERHEAD: usize = 242;
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
/// `trusted_count` consecutive 64-byte public identities in `trusted_issuers`, each for the
/// whole tree (administrators; to trust an issuer for part of the tree only,
/// `mqseal_grant_accept_scoped`). On success `*out` receives the key. Errors, in the order of
/// the checks: `MQSEAL_ERR_MALFORMED` / `_UNSUPPORTED_VERSION` (the grant's encoding),
/// `_GRANT_NOT_FOR_US`, `_UNTRUSTED_ISSUER`, `_BAD_SIGNATURE`, `_INVALID_KEY`,
/// `_AUTHENTICATION_FAILED`, `_MALFORMED` (the body), `_INVALID_FILTER`.
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

/// An issuer trusted by `mqseal_grant_accept_scoped`, with the part of the topic tree it may
/// grant keys for. The struct and everything it points to are only read during the call (the
/// caller keeps ownership; nothing is retained).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mqseal_issuer {
    /// The issuer's public identity: `MQSEAL_PUBLIC_IDENTITY_LEN` (64) bytes.
    pub public_identity: *const u8,
    /// `scope_count` NUL-terminated UTF-8 key filters (`#`, `prefix/#` or an exact topic): the
    /// issuer may grant a key whose filter lies inside one of them (`lab/#` admits `lab/#`,
    /// `lab`, `lab/7/#` and `lab/7/temp`; an exact topic admits only itself; `#` the whole
    /// tree). May be NULL when `scope_count` is 0.
    pub scope: *const *const c_char,
    /// The number of filters in `scope`; 0 trusts the issuer for nothing (its grants are
    /// refused `MQSEAL_ERR_OUT_OF_SCOPE`).
    pub scope_count: usize,
}

/// Reads one `mqseal_issuer` into the core's `Issuer`.
///
/// # Safety
/// As `mqseal_grant_accept_scoped` for one element of `issuers`.
unsafe fn issuer(i: &mqseal_issuer) -> FfiResult<Issuer> {
    // SAFETY: the caller guarantees `public_identity` is valid for MQSEAL_PUBLIC_IDENTITY_LEN
    // bytes.
    let identity = unsafe { public_identity(i.public_identity, MQSEAL_PUBLIC_IDENTITY_LEN) }?;
    // SAFETY: the caller guarantees `scope` is NULL with a count of 0, or points to
    // `scope_count` string pointers.
    let pointers = unsafe { array(i.scope, i.scope_count) }?;
    let filters = pointers
        .iter()
        // SAFETY: the caller guarantees each pointer is a NUL-terminated string.
        .map(|f| unsafe { filter_str(*f) })
        .collect::<FfiResult<Vec<&str>>>()?;
    Ok(Issuer::new(identity, &filters)?)
}

/// Verifies and unwraps a grant received by `recipient`, trusting the `issuer_count` issuers
/// in `issuers`, each only for its scope (`mqseal_issuer`): so an issuer that manages `lab/#`
/// cannot hand out an exact `plant/7/temp` key (which sealers would prefer over the real
/// `plant/#` key), nor rotate or pre-empt keys outside `lab/#`. On success `*out` receives the
/// key. Errors: first the arguments (`MQSEAL_ERR_NULL_ARGUMENT`, `_INVALID_ARGUMENT` for a
/// misaligned or oversized array, `_INVALID_KEY` for an issuer's public identity,
/// `_INVALID_FILTER` for a scope filter), then as
/// `mqseal_grant_accept` (`_GRANT_NOT_FOR_US`, `_UNTRUSTED_ISSUER`, `_BAD_SIGNATURE`, …,
/// `_INVALID_FILTER`), and last `MQSEAL_ERR_OUT_OF_SCOPE`: the grant is authentic but its
/// key's filter lies outside its issuer's scope.
///
/// # Safety
/// `grant` must be valid for reads of `grant_len` bytes; `recipient` a valid handle; `issuers`
/// NULL with `issuer_count` 0, or valid for reads of `issuer_count` `mqseal_issuer`s, each with
/// `public_identity` valid for reads of `MQSEAL_PUBLIC_IDENTITY_LEN` bytes and `scope` NULL with
/// `scope_count` 0 or valid for reads of `scope_count` pointers to NUL-terminated strings; `out`
/// valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqseal_grant_accept_scoped(
    grant: *const u8,
    grant_len: usize,
    recipient: *const mqseal_identity,
    issuers: *const mqseal_issuer,
    issuer_count: usize,
    out: *mut *mut mqseal_tree_key,
) -> mqseal_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is valid for writing a pointer.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: the caller guarantees `grant` is valid for `grant_len` bytes.
        let grant = unsafe { bytes(grant, grant_len) }?;
        // SAFETY: the caller guarantees `recipient` is a valid handle.
        let recipient = unsafe { borrow(recipient) }?;
        // SAFETY: the caller guarantees `issuers` is valid for `issuer_count` structs.
        let issuers = unsafe { array(issuers, issuer_count) }?;
        let issuers = issuers
            .iter()
            // SAFETY: the caller guarantees each struct's pointers as documented.
            .map(|i| unsafe { issuer(i) })
            .collect::<FfiResult<Vec<_>>>()?;
        let inner = Grant::from_bytes(grant)?.accept_from(&recipient.inner, &issuers)?;
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
