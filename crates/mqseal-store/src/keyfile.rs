//! The `keys` file (mode 0600): tree keys held per lineage (filter, issuer) and epoch, their
//! validities and retirement times, and tombstones of keys removed after rotation.
//!
//! ```text
//! mqseal-keys 1
//! key <filter> <epoch> <secret: 64 hex> [not-before=<unix seconds>] [valid-until=<unix seconds>]
//!     [not-after=<unix seconds>] [issuer=<fingerprint hex>]
//! retired <filter> <epoch> [issuer=<fingerprint hex>]
//! checksum <sha256 hex of every byte above>
//! ```

use std::fmt;
use std::path::Path;

use mqseal::{Fingerprint, KEY_LEN, TreeKey, Validity};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::text::{
    decode_filter, encode_filter, from_hex, open_text, parse_u32, parse_u64, seal_text, to_hex,
};

/// First line of the `keys` file.
pub const KEYS_MAGIC: &str = "mqseal-keys 1";

/// A tree key held by the store.
#[derive(Clone)]
pub struct HeldKey {
    /// The key (filter, epoch, secret, and its validity: `not-before=` / `valid-until=`).
    pub key: TreeKey,
    /// Set once a newer epoch of the same filter arrived: openers refuse this epoch after this
    /// time (seconds since the Unix epoch) and sealers no longer use it.
    pub not_after: Option<u64>,
    /// Fingerprint of the identity whose grant delivered the key (`None`: created here).
    pub issuer: Option<Fingerprint>,
}

impl HeldKey {
    /// The key's filter.
    pub fn filter(&self) -> &str {
        self.key.filter().as_str()
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u32 {
        self.key.epoch()
    }

    /// The key's lineage: (filter, issuer) (keystore spec section 5).
    pub fn lineage(&self) -> (&str, Option<Fingerprint>) {
        (self.filter(), self.issuer)
    }

    /// Whether openers still accept this epoch at `now` (its retirement, if any, not passed).
    pub fn is_live(&self, now: u64) -> bool {
        self.not_after.is_none_or(|t| now <= t)
    }

    /// Whether the key is of no use any more at `now`: retired and past its grace period, or
    /// past its validity's `valid-until` by more than `grace` (what pruning removes).
    pub fn is_spent(&self, now: u64, grace: u64) -> bool {
        !self.is_live(now)
            || self
                .key
                .validity()
                .not_after()
                .is_some_and(|end| now > end.saturating_add(grace))
    }
}

impl fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldKey")
            .field("filter", &self.filter())
            .field("epoch", &self.epoch())
            .field("validity", &self.key.validity())
            .field("not_after", &self.not_after)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A key that was removed (after its grace period, or by hand): its lineage and epoch are
/// remembered so that a replayed old grant cannot bring it back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tombstone {
    /// The key filter.
    pub filter: String,
    /// The epoch.
    pub epoch: u32,
    /// The issuer of the removed key (`None`: created here).
    pub issuer: Option<Fingerprint>,
}

/// Everything in the `keys` file.
#[derive(Debug, Clone, Default)]
pub struct KeyFile {
    /// Held keys.
    pub keys: Vec<HeldKey>,
    /// Removed keys.
    pub retired: Vec<Tombstone>,
}

impl KeyFile {
    /// The newest epoch held or retired in lineage (`filter`, `issuer`).
    pub fn newest_epoch(&self, filter: &str, issuer: Option<Fingerprint>) -> Option<u32> {
        let held = self
            .keys
            .iter()
            .filter(|k| k.lineage() == (filter, issuer))
            .map(HeldKey::epoch);
        let gone = self
            .retired
            .iter()
            .filter(|t| t.filter == filter && t.issuer == issuer)
            .map(|t| t.epoch);
        held.chain(gone).max()
    }

