//! The sealed envelope: header encoding and the split of a sealed message into its parts.
//!
//! ```text
//! sealed = header || ciphertext || tag(16) [|| signature(64) if profile = signed]
//! header = flags(1) || varint(epoch) || sender_id(4) || key_id(4) || salt(8) || varint(seq)
//!          [|| varint(timestamp)]
//! flags  = version(3 bits, =2) | profile(1) | has_timestamp(1) | retain(1) | reserved(2, =0)
//! ```
//! Spec: `spec/mqseal-v2.md`, section "Sealed envelope".

use crate::error::{Error, Result};
use crate::identity::SenderId;
use crate::varint;

/// Wire format version carried in the top three bits of the first byte.
pub const VERSION: u8 = 2;
/// Length of the key id: which key (tree, epoch, topic) a message is sealed under.
pub const KEY_ID_LEN: usize = 4;
/// Length of the per-message random salt mixed into the message key.
pub const SALT_LEN: usize = 8;
/// Length of the AEAD tag.
pub const TAG_LEN: usize = 16;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Longest possible header: flags, 5-byte epoch, sender id, key id, salt, 10-byte seq, 10-byte
/// timestamp.
pub const MAX_HEADER_LEN: usize =
    1 + 5 + 4 + KEY_ID_LEN + SALT_LEN + varint::MAX_LEN_U64 + varint::MAX_LEN_U64;
/// Upper bound of the bytes sealing adds to a payload in the `signed` profile.
pub const MAX_OVERHEAD_SIGNED: usize = MAX_HEADER_LEN + TAG_LEN + SIGNATURE_LEN;
/// Upper bound of the bytes sealing adds to a payload in the `group-mac` profile.
pub const MAX_OVERHEAD_GROUP_MAC: usize = MAX_HEADER_LEN + TAG_LEN;
/// Largest MQTT payload (the remaining length of a PUBLISH cannot exceed 268 435 455).
pub const MAX_SEALED_LEN: usize = 268_435_455;

const FLAG_GROUP_MAC: u8 = 0b0001_0000;
const FLAG_TIMESTAMP: u8 = 0b0000_1000;
const FLAG_RETAIN: u8 = 0b0000_0100;
const FLAG_RESERVED: u8 = 0b0000_0011;

/// How a message is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// AEAD plus an Ed25519 signature by the sender: nobody but the sender can produce it.
    Signed,
    /// AEAD only (30 bytes less): any holder of the topic key can forge any sender. For
    /// constrained links where every key holder is trusted.
    GroupMac,
}

impl Profile {
    /// The profile bit (0 signed, 1 group-mac), also the byte fed into the sender-key label.
    pub const fn code(self) -> u8 {
        match self {
            Profile::Signed => 0,
            Profile::GroupMac => 1,
        }
    }

    /// Stable lowercase name: `signed` or `group-mac`.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Signed => "signed",
            Profile::GroupMac => "group-mac",
        }
    }

    /// Bytes after the ciphertext: the tag, plus the signature in the signed profile.
    pub const fn trailer_len(self) -> usize {
        match self {
            Profile::Signed => TAG_LEN + SIGNATURE_LEN,
            Profile::GroupMac => TAG_LEN,
        }
    }
}

/// The cleartext header of a sealed message (authenticated, not encrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Authentication profile.
    pub profile: Profile,
    /// Whether the publisher published the message retained.
    pub retain: bool,
    /// Epoch of the key the message is sealed under.
    pub epoch: u32,
    /// The sender's 4-byte id (fingerprint prefix).
    pub sender: SenderId,
    /// Which key the message is sealed under (derived from the topic key; spec section 4.6).
    pub key_id: [u8; KEY_ID_LEN],
    /// Fresh random bytes of this message, mixed into its message key (spec section 4.7).
    pub salt: [u8; SALT_LEN],
    /// The sender's sequence number, also the AEAD nonce.
    pub seq: u64,
    /// Optional sender timestamp, seconds since the Unix epoch.
    pub timestamp: Option<u64>,
}

