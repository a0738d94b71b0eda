//! RFC 9180 HPKE, base mode, single shot, for the one suite mqseal uses:
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (0x0020 / 0x0001 / 0x0003).
//!
//! A composition of the audited primitives (x25519-dalek, hkdf, chacha20poly1305), checked
//! against the RFC's test vector A.2.1 (`spec/vectors/hpke-rfc9180-a2.json`).

use alloc::vec::Vec;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::envelope::TAG_LEN;
use crate::error::{Error, Result};

const KEM_ID: [u8; 2] = [0x00, 0x20];
const KDF_ID: [u8; 2] = [0x00, 0x01];
const AEAD_ID: [u8; 2] = [0x00, 0x03];
const VERSION_LABEL: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;

/// `"KEM" || kem_id`
fn kem_suite() -> [u8; 5] {
    let [a, b] = KEM_ID;
    [b'K', b'E', b'M', a, b]
}

/// `"HPKE" || kem_id || kdf_id || aead_id`
fn hpke_suite() -> [u8; 10] {
    let ([k0, k1], [d0, d1], [a0, a1]) = (KEM_ID, KDF_ID, AEAD_ID);
    [b'H', b'P', b'K', b'E', k0, k1, d0, d1, a0, a1]
}

/// LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite || label || ikm).
fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut ext = hkdf::HkdfExtract::<Sha256>::new(Some(salt));
    ext.input_ikm(VERSION_LABEL);
    ext.input_ikm(suite);
    ext.input_ikm(label);
    ext.input_ikm(ikm);
    let (prk, _) = ext.finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    out
}

/// LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite ||
/// label || info, L), for L ≤ 32.
fn labeled_expand<const L: usize>(
    suite: &[u8],
    prk: &[u8; 32],
    label: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; L]> {
    let mut out = Zeroizing::new([0u8; L]);
    let len = (L as u16).to_be_bytes();
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(prk) {
        // L ≤ 32 is always a valid output length.
        let _ = hk.expand_multi_info(&[&len, VERSION_LABEL, suite, label, info], out.as_mut());
    }
    out
}

/// DeriveKeyPair(ikm) for X25519 (RFC 9180 §7.1.3).
pub(crate) fn derive_key_pair(ikm: &[u8]) -> (StaticSecret, PublicKey) {
    let suite = kem_suite();
    let dkp_prk = labeled_extract(&suite, b"", b"dkp_prk", ikm);
    let sk = labeled_expand::<32>(&suite, &dkp_prk, b"sk", b"");
    let secret = StaticSecret::from(*sk);
    let public = PublicKey::from(&secret);
    (secret, public)
}

/// DH that refuses the all-zero output of a low-order peer key.
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(Error::InvalidKey);
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}

/// ExtractAndExpand(dh, enc || pkR) → shared_secret.
fn kem_shared_secret(dh: &[u8; 32], enc: &[u8; 32], pk_r: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let suite = kem_suite();
    let eae_prk = labeled_extract(&suite, b"", b"eae_prk", dh);
    let mut context = [0u8; 64];
    let (a, b) = context.split_at_mut(32);
    a.copy_from_slice(enc);
    b.copy_from_slice(pk_r);
    labeled_expand::<32>(&suite, &eae_prk, b"shared_secret", &context)
}

/// The HPKE context after KeySchedule (base mode, no PSK); the intermediate values are read
/// only by `vectors_support` (feature `vectors-support`), for the test vectors.
#[cfg_attr(not(feature = "vectors-support"), allow(dead_code))]
pub(crate) struct Context {
    pub(crate) shared_secret: Zeroizing<[u8; 32]>,
    pub(crate) key_schedule_context: [u8; 65],
    pub(crate) secret: Zeroizing<[u8; 32]>,
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) base_nonce: Zeroizing<[u8; 12]>,
    pub(crate) exporter_secret: Zeroizing<[u8; 32]>,
}

