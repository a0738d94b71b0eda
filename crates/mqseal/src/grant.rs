//! Grants: a tree key wrapped to one recipient's X25519 key with HPKE and signed by its issuer.
//!
//! ```text
//! grant = 0x01 || issuer_ed25519(32) || recipient_fingerprint(32) || enc(32)
//!         || varint(len(ct)) || ct || signature(64)
//! ct    = HPKE-Seal(pkR, info = GRANT_INFO, aad = first 65 bytes, body)
//! body  = varint(epoch) || varint(len(filter)) || filter || secret(32)
//!         || varint(not_before) || varint(not_after)        -- not_after 0: never expires
//! ```
//! Spec: `spec/mqseal-v2.md`, section "Grants".

use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hpke;
use crate::identity::{Fingerprint, Identity, PublicIdentity, transcript_digest};
use crate::issuer::Issuer;
use crate::keys::{KEY_LEN, TreeKey};
use crate::labels;
use crate::topic::MAX_TOPIC_LEN;
use crate::validity::Validity;
use crate::varint;

/// First byte of every grant (format version 1).
pub const GRANT_VERSION: u8 = 0x01;
const PREFIX_LEN: usize = 1 + 32 + 32;
const SIG_LEN: usize = 64;

/// A signed, wrapped tree key for one recipient. Safe to publish anywhere (e.g. retained on the
/// broker): only the recipient can unwrap it, and only a trusted issuer's grant is accepted.
///
/// ```
/// use mqseal::{Grant, Identity, TreeKey};
/// let admin = Identity::from_seed([1; 32]);
/// let device = Identity::from_seed([2; 32]);
/// let key = TreeKey::from_secret("plant/#", 1, [3; 32]).unwrap().derive("plant/7/#").unwrap();
///
/// let grant = Grant::issue_with_ikm(&admin, &device.public(), &key, &[4; 32]).unwrap();
/// let received = Grant::from_bytes(grant.as_bytes()).unwrap();
/// let got = received.accept(&device, &[admin.public()]).unwrap();
/// assert!(got.ct_eq(&key));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    bytes: Vec<u8>,
}

struct GrantParts<'a> {
    issuer: &'a [u8; 32],
    recipient: &'a [u8; 32],
    enc: &'a [u8; 32],
    aad: &'a [u8],
    ciphertext: &'a [u8],
    signed: &'a [u8],
    signature: &'a [u8; SIG_LEN],
}

fn split(bytes: &[u8]) -> Result<GrantParts<'_>> {
    let (&version, rest) = bytes.split_first().ok_or(Error::Malformed)?;
    if version != GRANT_VERSION {
        return Err(Error::UnsupportedVersion);
    }
    let (issuer, rest) = rest.split_first_chunk::<32>().ok_or(Error::Malformed)?;
    let (recipient, rest) = rest.split_first_chunk::<32>().ok_or(Error::Malformed)?;
    let (enc, rest) = rest.split_first_chunk::<32>().ok_or(Error::Malformed)?;
    let (ct_len, n) = varint::decode(rest, u64::from(u32::MAX))?;
    let rest = rest.get(n..).ok_or(Error::Malformed)?;
    let ct_len = usize::try_from(ct_len).map_err(|_| Error::Malformed)?;
    let (ciphertext, rest) = rest.split_at_checked(ct_len).ok_or(Error::Malformed)?;
    let signature: &[u8; SIG_LEN] = rest.try_into().map_err(|_| Error::Malformed)?;
    let signed_len = bytes.len() - SIG_LEN;
    Ok(GrantParts {
        issuer,
        recipient,
        enc,
        aad: bytes.get(..PREFIX_LEN).ok_or(Error::Malformed)?,
        ciphertext,
        signed: bytes.get(..signed_len).ok_or(Error::Malformed)?,
        signature,
    })
}

fn encode_body(key: &TreeKey) -> Result<Zeroizing<Vec<u8>>> {
    let filter = key.filter().as_str().as_bytes();
    let mut body = Zeroizing::new(Vec::with_capacity(filter.len() + 48));
    let mut tmp = [0u8; varint::MAX_LEN_U64];
    let n = varint::encode(u64::from(key.epoch()), &mut tmp)?;
    body.extend_from_slice(tmp.get(..n).ok_or(Error::Malformed)?);
    let n = varint::encode(filter.len() as u64, &mut tmp)?;
    body.extend_from_slice(tmp.get(..n).ok_or(Error::Malformed)?);
    body.extend_from_slice(filter);
    body.extend_from_slice(&*key.secret_bytes());
    let validity = key.validity();
    for value in [validity.not_before(), validity.not_after().unwrap_or(0)] {
        let n = varint::encode(value, &mut tmp)?;
        body.extend_from_slice(tmp.get(..n).ok_or(Error::Malformed)?);
    }
    Ok(body)
}

