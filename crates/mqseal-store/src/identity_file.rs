//! `identity.key` (the secret seed, mode 0600) and `identity.pub` (a `trusted`-file line).
//!
//! ```text
//! # mqseal identity secret key: keep private (mode 0600) and backed up.
//! # name: sensor-7
//! # fingerprint: <64 hex>
//! mqseal-secret1:<64 hex digits: the 32-byte identity seed>
//! ```

use std::path::Path;

use mqseal::{Identity, SEED_LEN};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::trust::{Roles, TrustedPeer, parse_peer_line};

/// Prefix of the secret seed line.
pub const SECRET_PREFIX: &str = "mqseal-secret1:";

/// The contents of `identity.key` for `identity` named `name`.
pub fn format_identity_key(identity: &Identity, name: &str) -> Zeroizing<String> {
    let seed = identity.seed();
    let mut out = Zeroizing::new(String::with_capacity(256));
    out.push_str("# mqseal identity secret key: keep private (mode 0600) and backed up.\n");
    out.push_str(&format!("# name: {name}\n"));
    out.push_str(&format!("# fingerprint: {}\n", identity.fingerprint()));
    out.push_str(SECRET_PREFIX);
    out.push_str(&Zeroizing::new(hex::encode(*seed)));
    out.push('\n');
    out
}

/// Parses `identity.key`: `#` comments and blank lines are ignored; exactly one
/// `mqseal-secret1:` line with 64 hex digits.
pub fn parse_identity_key(path: &Path, bytes: &[u8]) -> Result<Identity> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| StoreError::corrupt(path, None, "not UTF-8 text"))?;
    let mut found: Option<(usize, &str)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if found.is_some() {
            return Err(StoreError::corrupt(
                path,
                Some(i + 1),
                "more than one key line",
            ));
        }
        found = Some((i + 1, line));
    }
    let (n, line) = found.ok_or_else(|| {
        StoreError::corrupt(path, None, "no mqseal-secret1: line (empty or truncated?)")
    })?;
    let hex_seed = line.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        StoreError::corrupt(
            path,
            Some(n),
            "the key line does not start with \"mqseal-secret1:\"",
        )
    })?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    if hex_seed.len() != 2 * SEED_LEN || hex::decode_to_slice(hex_seed, seed.as_mut()).is_err() {
        return Err(StoreError::corrupt(
            path,
            Some(n),
            "the secret is not 64 hex digits (truncated?)",
        ));
    }
    Ok(Identity::from_seed(*seed))
}

/// The contents of `identity.pub`: one `trusted`-file line (roles omitted, so appending it to a
/// peer's `trusted` file trusts it as a sender only).
pub fn format_identity_pub(identity: &Identity, name: &str) -> String {
    let line = TrustedPeer::new(name, identity.public(), Roles::SENDER).line();
    let without_roles = line
        .strip_suffix(" sender")
        .map_or(line.clone(), str::to_string);
    format!("{without_roles}\n")
}

/// Parses `identity.pub` (comments allowed, exactly one peer line) into (name, public identity).
pub fn parse_identity_pub(path: &Path, bytes: &[u8]) -> Result<TrustedPeer> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| StoreError::corrupt(path, None, "not UTF-8 text"))?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (n, line) = lines.next().ok_or_else(|| {
        StoreError::corrupt(path, None, "no public key line (empty or truncated?)")
    })?;
    if let Some((m, _)) = lines.next() {
        return Err(StoreError::corrupt(path, Some(m), "more than one line"));
    }
    parse_peer_line(line).map_err(|r| StoreError::corrupt(path, Some(n), r))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_file_round_trips_and_truncations_fail() {
        let id = Identity::from_seed([9; 32]);
        let text = format_identity_key(&id, "me");
        let p = Path::new("identity.key");
        let back = parse_identity_key(p, text.as_bytes()).unwrap();
        assert_eq!(back.public(), id.public());
        // Every truncation that cuts into the key line fails; none parses to another identity.
        for n in 0..text.len() - 1 {
            if let Ok(other) = parse_identity_key(p, &text.as_bytes()[..n]) {
                panic!("prefix {n} parsed as {:?}", other.fingerprint());
            }
        }
        let two = format!("{}{}", &*text, &text[text.find(SECRET_PREFIX).unwrap()..]);
        assert!(
            parse_identity_key(p, two.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("more than one")
        );
    }

    #[test]
    fn pub_file_is_a_trusted_line() {
        let id = Identity::from_seed([9; 32]);
        let text = format_identity_pub(&id, "me");
        assert!(!text.contains("sender"));
        let peer = parse_identity_pub(Path::new("identity.pub"), text.as_bytes()).unwrap();
        assert_eq!((peer.name.as_str(), &peer.public), ("me", &id.public()));
    }
}
