//! What a malicious broker (or an insider) can do to sealed messages, and the error the
//! receiver rules of `spec/mqseal-v2.md` §7.1 predict for each tampered message.
//!
//! The predictions follow the order of checks: parse → profile policy → topic → sender and key
//! lookup → signature → decryption → delivery policy → replay window. Where a tampering changes
//! how the header parses (a flipped varint continuation bit, a flipped timestamp flag) more than
//! one outcome is possible and the prediction is the set of them; everything else is exact.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signer, SigningKey};
use mqseal::{Error, Header, Identity, Profile, PublicIdentity, SealedParts, SenderId, TopicKey};

/// The byte regions of a sealed message (spec §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Region {
    /// The flags byte.
    Flags,
    /// The epoch varint.
    Epoch,
    /// The 4-byte sender id.
    SenderId,
    /// The 4-byte key id.
    KeyId,
    /// The 8-byte per-message salt.
    Salt,
    /// The sequence number varint.
    Seq,
    /// The timestamp varint.
    Timestamp,
    /// The encrypted payload.
    Ciphertext,
    /// The Poly1305 tag.
    Tag,
    /// The Ed25519 signature.
    Signature,
}

/// Byte offsets of each region of a well-formed sealed message.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The message's profile.
    pub profile: Profile,
    /// `(region, start, end)` in message order.
    pub regions: Vec<(Region, usize, usize)>,
    /// Header length.
    pub header_len: usize,
}

fn varint_len(v: u64) -> usize {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        v >>= 7;
        n += 1;
    }
    n
}

impl Layout {
    /// The layout of `message`, which must parse.
    pub fn of(message: &[u8]) -> Result<Layout, Error> {
        let parts = SealedParts::parse(message)?;
        let h = parts.header;
        let mut regions = Vec::new();
        let mut at = 0;
        let mut push = |r: Region, len: usize| {
            regions.push((r, at, at + len));
            at += len;
        };
        push(Region::Flags, 1);
        push(Region::Epoch, varint_len(u64::from(h.epoch)));
        push(Region::SenderId, 4);
        push(Region::KeyId, mqseal::KEY_ID_LEN);
        push(Region::Salt, mqseal::SALT_LEN);
        push(Region::Seq, varint_len(h.seq));
        if let Some(ts) = h.timestamp {
            push(Region::Timestamp, varint_len(ts));
        }
        push(Region::Ciphertext, parts.ciphertext.len());
        push(Region::Tag, mqseal::TAG_LEN);
        if h.profile == Profile::Signed {
            push(Region::Signature, mqseal::SIGNATURE_LEN);
        }
        Ok(Layout {
            profile: h.profile,
            regions,
            header_len: parts.header_bytes.len(),
        })
    }

    /// The region holding byte `index`.
    pub fn region(&self, index: usize) -> Option<Region> {
        self.regions
            .iter()
            .find(|(_, s, e)| (*s..*e).contains(&index))
            .map(|(r, _, _)| *r)
    }
}

/// The error a receiver reports when authentication fails in `profile`: the signature is
/// checked first in `signed`, decryption is the only check in `group-mac`.
pub fn auth_error(profile: Profile) -> Error {
    match profile {
        Profile::Signed => Error::BadSignature,
        Profile::GroupMac => Error::AuthenticationFailed,
    }
}

/// What flipping bit `bit` (0 = least significant) of byte `index` of a message with `layout`
/// must produce at a receiver that trusts the sender, holds only the message's epoch of the key,
/// accepts the message's profile and has no timestamp policy.
pub fn flip_outcomes(layout: &Layout, index: usize, bit: u8) -> Vec<Error> {
    let auth = auth_error(layout.profile);
    match layout.region(index) {
        Some(Region::Flags) => match bit {
            5..=7 => vec![Error::UnsupportedVersion],
            // signed → group-mac: refused by policy. group-mac → signed: the trailer grows by
            // 64 bytes: too short, or a signature that does not verify.
            4 => match layout.profile {
                Profile::Signed => vec![Error::ProfileNotAllowed],
                Profile::GroupMac => vec![Error::Malformed, Error::BadSignature],
            },
            // The timestamp flag changes where the header ends.
            3 => vec![Error::Malformed, auth],
            // The retain bit is authenticated.
            2 => vec![auth],
            _ => vec![Error::Malformed],
        },
        // Another epoch (not held), or a continuation bit that shifts the sender id.
        Some(Region::Epoch) => vec![Error::KeyNotFound, Error::Malformed, Error::UnknownSender],
        Some(Region::SenderId) => vec![Error::UnknownSender],
        // The key id names one key; another id names none the receiver holds.
        Some(Region::KeyId) => vec![Error::KeyNotFound],
        // The salt is authenticated (and selects the message key).
        Some(Region::Salt) => vec![auth],
        // Another number may be one the receiver accepted (refused by the replay pre-check before
        // the signature) or one too far below its window.
        Some(Region::Seq) => vec![Error::Malformed, auth, Error::Replay, Error::TooOld],
        Some(Region::Timestamp) => vec![Error::Malformed, auth],
        Some(Region::Ciphertext | Region::Tag) => vec![auth],
        Some(Region::Signature) => vec![Error::BadSignature],
        None => vec![],
    }
}

/// `message` with bit `bit` of byte `index` flipped.
pub fn flip(message: &[u8], index: usize, bit: u8) -> Vec<u8> {
    let mut out = message.to_vec();
    if let Some(b) = out.get_mut(index) {
        *b ^= 1 << bit;
    }
    out
}