    /// Formats the file (keys, then tombstones, each sorted by filter, epoch, then issuer with
    /// absent first).
    pub fn format(&self) -> Zeroizing<String> {
        let mut keys: Vec<&HeldKey> = self.keys.iter().collect();
        keys.sort_by(|a, b| {
            (a.filter(), a.epoch(), a.issuer).cmp(&(b.filter(), b.epoch(), b.issuer))
        });
        let mut retired: Vec<&Tombstone> = self.retired.iter().collect();
        retired.sort();
        // Sized up front so the buffer holding secrets is never reallocated (left behind).
        let capacity = self
            .keys
            .iter()
            .map(|k| 3 * k.filter().len() + 200)
            .sum::<usize>()
            + self
                .retired
                .iter()
                .map(|t| 3 * t.filter.len() + 32)
                .sum::<usize>();
        let mut body = Zeroizing::new(String::with_capacity(capacity));
        for k in keys {
            body.push_str("key ");
            body.push_str(&encode_filter(k.filter()));
            body.push_str(&format!(" {} ", k.epoch()));
            body.push_str(&Zeroizing::new(to_hex(&*k.key.secret_bytes())));
            let validity = k.key.validity();
            if validity.not_before() > 0 {
                body.push_str(&format!(" not-before={}", validity.not_before()));
            }
            if let Some(t) = validity.not_after() {
                body.push_str(&format!(" valid-until={t}"));
            }
            if let Some(t) = k.not_after {
                body.push_str(&format!(" not-after={t}"));
            }
            if let Some(fp) = k.issuer {
                body.push_str(&format!(" issuer={fp}"));
            }
            body.push('\n');
        }
        for t in retired {
            body.push_str(&format!("retired {} {}", encode_filter(&t.filter), t.epoch));
            if let Some(fp) = t.issuer {
                body.push_str(&format!(" issuer={fp}"));
            }
            body.push('\n');
        }
        Zeroizing::new(seal_text(KEYS_MAGIC, &body))
    }