fn key_schedule(shared_secret: Zeroizing<[u8; 32]>, info: &[u8]) -> Context {
    let suite = hpke_suite();
    let psk_id_hash = labeled_extract(&suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(&suite, b"", b"info_hash", info);
    let mut ksc = [0u8; 65];
    let (mode, rest) = ksc.split_at_mut(1);
    let (a, b) = rest.split_at_mut(32);
    mode.copy_from_slice(&[MODE_BASE]);
    a.copy_from_slice(&*psk_id_hash);
    b.copy_from_slice(&*info_hash);
    let secret = labeled_extract(&suite, &*shared_secret, b"secret", b"");
    let key = labeled_expand::<32>(&suite, &secret, b"key", &ksc);
    let base_nonce = labeled_expand::<12>(&suite, &secret, b"base_nonce", &ksc);
    let exporter_secret = labeled_expand::<32>(&suite, &secret, b"exp", &ksc);
    Context {
        shared_secret,
        key_schedule_context: ksc,
        secret,
        key,
        base_nonce,
        exporter_secret,
    }
}

/// SetupBaseS with the ephemeral key derived from `ikm_e`: returns `enc` and the context.
pub(crate) fn setup_sender(
    pk_r: &PublicKey,
    info: &[u8],
    ikm_e: &[u8],
) -> Result<([u8; 32], Context)> {
    let (sk_e, pk_e) = derive_key_pair(ikm_e);
    let dh = dh(&sk_e, pk_r)?;
    let enc = pk_e.to_bytes();
    let shared = kem_shared_secret(&dh, &enc, pk_r.as_bytes());
    Ok((enc, key_schedule(shared, info)))
}

/// SetupBaseR: the recipient's context from `enc`.
pub(crate) fn setup_recipient(sk_r: &StaticSecret, enc: &[u8; 32], info: &[u8]) -> Result<Context> {
    let pk_e = PublicKey::from(*enc);
    let dh = dh(sk_r, &pk_e)?;
    let pk_r = PublicKey::from(sk_r);
    let shared = kem_shared_secret(&dh, enc, pk_r.as_bytes());
    Ok(key_schedule(shared, info))
}

impl Context {
    /// Seal with sequence number 0 (single shot): ciphertext || tag.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let cipher = ChaCha20Poly1305::new(<&Key>::from(&*self.key));
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = cipher
            .encrypt_inout_detached(
                &Nonce::from(*self.base_nonce),
                aad,
                out.as_mut_slice().into(),
            )
            .map_err(|_| Error::TooLarge)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open with sequence number 0 (single shot).
    pub(crate) fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let ct_len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(Error::Malformed)?;
        let (ct, tag) = ciphertext.split_at(ct_len);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Malformed)?;
        let cipher = ChaCha20Poly1305::new(<&Key>::from(&*self.key));
        let mut out = Zeroizing::new(ct.to_vec());
        cipher
            .decrypt_inout_detached(
                &Nonce::from(*self.base_nonce),
                aad,
                out.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .map_err(|_| Error::AuthenticationFailed)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &serde_json::Value, k: &str) -> Vec<u8> {
        hex::decode(v[k].as_str().unwrap()).unwrap()
    }

    #[test]
    fn rfc9180_a2_1_base_x25519_sha256_chacha20poly1305() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../spec/vectors/hpke-rfc9180-a2.json"))
                .unwrap();
        let (sk_e, pk_e) = derive_key_pair(&h(&v, "ikmE"));
        assert_eq!(sk_e.to_bytes().to_vec(), h(&v, "skEm"));
        assert_eq!(pk_e.to_bytes().to_vec(), h(&v, "pkEm"));
        let (sk_r, pk_r) = derive_key_pair(&h(&v, "ikmR"));
        assert_eq!(sk_r.to_bytes().to_vec(), h(&v, "skRm"));
        assert_eq!(pk_r.to_bytes().to_vec(), h(&v, "pkRm"));

        let info = h(&v, "info");
        let (enc, ctx) = setup_sender(&pk_r, &info, &h(&v, "ikmE")).unwrap();
        assert_eq!(enc.to_vec(), h(&v, "enc"));
        assert_eq!(ctx.shared_secret.to_vec(), h(&v, "shared_secret"));
        assert_eq!(
            ctx.key_schedule_context.to_vec(),
            h(&v, "key_schedule_context")
        );
        assert_eq!(ctx.secret.to_vec(), h(&v, "secret"));
        assert_eq!(ctx.key.to_vec(), h(&v, "key"));
        assert_eq!(ctx.base_nonce.to_vec(), h(&v, "base_nonce"));
        assert_eq!(ctx.exporter_secret.to_vec(), h(&v, "exporter_secret"));

        let e = &v["encryptions"][0];
        let ct = ctx.seal(&h(e, "aad"), &h(e, "pt")).unwrap();
        assert_eq!(ct, h(e, "ct"));
        let rctx = setup_recipient(&sk_r, &enc, &info).unwrap();
        assert_eq!(rctx.open(&h(e, "aad"), &ct).unwrap().to_vec(), h(e, "pt"));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            rctx.open(&h(e, "aad"), &bad).err(),
            Some(Error::AuthenticationFailed)
        );
        assert_eq!(
            rctx.open(&h(e, "aad"), &ct[..10]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn low_order_peer_is_refused() {
        let (sk, _) = derive_key_pair(b"x");
        assert_eq!(
            setup_recipient(&sk, &[0u8; 32], b"").err(),
            Some(Error::InvalidKey)
        );
    }
}
