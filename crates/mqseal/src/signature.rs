//! Ed25519 signature verification: the one rule of spec section 7.6, for single messages, batches
//! and grants.
//!
//! For a signature `R || S` by the trusted key `A` over the message `M` (a 64-byte transcript
//! digest, spec section 6 step 6, signed as plain Ed25519, not Ed25519ph), in this order:
//!
//! 1. `S` is canonical: below the group order `L`;
//! 2. `R` is the canonical encoding of a point (its `y` below `p`) that decodes;
//! 3. `R` does not have small order;
//! 4. the **cofactored** equation `[8]([S]B − R − [k]A)` is the identity, with
//!    `k = SHA-512(R || A || M) mod L` over the 32 bytes of `R` and of `A` as received.
//!
//! `A` is not checked here: a trusted key never has small order or a torsion component
//! (`PublicIdentity::from_bytes`, spec section 3). Checks 1–3 are [`Prepared::new`], shared by
//! both paths. The batch ([`verify_batch`]) checks a random linear combination of the same
//! cofactored equations; multiplying by the cofactor removes every torsion component, so a batch
//! of signatures that each verify always verifies, and a batch holding one that does not verifies
//! only with probability about 2^−128. A cofactorless batch would not agree with a cofactorless
//! single check on a mixed-order `R` (ZIP 215; Chalkias, Garillot, Nikolaenko, "Taming the many
//! EdDSAs"; spec section 12).
//!
//! The curve arithmetic is curve25519-dalek's (the same crate ed25519-dalek verifies with);
//! signing stays ed25519-dalek's `SigningKey`.

use alloc::vec::Vec;
use core::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// A signature that passed checks 1–3 (everything but the equation): `S` canonical, `R` the
/// canonical encoding of a point without small order.
pub(crate) struct Prepared {
    r_bytes: [u8; 32],
    s_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
}

impl Prepared {
    /// Checks 1–3 of spec 7.6, in order; `None` if one fails (`bad_signature`). Costs one point
    /// decompression.
    pub(crate) fn new(signature: &[u8; 64]) -> Option<Prepared> {
        let r_bytes = *signature.first_chunk::<32>()?;
        let s_bytes = *signature.last_chunk::<32>()?;
        // 1. S < L.
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        // 2. y < p, and the point decodes. The other non-canonical encodings, x = 0 with the sign
        // bit set, are the two points with y = ±1: of small order, refused by 3.
        if !y_is_canonical(&r_bytes) {
            return None;
        }
        let r = CompressedEdwardsY(r_bytes).decompress()?;
        // 3. Not of small order (8R is the identity).
        if r.is_small_order() {
            return None;
        }
        Some(Prepared {
            r_bytes,
            s_bytes,
            r,
            s,
        })
    }

    /// The challenge `k = SHA-512(R || A || M) mod L`, before the reduction.
    fn challenge_wide(&self, key: &VerifyingKey, message: &[u8]) -> [u8; 64] {
        Sha512::new()
            .chain_update(self.r_bytes)
            .chain_update(key.as_bytes())
            .chain_update(message)
            .finalize()
            .into()
    }
}

/// Whether the low 255 bits of an encoding, read little-endian, are below p = 2^255 − 19 (the
/// top bit is the sign of x). An integer comparison of the bytes; the only values at or above p
/// are `ed..ff`, `ee ff…ff 7f` up to `ff…ff 7f` (19 values, with either sign bit).
fn y_is_canonical(encoding: &[u8; 32]) -> bool {
    let [low, middle @ .., high] = encoding;
    !(*high & 0x7f == 0x7f && middle.iter().all(|b| *b == 0xff) && *low >= 0xed)
}

/// Verifies one signature by `key` over `message` with the rule of spec 7.6.
pub(crate) fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    Prepared::new(signature).is_some_and(|prepared| verify_prepared(key, message, &prepared))
}

/// Check 4, the cofactored equation, for a signature that passed checks 1–3.
fn verify_prepared(key: &VerifyingKey, message: &[u8], signature: &Prepared) -> bool {
    let k = Scalar::from_bytes_mod_order_wide(&signature.challenge_wide(key, message));
    let minus_a = -key.to_edwards();
    // [k](−A) + [S]B − R
    let difference =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &signature.s) - signature.r;
    difference.mul_by_cofactor().is_identity()
}