    /// Parses and verifies the file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<KeyFile> {
        let mut file = KeyFile::default();
        for (n, line) in open_text(path, bytes, KEYS_MAGIC)? {
            let bad = |reason: String| StoreError::corrupt(path, Some(n), reason);
            let mut fields = line.split(' ');
            match fields.next() {
                Some("key") => {
                    let filter = fields
                        .next()
                        .and_then(decode_filter)
                        .ok_or_else(|| bad("bad filter".into()))?;
                    let epoch = fields
                        .next()
                        .and_then(parse_u32)
                        .ok_or_else(|| bad("bad epoch".into()))?;
                    let secret: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
                        fields
                            .next()
                            .and_then(from_hex::<KEY_LEN>)
                            .ok_or_else(|| bad("secret is not 64 hex digits".into()))?,
                    );
                    let key = TreeKey::from_secret(&filter, epoch, *secret)
                        .map_err(|e| bad(format!("filter {filter:?}: {e}")))?;
                    let mut held = HeldKey {
                        key,
                        not_after: None,
                        issuer: None,
                    };
                    let (mut not_before, mut valid_until) = (None, None);
                    for attr in fields {
                        if let Some(v) = attr.strip_prefix("not-before=") {
                            if not_before.is_some() {
                                return Err(bad("not-before given twice".into()));
                            }
                            not_before = Some(
                                parse_u64(v).ok_or_else(|| bad(format!("bad not-before {v:?}")))?,
                            );
                        } else if let Some(v) = attr.strip_prefix("valid-until=") {
                            if valid_until.is_some() {
                                return Err(bad("valid-until given twice".into()));
                            }
                            valid_until = Some(
                                parse_u64(v)
                                    .ok_or_else(|| bad(format!("bad valid-until {v:?}")))?,
                            );
                        } else if let Some(v) = attr.strip_prefix("not-after=") {
                            if held.not_after.is_some() {
                                return Err(bad("not-after given twice".into()));
                            }
                            held.not_after = Some(
                                parse_u64(v).ok_or_else(|| bad(format!("bad not-after {v:?}")))?,
                            );
                        } else if let Some(v) = attr.strip_prefix("issuer=") {
                            if held.issuer.is_some() {
                                return Err(bad("issuer given twice".into()));
                            }
                            held.issuer = Some(Fingerprint(
                                from_hex::<32>(v)
                                    .ok_or_else(|| bad(format!("bad issuer {v:?}")))?,
                            ));
                        } else {
                            // Name the attribute, never echo the value (it could be a secret).
                            let name = attr.split_once('=').map_or("(no '=')", |(n, _)| n);
                            return Err(bad(format!(
                                "unknown attribute {:?}",
                                name.get(..24).unwrap_or(name)
                            )));
                        }
                    }
                    let validity = Validity::new(not_before.unwrap_or(0), valid_until)
                        .map_err(|_| {
                            bad("valid-until is 0 or before not-before (expected not-before <= valid-until, both seconds)".into())
                        })?;
                    held.key = held.key.with_validity(validity);
                    if file
                        .keys
                        .iter()
                        .any(|k| k.lineage() == held.lineage() && k.epoch() == epoch)
                    {
                        return Err(bad(format!(
                            "duplicate key {filter:?} epoch {epoch} of one issuer"
                        )));
                    }
                    file.keys.push(held);
                }
                Some("retired") => {
                    let filter = fields
                        .next()
                        .and_then(decode_filter)
                        .ok_or_else(|| bad("bad filter".into()))?;
                    let epoch = fields
                        .next()
                        .and_then(parse_u32)
                        .ok_or_else(|| bad("bad epoch".into()))?;
                    let issuer = match fields.next() {
                        None => None,
                        Some(attr) => {
                            let v = attr
                                .strip_prefix("issuer=")
                                .ok_or_else(|| bad("unexpected field after the epoch".into()))?;
                            Some(Fingerprint(
                                from_hex::<32>(v)
                                    .ok_or_else(|| bad(format!("bad issuer {v:?}")))?,
                            ))
                        }
                    };
                    if fields.next().is_some() {
                        return Err(bad("unexpected field after the issuer".into()));
                    }
                    file.retired.push(Tombstone {
                        filter,
                        epoch,
                        issuer,
                    });
                }
                _ => return Err(bad("unknown record kind (expected key or retired)".into())),
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let file = KeyFile {
            keys: vec![
                HeldKey {
                    key: TreeKey::from_secret("my room/#", 2, [3; 32]).unwrap(),
                    not_after: None,
                    issuer: Some(Fingerprint([0xab; 32])),
                },
                HeldKey {
                    key: TreeKey::from_secret("my room/#", 1, [4; 32]).unwrap(),
                    not_after: Some(1_700_000_000),
                    issuer: None,
                },
                HeldKey {
                    key: TreeKey::from_secret("my room/#", 3, [5; 32])
                        .unwrap()
                        .with_validity(Validity::new(1_800_000_000, Some(1_900_000_000)).unwrap()),
                    not_after: None,
                    issuer: Some(Fingerprint([0xab; 32])),
                },
            ],
            retired: vec![
                Tombstone {
                    filter: "a/b".into(),
                    epoch: 7,
                    issuer: None,
                },
                Tombstone {
                    filter: "a/b".into(),
                    epoch: 9,
                    issuer: Some(Fingerprint([0xab; 32])),
                },
            ],
        };
        let text = file.format();
        assert!(text.contains("key my%20room/# 1 0404"), "{}", &*text);
        let back = KeyFile::parse(Path::new("keys"), text.as_bytes()).unwrap();
        // Errors and Debug output never show secret bytes.
        let secret = "0404".repeat(16);
        for bad_line in [
            format!("kye a/# 1 {secret}\n"),
            format!("key a/# 1 {secret} {secret}\n"),
        ] {
            let bad = crate::text::seal_text(KEYS_MAGIC, &bad_line);
            let msg = KeyFile::parse(Path::new("keys"), bad.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(!msg.contains("0404"), "{msg}");
        }
        assert!(!format!("{back:?}").contains("0404"));
        assert_eq!(back.format(), text);
        let ab = Some(Fingerprint([0xab; 32]));
        assert_eq!(back.newest_epoch("my room/#", ab), Some(3));
        let ahead = back.keys.iter().find(|k| k.epoch() == 3).unwrap();
        assert_eq!(
            ahead.key.validity(),
            Validity::new(1_800_000_000, Some(1_900_000_000)).unwrap()
        );
        assert!(text.contains(&format!(
            "key my%20room/# 3 {} not-before=1800000000 valid-until=1900000000 issuer=",
            "05".repeat(32)
        )));
        assert!(ahead.is_spent(1_900_000_011, 10) && !ahead.is_spent(1_900_000_010, 10));
        assert_eq!(back.newest_epoch("my room/#", None), Some(1));
        assert_eq!(back.newest_epoch("a/b", None), Some(7));
        assert_eq!(back.newest_epoch("a/b", ab), Some(9));
        assert_eq!(back.newest_epoch("x", None), None);
        assert!(text.contains(&format!("retired a/b 9 issuer={}\n", "ab".repeat(32))));
    }

    #[test]
    fn validity_attributes_are_checked() {
        let secret = "0707".repeat(16);
        let parse = |attrs: &str| {
            let text = crate::text::seal_text(KEYS_MAGIC, &format!("key a/# 1 {secret}{attrs}\n"));
            KeyFile::parse(Path::new("keys"), text.as_bytes())
        };
        let v = |k: &KeyFile| k.keys[0].key.validity();
        // Any order, each once; absent means no limit.
        let both = parse(" valid-until=9 not-after=3 not-before=2").unwrap();
        assert_eq!(v(&both), Validity::new(2, Some(9)).unwrap());
        assert_eq!(both.keys[0].not_after, Some(3));
        assert_eq!(v(&parse("").unwrap()), Validity::ALWAYS);
        for bad in [
            " not-before=5 valid-until=4",
            " valid-until=0",
            " not-before=1 not-before=1",
            " valid-until=1 valid-until=1",
            " not-before=01",
            " valid-until=-1",
            " not-before=",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.name(), "corrupt", "{bad}");
            assert!(!err.to_string().contains("0707"), "{err}");
        }
    }
}