impl Header {
    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        1 + varint::len(u64::from(self.epoch))
            + 4
            + KEY_ID_LEN
            + SALT_LEN
            + varint::len(self.seq)
            + self.timestamp.map_or(0, varint::len)
    }

    /// Writes the header to the front of `out`, returning its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.encoded_len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut flags = VERSION << 5;
        if self.profile == Profile::GroupMac {
            flags |= FLAG_GROUP_MAC;
        }
        if self.timestamp.is_some() {
            flags |= FLAG_TIMESTAMP;
        }
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        let (first, mut rest) = out.split_first_mut().ok_or(Error::BufferTooSmall)?;
        *first = flags;
        let n = varint::encode(u64::from(self.epoch), rest)?;
        rest = rest.get_mut(n..).ok_or(Error::BufferTooSmall)?;
        let (id, tail) = rest.split_at_mut_checked(4).ok_or(Error::BufferTooSmall)?;
        id.copy_from_slice(&self.sender.0);
        let (kid, tail) = tail
            .split_at_mut_checked(KEY_ID_LEN)
            .ok_or(Error::BufferTooSmall)?;
        kid.copy_from_slice(&self.key_id);
        let (salt, tail) = tail
            .split_at_mut_checked(SALT_LEN)
            .ok_or(Error::BufferTooSmall)?;
        salt.copy_from_slice(&self.salt);
        rest = tail;
        let n = varint::encode(self.seq, rest)?;
        rest = rest.get_mut(n..).ok_or(Error::BufferTooSmall)?;
        if let Some(ts) = self.timestamp {
            varint::encode(ts, rest)?;
        }
        Ok(len)
    }

    /// Parses a header from the front of `input`, returning it and its length.
    pub fn decode(input: &[u8]) -> Result<(Header, usize)> {
        let (&flags, mut rest) = input.split_first().ok_or(Error::Malformed)?;
        if flags >> 5 != VERSION {
            return Err(Error::UnsupportedVersion);
        }
        if flags & FLAG_RESERVED != 0 {
            return Err(Error::Malformed);
        }
        let profile = if flags & FLAG_GROUP_MAC != 0 {
            Profile::GroupMac
        } else {
            Profile::Signed
        };
        let (epoch, n) = varint::decode(rest, u64::from(u32::MAX))?;
        rest = rest.get(n..).ok_or(Error::Malformed)?;
        let (id, tail) = rest.split_first_chunk::<4>().ok_or(Error::Malformed)?;
        let (key_id, tail) = tail
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or(Error::Malformed)?;
        let (salt, tail) = tail
            .split_first_chunk::<SALT_LEN>()
            .ok_or(Error::Malformed)?;
        rest = tail;
        let (seq, n) = varint::decode(rest, u64::MAX)?;
        rest = rest.get(n..).ok_or(Error::Malformed)?;
        let timestamp = if flags & FLAG_TIMESTAMP != 0 {
            let (ts, n) = varint::decode(rest, u64::MAX)?;
            rest = rest.get(n..).ok_or(Error::Malformed)?;
            Some(ts)
        } else {
            None
        };
        let header = Header {
            profile,
            retain: flags & FLAG_RETAIN != 0,
            epoch: u32::try_from(epoch).map_err(|_| Error::Malformed)?,
            sender: SenderId(*id),
            key_id: *key_id,
            salt: *salt,
            seq,
            timestamp,
        };
        Ok((header, input.len() - rest.len()))
    }
}

/// A sealed message split into its parts (nothing verified yet).
#[derive(Debug, Clone, Copy)]
pub struct SealedParts<'a> {
    /// The decoded header.
    pub header: Header,
    /// The header's exact bytes (authenticated as they are).
    pub header_bytes: &'a [u8],
    /// The encrypted payload.
    pub ciphertext: &'a [u8],
    /// The Poly1305 tag.
    pub tag: &'a [u8; TAG_LEN],
    /// The Ed25519 signature (signed profile only).
    pub signature: Option<&'a [u8; SIGNATURE_LEN]>,
}