fn decode_body(body: &[u8]) -> Result<TreeKey> {
    let (epoch, n) = varint::decode(body, u64::from(u32::MAX))?;
    let rest = body.get(n..).ok_or(Error::Malformed)?;
    let (len, n) = varint::decode(rest, MAX_TOPIC_LEN as u64)?;
    let rest = rest.get(n..).ok_or(Error::Malformed)?;
    let (filter, rest) = rest
        .split_at_checked(usize::try_from(len).map_err(|_| Error::Malformed)?)
        .ok_or(Error::Malformed)?;
    let (secret, rest) = rest
        .split_first_chunk::<KEY_LEN>()
        .ok_or(Error::Malformed)?;
    let secret = Zeroizing::new(*secret);
    let (not_before, n) = varint::decode(rest, u64::MAX)?;
    let rest = rest.get(n..).ok_or(Error::Malformed)?;
    let (not_after, n) = varint::decode(rest, u64::MAX)?;
    if rest.len() != n {
        return Err(Error::Malformed);
    }
    let validity = Validity::new(not_before, (not_after != 0).then_some(not_after))?;
    // The body parses completely (malformed) before the filter is checked (invalid_filter).
    let filter = core::str::from_utf8(filter).map_err(|_| Error::InvalidFilter)?;
    Ok(TreeKey::from_secret(
        filter,
        u32::try_from(epoch).map_err(|_| Error::Malformed)?,
        *secret,
    )?
    .with_validity(validity))
}

impl Grant {
    /// Wraps `key` for `recipient`, signed by `issuer`, with the HPKE ephemeral key derived from
    /// `ikm_e` (32 fresh random bytes; reusing them leaks nothing about other grants' keys but
    /// links the grants). Use this in `no_std` builds; [`Grant::issue`] draws them itself.
    pub fn issue_with_ikm(
        issuer: &Identity,
        recipient: &PublicIdentity,
        key: &TreeKey,
        ikm_e: &[u8; 32],
    ) -> Result<Grant> {
        let (enc, ctx) = hpke::setup_sender(recipient.agreement_key(), labels::GRANT_INFO, ikm_e)?;
        let mut bytes = Vec::new();
        bytes.push(GRANT_VERSION);
        bytes.extend_from_slice(&issuer.public().ed25519());
        bytes.extend_from_slice(&recipient.fingerprint().0);
        let aad_end = bytes.len();
        bytes.extend_from_slice(&enc);
        let ct = ctx.seal(
            bytes.get(..aad_end).ok_or(Error::Malformed)?,
            &encode_body(key)?,
        )?;
        let mut tmp = [0u8; varint::MAX_LEN_U64];
        let n = varint::encode(ct.len() as u64, &mut tmp)?;
        bytes.extend_from_slice(tmp.get(..n).ok_or(Error::Malformed)?);
        bytes.extend_from_slice(&ct);
        let digest = transcript_digest(labels::GRANT_SIGNATURE, &[&bytes]);
        bytes.extend_from_slice(&issuer.sign_digest(&digest).to_bytes());
        Ok(Grant { bytes })
    }

