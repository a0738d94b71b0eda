//! Identities: an Ed25519 signing key and an X25519 agreement key, both derived from one seed.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as XPublicKey, StaticSecret};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::labels;

/// Length of an identity seed, the only secret an [`Identity`] needs.
pub const SEED_LEN: usize = 32;
/// Length of [`PublicIdentity::to_bytes`]: Ed25519 key then X25519 key.
pub const PUBLIC_IDENTITY_LEN: usize = 64;

/// A participant's secret identity: signs what it seals and issues, and unwraps grants sent to it.
///
/// Both key pairs are derived from a single 32-byte seed (spec: "Identities"), so the seed is all
/// there is to store. The seed and the derived secrets are zeroized on drop and never printed.
///
/// ```
/// use mqseal::Identity;
/// let alice = Identity::from_seed([7u8; 32]);
/// let public = alice.public();
/// assert_eq!(mqseal::PublicIdentity::from_bytes(&public.to_bytes()).unwrap(), public);
/// assert!(!format!("{alice:?}").contains("0707"));
/// ```
#[derive(ZeroizeOnDrop)]
pub struct Identity {
    seed: [u8; SEED_LEN],
    #[zeroize(skip)] // SigningKey zeroizes itself on drop.
    signing: SigningKey,
    #[zeroize(skip)] // StaticSecret zeroizes itself on drop.
    agreement: StaticSecret,
    #[zeroize(skip)]
    public: PublicIdentity,
}

impl Identity {
    /// Derives the identity held in `seed` (32 uniformly random bytes).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Identity {
        let hk = Hkdf::<Sha256>::new(Some(labels::IDENTITY_SALT), &seed);
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(labels::IDENTITY_ED25519, ed.as_mut());
        let _ = hk.expand(labels::IDENTITY_X25519, x.as_mut());
        let signing = SigningKey::from_bytes(&ed);
        let agreement = StaticSecret::from(*x);
        let public = PublicIdentity::new(signing.verifying_key(), XPublicKey::from(&agreement));
        Identity {
            seed,
            signing,
            agreement,
            public,
        }
    }

    /// A fresh identity from the operating system's random number generator.
    #[cfg(feature = "std")]
    pub fn generate() -> Result<Identity> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        crate::random::fill(seed.as_mut())?;
        Ok(Identity::from_seed(*seed))
    }

    /// The seed this identity was derived from. Keep it secret (files: mode 0600).
    pub fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.seed)
    }

    /// The public part, to hand to peers.
    pub fn public(&self) -> PublicIdentity {
        self.public.clone()
    }

    /// This identity's fingerprint (same as `self.public().fingerprint()`).
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint
    }

    pub(crate) fn sign_digest(&self, digest: &[u8; 64]) -> Signature {
        self.signing.sign(digest)
    }

    pub(crate) fn agreement_secret(&self) -> &StaticSecret {
        &self.agreement
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.public.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity::from_seed(self.seed)
    }
}

/// The public part of an [`Identity`]: what peers put in their trust stores.
///
/// Encoded as 64 bytes, the Ed25519 verifying key followed by the X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    verifying: VerifyingKey,
    agreement: XPublicKey,
    fingerprint: Fingerprint,
}

impl PublicIdentity {
    fn new(verifying: VerifyingKey, agreement: XPublicKey) -> PublicIdentity {
        let digest = Sha256::new()
            .chain_update(labels::FINGERPRINT)
            .chain_update(verifying.as_bytes())
            .chain_update(agreement.as_bytes())
            .finalize();
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(&digest);
        PublicIdentity {
            verifying,
            agreement,
            fingerprint: Fingerprint(fingerprint),
        }
    }

