//! Shared pieces of the text formats: hex, percent-encoded filters, decimal numbers, peer names,
//! and the checksummed envelope of machine-written files.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Exactly `2 * N` hex digits (either case) → `N` bytes.
pub(crate) fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A decimal `u64` without sign or leading zeros.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A decimal `u32` without sign or leading zeros.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Percent-encodes a key filter so it is one whitespace-free token: bytes outside `!`..=`~`
/// and `%` itself become `%XX` (uppercase hex). `plant/#` stays `plant/#`; `my room/#` becomes
/// `my%20room/#`.
pub fn encode_filter(filter: &str) -> String {
    let mut out = String::with_capacity(filter.len());
    for b in filter.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`encode_filter`]; only the canonical encoding is accepted (so one filter has
/// exactly one spelling).
pub fn decode_filter(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut it = token.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hi = it.next()?;
            let lo = it.next()?;
            let pair = [hi, lo];
            let s = std::str::from_utf8(&pair).ok()?;
            if s.bytes().any(|c| c.is_ascii_lowercase()) {
                return None;
            }
            bytes.push(u8::from_str_radix(s, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let s = String::from_utf8(bytes).ok()?;
    (encode_filter(&s) == token).then_some(s)
}

/// Whether `name` is a valid peer name: 1..=64 of `A-Z a-z 0-9 . _ - @`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Checks a peer name.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Wraps the body of a machine-written file: `<magic>\n<body lines>checksum <sha256>\n`, where
/// the checksum is the SHA-256 of every byte before the `checksum` line. Each body line must end
/// with `\n`.
pub(crate) fn seal_text(magic: &str, body: &str) -> String {
    let mut out = String::with_capacity(magic.len() + body.len() + 80);
    out.push_str(magic);
    out.push('\n');
    out.push_str(body);
    let sum = sha256_hex(out.as_bytes());
    out.push_str("checksum ");
    out.push_str(&sum);
    out.push('\n');
    out
}

/// Verifies a machine-written file and returns its body lines with their 1-based line numbers.
pub(crate) fn open_text<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: &str,
) -> Result<Vec<(usize, &'a str)>> {
    let corrupt = |line: Option<usize>, reason: &str| StoreError::corrupt(path, line, reason);
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt(None, "not UTF-8 text"))?;
    if text.is_empty() {
        return Err(corrupt(None, "empty file (truncated?)"));
    }
    let body_end = text
        .strip_suffix('\n')
        .ok_or_else(|| corrupt(None, "does not end with a newline (truncated?)"))?;
    let (before, last) = match body_end.rfind('\n') {
        Some(i) => (
            text.get(..=i).unwrap_or(""),
            body_end.get(i + 1..).unwrap_or(""),
        ),
        None => ("", body_end),
    };
    let lines: Vec<&str> = before.lines().collect();
    let checksum_line = lines.len() + 1;
    let first = lines.first().copied().unwrap_or(last);
    if first != magic {
        let kind = magic.split(' ').next().unwrap_or(magic);
        let reason = if first.starts_with(&format!("{kind} ")) {
            format!("unsupported format version {first:?} (this build reads {magic:?})")
        } else {
            format!("first line is not {magic:?} (not this kind of file?)")
        };
        return Err(corrupt(Some(1), &reason));
    }
    let sum = last.strip_prefix("checksum ").ok_or_else(|| {
        corrupt(
            Some(checksum_line),
            "last line is not the checksum line (truncated?)",
        )
    })?;
    if sum != sha256_hex(before.as_bytes()) {
        return Err(corrupt(
            Some(checksum_line),
            "checksum mismatch (file damaged or edited by hand)",
        ));
    }
    Ok(lines
        .into_iter()
        .enumerate()
        .skip(1)
        .map(|(i, l)| (i + 1, l))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filter_encoding_round_trips_and_is_canonical() {
        for f in ["#", "plant/#", "my room/#", "a%b", "ü/x", "tab\there"] {
            let e = encode_filter(f);
            assert!(!e.contains(char::is_whitespace), "{e}");
            assert_eq!(decode_filter(&e).as_deref(), Some(f));
        }
        assert_eq!(encode_filter("my room/#"), "my%20room/#");
        assert_eq!(decode_filter("a%2"), None);
        assert_eq!(decode_filter("a%2x"), None);
        assert_eq!(decode_filter("%61"), None); // 'a' must not be encoded
        assert_eq!(decode_filter("%c3%bc"), None); // lowercase hex is not canonical
        assert_eq!(decode_filter("%FF"), None); // not UTF-8
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", "01", "1 ", "18446744073709551616", "0x1"] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
        assert_eq!(parse_u32("4294967296"), None);
    }

    #[test]
    fn sealed_text_detects_damage() {
        let p = Path::new("f");
        let t = seal_text("mqseal-test 1", "a 1\nb 2\n");
        let lines = open_text(p, t.as_bytes(), "mqseal-test 1").unwrap();
        assert_eq!(lines, vec![(2, "a 1"), (3, "b 2")]);
        let empty = seal_text("mqseal-test 1", "");
        assert!(
            open_text(p, empty.as_bytes(), "mqseal-test 1")
                .unwrap()
                .is_empty()
        );
        for n in 0..t.len() {
            assert!(
                open_text(p, &t.as_bytes()[..n], "mqseal-test 1").is_err(),
                "{n}"
            );
        }
        let edited = t.replace("a 1", "a 2");
        assert!(open_text(p, edited.as_bytes(), "mqseal-test 1").is_err());
        let err = open_text(p, t.as_bytes(), "mqseal-test 2").unwrap_err();
        assert!(
            err.to_string().contains("unsupported format version"),
            "{err}"
        );
        let err = open_text(p, t.as_bytes(), "mqseal-other 1").unwrap_err();
        assert!(err.to_string().contains("not this kind"), "{err}");
    }
}