/// What truncating a message with `layout` to `len` bytes must produce (exact).
pub fn truncate_outcome(layout: &Layout, len: usize) -> Error {
    let trailer = match layout.profile {
        Profile::Signed => mqseal::TAG_LEN + mqseal::SIGNATURE_LEN,
        Profile::GroupMac => mqseal::TAG_LEN,
    };
    if len < layout.header_len + trailer {
        Error::Malformed
    } else {
        auth_error(layout.profile)
    }
}

/// Header of `a` on the body (ciphertext, tag, signature) of `b`.
pub fn swap_header(a: &[u8], b: &[u8]) -> Result<Vec<u8>, Error> {
    let ha = SealedParts::parse(a)?.header_bytes.len();
    let hb = SealedParts::parse(b)?.header_bytes.len();
    let mut out = a.get(..ha).ok_or(Error::Malformed)?.to_vec();
    out.extend_from_slice(b.get(hb..).ok_or(Error::Malformed)?);
    Ok(out)
}

/// An insider's forgery: a message on `topic` claiming to come from `claimed`, with the
/// claimed sender's own AEAD key (any holder of the topic key can derive it, spec §4.4), and —
/// in the `signed` profile — signed with `signer`'s key, the only one the insider has.
///
/// With `signer` = the claimed sender's identity this produces exactly what the sender's own
/// sealer produces for the same header (checked by the tests), so a refusal of a forgery is the
/// signature check, not a malformed forgery.
pub fn forge(
    topic: &str,
    topic_key: &TopicKey,
    header: &Header,
    claimed: &PublicIdentity,
    signer: &Identity,
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    // An insider holding the topic key computes its key id, as a real sealer would.
    let header = &Header {
        key_id: topic_key.key_id(),
        ..*header
    };
    let mut header_bytes = vec![0u8; header.encoded_len()];
    header.encode(&mut header_bytes)?;
    let digest = topic_key.topic_digest();
    if digest != mqseal::vectors_support::topic_digest(topic) {
        return Err(Error::KeyNotFound);
    }
    let mut aad = header_bytes.clone();
    aad.extend_from_slice(&digest);
    let key = topic_key.message_key(header.profile, &claimed.ed25519(), &header.salt);
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    let mut body = payload.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::from(mqseal::vectors_support::nonce(header.seq)),
            &aad,
            body.as_mut_slice().into(),
        )
        .map_err(|_| Error::TooLarge)?;
    body.extend_from_slice(&tag);
    let mut out = header_bytes;
    if header.profile == Profile::Signed {
        let transcript = mqseal::vectors_support::message_signature_digest(&out, &digest, &body);
        let (ed, _) = mqseal::vectors_support::identity_secrets(&signer.seed());
        let signature = SigningKey::from_bytes(&ed).sign(&transcript);
        body.extend_from_slice(&signature.to_bytes());
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A captured signed message re-signed by `signer` (an insider): the header keeps its fields
/// except the sender id, replaced by `claim` if given; ciphertext and tag are kept.
pub fn resign(
    message: &[u8],
    topic: &str,
    claim: Option<SenderId>,
    signer: &Identity,
) -> Result<Vec<u8>, Error> {
    let parts = SealedParts::parse(message)?;
    let mut header = parts.header;
    if let Some(id) = claim {
        header.sender = id;
    }
    let mut out = vec![0u8; header.encoded_len()];
    header.encode(&mut out)?;
    let mut body = parts.ciphertext.to_vec();
    body.extend_from_slice(parts.tag);
    let digest = mqseal::vectors_support::topic_digest(topic);
    let transcript = mqseal::vectors_support::message_signature_digest(&out, &digest, &body);
    let (ed, _) = mqseal::vectors_support::identity_secrets(&signer.seed());
    let signature = SigningKey::from_bytes(&ed).sign(&transcript);
    out.extend_from_slice(&body);
    out.extend_from_slice(&signature.to_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use mqseal::{Opener, SealOptions, Sealer, TreeKey};

    #[test]
    fn layout_and_forgery_match_the_real_sealer() {
        let alice = Identity::from_seed([1; 32]);
        let key = TreeKey::from_secret("a/#", 3, [2; 32]).unwrap();
        for profile in [Profile::Signed, Profile::GroupMac] {
            let mut sealer = Sealer::new(alice.clone(), profile, 0);
            sealer.add_key(key.clone());
            sealer.set_sequence(300, u64::MAX);
            let options = SealOptions {
                retain: true,
                timestamp: Some(1_700_000_000),
            };
            let real = sealer.seal_with("a/b", b"payload", &options).unwrap();
            let layout = Layout::of(&real).unwrap();
            let lens: Vec<usize> = layout.regions.iter().map(|(_, s, e)| e - s).collect();
            let mut expect = vec![1, 1, 4, 4, 8, 2, 5, 7, 16];
            if profile == Profile::Signed {
                expect.push(64);
            }
            assert_eq!(lens, expect);
            assert_eq!(layout.regions.last().unwrap().2, real.len());
            let header = mqseal::inspect(&real).unwrap();
            let topic_key = key.topic_key("a/b").unwrap();
            let same = forge(
                "a/b",
                &topic_key,
                &header,
                &alice.public(),
                &alice,
                b"payload",
            );
            assert_eq!(same.unwrap(), real);
            if profile == Profile::Signed {
                assert_eq!(resign(&real, "a/b", None, &alice).unwrap(), real);
            }
            let mut opener = Opener::new();
            opener.trust_group_mac_sender(alice.public(), "#").unwrap();
            opener.add_key(key.clone());
            assert_eq!(opener.open("a/b", &real).unwrap().payload, b"payload");
            assert_eq!(
                truncate_outcome(&layout, real.len() - 1),
                auth_error(profile)
            );
            assert_eq!(truncate_outcome(&layout, 5), Error::Malformed);
        }
    }
}