/// One signature of a batch: the signer's trusted key, the signed message and the signature,
/// which passed checks 1–3.
pub(crate) struct BatchEntry<'a> {
    /// The signer's key.
    pub(crate) key: &'a VerifyingKey,
    /// The signed message (a transcript digest).
    pub(crate) message: &'a [u8],
    /// The signature, checked by [`Prepared::new`].
    pub(crate) signature: &'a Prepared,
}

/// Domain label of the batch coefficients (not a wire label: any unpredictable coefficients
/// would do).
const BATCH_COEFFICIENTS: &[u8] = b"mqseal/v2/batch-verification";

/// Whether every signature of the batch verifies, with one multiscalar multiplication:
/// `[8]([−Σ z_i S_i]B + Σ [z_i]R_i + Σ [z_i k_i]A_i)` is the identity, for 128-bit coefficients
/// `z_i` derived from a SHA-512 hash of the whole batch (as ed25519-dalek derives its own from a
/// transcript of the batch). Signatures by the same key share that key's term. `false` says
/// only that some signature does not verify; the caller checks each on its own to find which.
pub(crate) fn verify_batch(entries: &[BatchEntry<'_>]) -> bool {
    let mut transcript = Sha512::new().chain_update(BATCH_COEFFICIENTS);
    let mut challenges = Vec::with_capacity(entries.len());
    for e in entries {
        let wide = e.signature.challenge_wide(e.key, e.message);
        // The challenge hashes R, A and M; S is added on its own.
        transcript.update(wide);
        transcript.update(e.signature.s_bytes);
        challenges.push(Scalar::from_bytes_mod_order_wide(&wide));
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut b_coefficient = Scalar::ZERO;
    let mut r_coefficients = Vec::with_capacity(entries.len());
    let mut r_points = Vec::with_capacity(entries.len());
    // (key bytes, point, coefficient): one term per distinct key.
    let mut keys: Vec<(&[u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    for (i, (e, k)) in entries.iter().zip(&challenges).enumerate() {
        let z = coefficient(&seed, i);
        b_coefficient -= z * e.signature.s;
        r_coefficients.push(z);
        r_points.push(e.signature.r);
        let a = e.key.as_bytes();
        match keys.iter_mut().find(|(bytes, _, _)| *bytes == a) {
            Some((_, _, c)) => *c += z * k,
            None => keys.push((a, e.key.to_edwards(), z * k)),
        }
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        once(&b_coefficient)
            .chain(&r_coefficients)
            .chain(keys.iter().map(|(_, _, c)| c)),
        once(&ED25519_BASEPOINT_POINT)
            .chain(&r_points)
            .chain(keys.iter().map(|(_, a, _)| a)),
    );
    sum.mul_by_cofactor().is_identity()
}

/// The 128-bit coefficient of the `index`-th signature of a batch.
fn coefficient(seed: &[u8; 64], index: usize) -> Scalar {
    let block: [u8; 64] = Sha512::new()
        .chain_update(seed)
        .chain_update((index as u64).to_le_bytes())
        .finalize()
        .into();
    let z = block.first_chunk::<16>().copied().unwrap_or_default();
    Scalar::from(u128::from_le_bytes(z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn accepts_ed25519_dalek_signatures_on_both_paths() {
        let signing = key();
        let verifying = signing.verifying_key();
        let messages: Vec<[u8; 64]> = (0..5u8).map(|i| [i; 64]).collect();
        let signatures: Vec<[u8; 64]> = messages
            .iter()
            .map(|m| signing.sign(m).to_bytes())
            .collect();
        for (m, s) in messages.iter().zip(&signatures) {
            assert!(verify(&verifying, m, s));
            assert!(verifying.verify_strict(m, &(*s).into()).is_ok());
        }
        let prepared: Vec<Prepared> = signatures
            .iter()
            .map(|s| Prepared::new(s).unwrap())
            .collect();
        let other = SigningKey::from_bytes(&[8; 32]);
        let other_verifying = other.verifying_key();
        let other_signature = Prepared::new(&other.sign(&[9; 64]).to_bytes()).unwrap();
        let mut entries: Vec<BatchEntry<'_>> = messages
            .iter()
            .zip(&prepared)
            .map(|(m, p)| BatchEntry {
                key: &verifying,
                message: m,
                signature: p,
            })
            .collect();
        entries.push(BatchEntry {
            key: &other_verifying,
            message: &[9; 64],
            signature: &other_signature,
        });
        assert!(verify_batch(&entries));
        // One wrong message: the batch fails.
        entries[2].message = &[0xee; 64];
        assert!(!verify_batch(&entries));
        assert!(!verify(&verifying, &[0xee; 64], &signatures[2]));
    }

    /// A signature by secret scalar `a` with `R = [r]B + T`, valid under the cofactored
    /// equation only.
    fn mixed_order_signature(a: Scalar, r: Scalar, t: &EdwardsPoint, message: &[u8]) -> [u8; 64] {
        let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let big_r = (EdwardsPoint::mul_base(&r) + t).compress().to_bytes();
        let wide: [u8; 64] = Sha512::new()
            .chain_update(big_r)
            .chain_update(public)
            .chain_update(message)
            .finalize()
            .into();
        let s = r + Scalar::from_bytes_mod_order_wide(&wide) * a;
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&big_r);
        out[32..].copy_from_slice(&s.to_bytes());
        out
    }

    #[test]
    fn mixed_order_r_verifies_on_both_paths_and_the_batch_does_not_fall_back() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let keys: Vec<(Scalar, VerifyingKey)> = [3u64, 5]
            .map(|a| {
                let a = Scalar::from(a) * Scalar::from(0x1234_5678_9abc_def1u64);
                let bytes = EdwardsPoint::mul_base(&a).compress().to_bytes();
                (a, VerifyingKey::from_bytes(&bytes).unwrap())
            })
            .into();
        let messages: Vec<[u8; 64]> = (0..16u8).map(|i| [i; 64]).collect();
        let mut signatures = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let (a, key) = &keys[i % 2];
            // Torsion of every order 1..8 (index 0 is the neutral element: an honest R).
            let t = &EIGHT_TORSION[i % 8];
            let r = Scalar::from(1000 + i as u64);
            let sig = mixed_order_signature(*a, r, t, m);
            assert!(verify(key, m, &sig), "{i}");
            let strict = key.verify_strict(m, &sig.into()).is_ok();
            assert_eq!(
                strict,
                i % 8 == 0,
                "{i}: cofactorless accepts only the honest R"
            );
            signatures.push(Prepared::new(&sig).unwrap());
        }
        let entries: Vec<BatchEntry<'_>> = messages
            .iter()
            .zip(&signatures)
            .enumerate()
            .map(|(i, (m, p))| BatchEntry {
                key: &keys[i % 2].1,
                message: m,
                signature: p,
            })
            .collect();
        // A cofactorless batch would refuse this with probability 1 − 2^−14.
        assert!(verify_batch(&entries));
        for pair in entries.chunks(2) {
            assert!(verify_batch(pair));
        }
    }

    #[test]
    fn small_order_and_non_canonical_r_are_refused_before_the_equation() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let s = [0u8; 32];
        for t in EIGHT_TORSION {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&t.compress().to_bytes());
            sig[32..].copy_from_slice(&s);
            assert!(Prepared::new(&sig).is_none());
        }
        // y = p + 1 (the neutral element, not canonical) and S = L.
        let mut sig = [0xff; 64];
        sig[0] = 0xee;
        sig[31] = 0x7f;
        sig[32..].fill(0);
        assert!(Prepared::new(&sig).is_none());
        // L, little-endian.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut sig = key().sign(&[1; 64]).to_bytes();
        assert!(Prepared::new(&sig).is_some());
        sig[32..].copy_from_slice(&l);
        assert!(Prepared::new(&sig).is_none());
    }

    #[test]
    fn canonical_y() {
        let mut y = [0xff; 32];
        y[31] = 0x7f;
        assert!(!y_is_canonical(&y));
        y[0] = 0xed; // p itself
        assert!(!y_is_canonical(&y));
        y[0] = 0xec; // p − 1
        assert!(y_is_canonical(&y));
        y[31] = 0xff; // p − 1 with the sign bit
        assert!(y_is_canonical(&y));
        y[0] = 0xed; // p with the sign bit
        assert!(!y_is_canonical(&y));
        assert!(y_is_canonical(&[0; 32]));
    }
}
