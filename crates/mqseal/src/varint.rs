//! Unsigned LEB128 varints, the one integer encoding on the wire (also used by postcard).
//!
//! Decoding is strict: the encoding must be minimal (no redundant `0x80 … 0x00` tail) and must
//! fit the target width, so every value has exactly one encoding.

use crate::error::{Error, Result};

/// Maximum encoded length of a `u64`.
pub const MAX_LEN_U64: usize = 10;

/// Number of bytes [`encode`] writes for `value`.
pub const fn len(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

/// Encodes `value` into `out`, returning the number of bytes written.
pub fn encode(mut value: u64, out: &mut [u8]) -> Result<usize> {
    let n = len(value);
    let out = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
    for byte in out.iter_mut() {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        *byte = if value == 0 { low } else { low | 0x80 };
    }
    Ok(n)
}

/// Decodes a minimal varint no larger than `max` from the front of `input`; returns the value and
/// the bytes consumed.
pub fn decode(input: &[u8], max: u64) -> Result<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(MAX_LEN_U64) {
        let part = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && part > 1 {
            return Err(Error::Malformed);
        }
        value |= part << shift;
        if byte & 0x80 == 0 {
            // Minimal: the last byte is non-zero unless the value is zero itself.
            if byte == 0 && i > 0 {
                return Err(Error::Malformed);
            }
            if value > max {
                return Err(Error::Malformed);
            }
            return Ok((value, i + 1));
        }
    }
    Err(Error::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = [0u8; MAX_LEN_U64];
            let n = encode(v, &mut buf).unwrap();
            assert_eq!(n, len(v));
            assert_eq!(decode(&buf[..n], u64::MAX).unwrap(), (v, n));
        }
    }

    #[test]
    fn rejects_non_minimal_overflow_and_truncation() {
        assert_eq!(decode(&[0x80, 0x00], u64::MAX), Err(Error::Malformed));
        assert_eq!(decode(&[0x81], u64::MAX), Err(Error::Malformed));
        assert_eq!(decode(&[], u64::MAX), Err(Error::Malformed));
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert_eq!(decode(&over, u64::MAX), Err(Error::Malformed));
        assert_eq!(
            decode(&[0x80, 0x80, 0x80, 0x80, 0x10], u32::MAX as u64),
            Err(Error::Malformed)
        );
        assert_eq!(decode(&[0xac, 0x02], u64::MAX), Ok((300, 2)));
    }
}
