//! The `issued` file (public, mode 0644): the grants this store's identity issued, so that a
//! rotation can re-grant the new epoch to every remaining member.
//!
//! ```text
//! mqseal-issued 1
//! grant <root filter> <epoch> <granted filter> <recipient name> mqseal-pub1:<hex>
//! checksum <sha256 hex of every byte above>
//! ```
//!
//! `root filter` is the held key the grant was derived from; `granted filter` is the filter the
//! recipient received (equal to the root, or narrower).

use std::path::Path;

use mqseal::PublicIdentity;

use crate::error::{Result, StoreError};
use crate::text::{decode_filter, encode_filter, open_text, parse_u32, seal_text, valid_name};
use crate::trust::{parse_public_token, public_token};

/// First line of the `issued` file.
pub const ISSUED_MAGIC: &str = "mqseal-issued 1";

/// One grant issued by this store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedGrant {
    /// The held key's filter the grant was derived from.
    pub root_filter: String,
    /// The epoch.
    pub epoch: u32,
    /// The filter the recipient received.
    pub granted_filter: String,
    /// The recipient's name (informative).
    pub recipient_name: String,
    /// The recipient.
    pub recipient: PublicIdentity,
}

/// Formats the `issued` file.
pub fn format_issued(grants: &[IssuedGrant]) -> String {
    let mut body = String::new();
    for g in grants {
        body.push_str(&format!(
            "grant {} {} {} {} {}\n",
            encode_filter(&g.root_filter),
            g.epoch,
            encode_filter(&g.granted_filter),
            g.recipient_name,
            public_token(&g.recipient)
        ));
    }
    seal_text(ISSUED_MAGIC, &body)
}

/// Parses and verifies the `issued` file.
pub fn parse_issued(path: &Path, bytes: &[u8]) -> Result<Vec<IssuedGrant>> {
    let mut out = Vec::new();
    for (n, line) in open_text(path, bytes, ISSUED_MAGIC)? {
        let bad = |reason: &str| StoreError::corrupt(path, Some(n), reason);
        let f: Vec<&str> = line.split(' ').collect();
        let [kind, root, epoch, granted, name, token] = f.as_slice() else {
            return Err(bad(
                "expected: grant <root> <epoch> <filter> <name> <public key>",
            ));
        };
        if *kind != "grant" {
            return Err(bad("unknown record"));
        }
        if !valid_name(name) {
            return Err(bad("bad recipient name"));
        }
        out.push(IssuedGrant {
            root_filter: decode_filter(root).ok_or_else(|| bad("bad root filter"))?,
            epoch: parse_u32(epoch).ok_or_else(|| bad("bad epoch"))?,
            granted_filter: decode_filter(granted).ok_or_else(|| bad("bad granted filter"))?,
            recipient_name: (*name).to_string(),
            recipient: parse_public_token(token).map_err(|e| bad(&e.to_string()))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mqseal::Identity;

    #[test]
    fn round_trip() {
        let g = IssuedGrant {
            root_filter: "plant/#".into(),
            epoch: 3,
            granted_filter: "plant/7/#".into(),
            recipient_name: "bob".into(),
            recipient: Identity::from_seed([5; 32]).public(),
        };
        let text = format_issued(std::slice::from_ref(&g));
        assert_eq!(
            parse_issued(Path::new("issued"), text.as_bytes()).unwrap(),
            vec![g]
        );
    }
}