impl<'a> SealedParts<'a> {
    /// Splits `message` into header, ciphertext, tag and signature. Fails with
    /// [`Error::Malformed`] if it is too short for its profile, [`Error::UnsupportedVersion`] on an
    /// unknown version, [`Error::TooLarge`] above the MQTT payload limit.
    pub fn parse(message: &'a [u8]) -> Result<SealedParts<'a>> {
        if message.len() > MAX_SEALED_LEN {
            return Err(Error::TooLarge);
        }
        let (header, hlen) = Header::decode(message)?;
        let (header_bytes, body) = message.split_at_checked(hlen).ok_or(Error::Malformed)?;
        let ct_len = body
            .len()
            .checked_sub(header.profile.trailer_len())
            .ok_or(Error::Malformed)?;
        let (ciphertext, trailer) = body.split_at_checked(ct_len).ok_or(Error::Malformed)?;
        let (tag, sig) = trailer
            .split_first_chunk::<TAG_LEN>()
            .ok_or(Error::Malformed)?;
        let signature = match header.profile {
            Profile::Signed => Some(sig.try_into().map_err(|_| Error::Malformed)?),
            Profile::GroupMac => None,
        };
        Ok(SealedParts {
            header,
            header_bytes,
            ciphertext,
            tag,
            signature,
        })
    }
}

/// Decodes the header of a sealed message without any key (what `mqseal inspect` shows).
///
/// ```
/// let err = mqseal::inspect(b"{\"temp\": 21}").unwrap_err();
/// assert_eq!(err, mqseal::Error::UnsupportedVersion);
/// ```
pub fn inspect(message: &[u8]) -> Result<Header> {
    SealedParts::parse(message).map(|p| p.header)
}

/// The 12-byte ChaCha20-Poly1305 nonce for a sequence number: 4 zero bytes, then `seq` big-endian.
pub(crate) fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    let [_, _, _, _, tail @ ..] = &mut n;
    *tail = seq.to_be_bytes();
    n
}

/// The AEAD associated data: header bytes followed by the 32-byte topic digest.
pub(crate) fn associated_data(
    header_bytes: &[u8],
    topic_digest: &[u8; 32],
    buf: &mut [u8; MAX_HEADER_LEN + 32],
) -> Result<usize> {
    let len = header_bytes.len() + 32;
    let dst = buf.get_mut(..len).ok_or(Error::Malformed)?;
    let (h, d) = dst.split_at_mut(header_bytes.len());
    h.copy_from_slice(header_bytes);
    d.copy_from_slice(topic_digest);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            profile: Profile::Signed,
            retain: false,
            epoch: 1,
            sender: SenderId([1, 2, 3, 4]),
            key_id: [5, 6, 7, 8],
            salt: [9; 8],
            seq: 300,
            timestamp: None,
        }
    }

    #[test]
    fn header_round_trip_and_layout() {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let h = header();
        let n = h.encode(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[
                0x40, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 0xac, 0x02
            ]
        );
        assert_eq!(Header::decode(&buf[..n]).unwrap(), (h, n));
        let h2 = Header {
            profile: Profile::GroupMac,
            retain: true,
            timestamp: Some(u64::MAX),
            epoch: u32::MAX,
            seq: u64::MAX,
            ..h
        };
        let n = h2.encode(&mut buf).unwrap();
        assert_eq!(n, MAX_HEADER_LEN);
        assert_eq!(buf[0], 0x40 | 0x10 | 0x08 | 0x04);
        assert_eq!(Header::decode(&buf[..n]).unwrap(), (h2, n));
    }

    #[test]
    fn rejects_bad_flags() {
        let mut v2 = [0x40, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 0];
        assert!(Header::decode(&v2).is_ok());
        v2[0] = 0x20; // version 1
        assert_eq!(Header::decode(&v2), Err(Error::UnsupportedVersion));
        v2[0] = 0x41; // reserved bit
        assert_eq!(Header::decode(&v2), Err(Error::Malformed));
        v2[0] = 0x40;
        assert_eq!(Header::decode(&v2[..18]), Err(Error::Malformed));
        assert_eq!(Header::decode(&v2[..9]), Err(Error::Malformed));
        assert_eq!(Header::decode(&[]), Err(Error::Malformed));
    }

    #[test]
    fn overhead_at_small_sequence_numbers_with_a_timestamp() {
        // Where v2 lands (spec section 5, "Overhead"): 104 signed, 40 group-mac.
        let h = Header {
            seq: 5,
            timestamp: Some(1_800_000_000),
            ..header()
        };
        assert_eq!(h.encoded_len() + Profile::Signed.trailer_len(), 104);
        let small = Header {
            profile: Profile::GroupMac,
            ..h
        };
        assert_eq!(small.encoded_len() + Profile::GroupMac.trailer_len(), 40);
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }
}