    /// Wraps `key` for `recipient`, signed by `issuer`, with OS randomness.
    #[cfg(feature = "std")]
    pub fn issue(issuer: &Identity, recipient: &PublicIdentity, key: &TreeKey) -> Result<Grant> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        crate::random::fill(ikm.as_mut())?;
        Grant::issue_with_ikm(issuer, recipient, key, &ikm)
    }

    /// Parses a grant's structure (nothing is verified or decrypted yet).
    pub fn from_bytes(bytes: &[u8]) -> Result<Grant> {
        split(bytes)?;
        Ok(Grant {
            bytes: bytes.to_vec(),
        })
    }

    /// The encoded grant.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The fingerprint of the identity this grant is for.
    pub fn recipient(&self) -> Fingerprint {
        let mut fp = [0u8; 32];
        if let Ok(parts) = split(&self.bytes) {
            fp = *parts.recipient;
        }
        Fingerprint(fp)
    }

    /// The issuer's Ed25519 key.
    pub fn issuer_ed25519(&self) -> [u8; 32] {
        split(&self.bytes).map_or([0u8; 32], |p| *p.issuer)
    }

    /// Like [`Grant::accept_from`], each of `trusted_issuers` trusted for the whole tree
    /// ([`Issuer::unscoped`]).
    pub fn accept(
        &self,
        recipient: &Identity,
        trusted_issuers: &[PublicIdentity],
    ) -> Result<TreeKey> {
        let issuers: Vec<Issuer> = trusted_issuers
            .iter()
            .map(|i| Issuer::unscoped(i.clone()))
            .collect();
        self.accept_from(recipient, &issuers)
    }

    /// Verifies and unwraps the grant, in the order of the spec ("Grants"): it must be addressed
    /// to `recipient` ([`Error::GrantNotForUs`]), issued by one of `issuers`
    /// ([`Error::UntrustedIssuer`]), carry a valid issuer signature ([`Error::BadSignature`]),
    /// have a contributory `enc` ([`Error::InvalidKey`]), decrypt
    /// ([`Error::AuthenticationFailed`]), hold a well-formed body with a consistent validity
    /// ([`Error::Malformed`]) and a valid filter ([`Error::InvalidFilter`]) inside the issuer's
    /// scope ([`Error::OutOfScope`]). The key comes back with the validity the issuer signed
    /// ([`TreeKey::validity`]); an expired key is still returned (a receiver may need it for
    /// late messages within its grace).
    pub fn accept_from(&self, recipient: &Identity, issuers: &[Issuer]) -> Result<TreeKey> {
        let parts = split(&self.bytes)?;
        if *parts.recipient != recipient.fingerprint().0 {
            return Err(Error::GrantNotForUs);
        }
        let issuer = issuers
            .iter()
            .find(|i| i.identity().ed25519() == *parts.issuer)
            .ok_or(Error::UntrustedIssuer)?;
        let digest = transcript_digest(labels::GRANT_SIGNATURE, &[parts.signed]);
        issuer.identity().verify_digest(&digest, parts.signature)?;
        let ctx =
            hpke::setup_recipient(recipient.agreement_secret(), parts.enc, labels::GRANT_INFO)?;
        let body = ctx.open(parts.aad, parts.ciphertext)?;
        let key = decode_body(&body)?;
        if !issuer.permits(key.filter()) {
            return Err(Error::OutOfScope);
        }
        Ok(key)
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("recipient", &self.recipient())
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Identity, Identity, TreeKey, Grant) {
        let admin = Identity::from_seed([1; 32]);
        let device = Identity::from_seed([2; 32]);
        let key = TreeKey::from_secret("a/b/#", 7, [3; 32]).unwrap();
        let grant = Grant::issue_with_ikm(&admin, &device.public(), &key, &[4; 32]).unwrap();
        (admin, device, key, grant)
    }

    #[test]
    fn accept_checks_recipient_issuer_signature() {
        let (admin, device, key, grant) = setup();
        assert!(
            grant
                .accept(&device, &[admin.public()])
                .unwrap()
                .ct_eq(&key)
        );
        assert_eq!(grant.recipient(), device.fingerprint());
        let other = Identity::from_seed([9; 32]);
        assert_eq!(
            grant.accept(&other, &[admin.public()]).err(),
            Some(Error::GrantNotForUs)
        );
        assert_eq!(
            grant.accept(&device, &[other.public()]).err(),
            Some(Error::UntrustedIssuer)
        );
        let mut bytes = grant.as_bytes().to_vec();
        let last = bytes.len() - 70;
        bytes[last] ^= 1;
        let tampered = Grant::from_bytes(&bytes).unwrap();
        assert_eq!(
            tampered.accept(&device, &[admin.public()]).err(),
            Some(Error::BadSignature)
        );
    }

    #[test]
    fn truncations_never_panic() {
        let (_, _, _, grant) = setup();
        let bytes = grant.as_bytes();
        for n in 0..bytes.len() {
            assert!(Grant::from_bytes(&bytes[..n]).is_err());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(Grant::from_bytes(&longer).err(), Some(Error::Malformed));
    }

    #[test]
    fn the_validity_travels_signed_in_the_body() {
        let admin = Identity::from_seed([1; 32]);
        let device = Identity::from_seed([2; 32]);
        let base = TreeKey::from_secret("a/#", 2, [3; 32]).unwrap();
        for validity in [
            Validity::ALWAYS,
            Validity::new(1_800_000_000, None).unwrap(),
            Validity::new(0, Some(1)).unwrap(),
            Validity::new(u64::MAX, Some(u64::MAX)).unwrap(),
        ] {
            let key = base.clone().with_validity(validity);
            let body = encode_body(&key).unwrap();
            let back = decode_body(&body).unwrap();
            assert!(back.ct_eq(&key));
            assert_eq!(back.validity(), validity);
            let grant = Grant::issue_with_ikm(&admin, &device.public(), &key, &[4; 32]).unwrap();
            let got = grant.accept(&device, &[admin.public()]).unwrap();
            assert_eq!(got.validity(), validity);
        }
        // The two varints close the body: none missing, none extra, not_before <= not_after.
        let body = encode_body(&base).unwrap();
        assert_eq!(body[body.len() - 2..], [0, 0]);
        for bad in [
            &body[..body.len() - 1],
            &body[..body.len() - 2],
            &[&body[..], &[0]].concat()[..],
            &[&body[..body.len() - 2], &[5, 4]].concat()[..],
            &[&body[..body.len() - 2], &[0x80, 0x00, 0]].concat()[..],
            &[&body[..body.len() - 2], &[0, 0x81, 0x00]].concat()[..],
        ] {
            assert_eq!(decode_body(bad).err(), Some(Error::Malformed), "{bad:02x?}");
        }
    }
}