    /// Parses the 64-byte encoding. Fails with [`Error::InvalidKey`] if the Ed25519 key is not a
    /// valid point, has small order or a torsion component (is not in the prime-order
    /// subgroup), or the X25519 key is a low-order point.
    pub fn from_bytes(bytes: &[u8; PUBLIC_IDENTITY_LEN]) -> Result<PublicIdentity> {
        let (ed, x) = bytes.split_at(32);
        let ed: [u8; 32] = ed.try_into().map_err(|_| Error::InvalidKey)?;
        let x: [u8; 32] = x.try_into().map_err(|_| Error::InvalidKey)?;
        let verifying = VerifyingKey::from_bytes(&ed).map_err(|_| Error::InvalidKey)?;
        // Small order, or a torsion component (spec section 3): no derived key has either. One
        // scalar multiplication, at trust time.
        if verifying.is_weak() || !verifying.to_edwards().is_torsion_free() {
            return Err(Error::InvalidKey);
        }
        let agreement = XPublicKey::from(x);
        // A low-order X25519 point gives an all-zero shared secret with any scalar.
        let probe = StaticSecret::from([0x5a; 32]).diffie_hellman(&agreement);
        if !probe.was_contributory() {
            return Err(Error::InvalidKey);
        }
        Ok(PublicIdentity::new(verifying, agreement))
    }

    /// Parses the 64-byte encoding from a slice of any length (wrong length: [`Error::Malformed`]).
    pub fn from_slice(bytes: &[u8]) -> Result<PublicIdentity> {
        let bytes: &[u8; PUBLIC_IDENTITY_LEN] = bytes.try_into().map_err(|_| Error::Malformed)?;
        PublicIdentity::from_bytes(bytes)
    }

    /// The 64-byte encoding: Ed25519 verifying key, then X25519 public key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        let mut out = [0u8; PUBLIC_IDENTITY_LEN];
        let (ed, x) = out.split_at_mut(32);
        ed.copy_from_slice(self.verifying.as_bytes());
        x.copy_from_slice(self.agreement.as_bytes());
        out
    }

    /// The Ed25519 verifying key bytes.
    pub fn ed25519(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    /// The X25519 public key bytes.
    pub fn x25519(&self) -> [u8; 32] {
        self.agreement.to_bytes()
    }

    /// SHA-256 fingerprint of the public keys (spec: "Identities").
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The 4-byte sender id carried in every sealed message: the fingerprint's first 4 bytes.
    pub fn sender_id(&self) -> SenderId {
        self.fingerprint.sender_id()
    }

    pub(crate) fn agreement_key(&self) -> &XPublicKey {
        &self.agreement
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// Verifies an Ed25519 signature over a 64-byte transcript digest with the rule of spec 7.6
    /// (canonical `S`, canonical `R` without small order, cofactored equation): the one
    /// verification of messages and grants, which batches agree with (`crate::signature`).
    pub(crate) fn verify_digest(&self, digest: &[u8; 64], signature: &[u8; 64]) -> Result<()> {
        if crate::signature::verify(&self.verifying, digest, signature) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicIdentity")
            .field(&self.fingerprint)
            .finish()
    }
}

/// SHA-256 over the fingerprint label and both public keys; names an identity.
///
/// Displayed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The first four bytes, as carried in sealed messages.
    pub fn sender_id(&self) -> SenderId {
        let [a, b, c, d, ..] = self.0;
        SenderId([a, b, c, d])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// The 4-byte sender id in a sealed message's header (a fingerprint prefix, not unique by
/// itself: receivers try every trusted sender whose fingerprint starts with it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SenderId(pub [u8; 4]);

impl fmt::Display for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// SHA-512 of a domain label followed by parts: the 64-byte digest that signatures cover.
pub(crate) fn transcript_digest(label: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(label);
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(&h.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn debug_hides_the_seed() {
        let id = Identity::from_seed([0xab; 32]);
        let dbg = format!("{id:?}");
        assert!(!dbg.contains("abab"), "{dbg}");
        assert!(dbg.contains(&id.fingerprint().to_string()));
    }

    #[test]
    fn rejects_low_order_keys() {
        let id = Identity::from_seed([1; 32]);
        let mut bytes = id.public().to_bytes();
        bytes[32..].fill(0);
        assert_eq!(PublicIdentity::from_bytes(&bytes), Err(Error::InvalidKey));
        let mut bytes = id.public().to_bytes();
        bytes[..32].fill(0);
        bytes[0] = 1; // the identity point: small order
        assert_eq!(PublicIdentity::from_bytes(&bytes), Err(Error::InvalidKey));
    }
}
