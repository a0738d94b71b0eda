//! Grants in-band: the MQTT topics grants travel on, and what issuing, accepting and rotating
//! return. No MQTT client here: an application publishes [`OutgoingGrant`]s (retained) and feeds
//! what arrives on [`GrantTopics::subscription`] to
//! [`Store::accept_grant_message`](crate::Store::accept_grant_message).
//!
//! Topic of a grant: `<prefix>/<recipient fingerprint, 64 hex>/<slot, 16 hex>` where
//! `slot = hex(SHA-256("mqseal grant slot v1" || 0x00 || recipient fingerprint || issuer Ed25519
//! key || granted filter)[0..8])`. One retained message per (recipient, issuer, filter): a newer
//! epoch's grant replaces the older one on the broker. The broker sees only wrapped keys.
//!
//! Brokers reserve topics starting with `$` (`$SYS/…`, `$share/…`): a prefix may not start
//! with `$`.

use mqseal::{Fingerprint, Grant, TreeKey, Validity};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::text::{from_hex, to_hex};

/// The default grant topic prefix.
pub const DEFAULT_GRANT_PREFIX: &str = "mqseal/grants";

const SLOT_LABEL: &[u8] = b"mqseal grant slot v1\0";

/// The topics grants are published on, under a configurable prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTopics {
    prefix: String,
}

impl Default for GrantTopics {
    fn default() -> GrantTopics {
        GrantTopics {
            prefix: DEFAULT_GRANT_PREFIX.to_string(),
        }
    }
}

impl GrantTopics {
    /// Grant topics under `prefix`: a valid MQTT topic name that does not start with `$`
    /// (reserved by brokers) or end with `/`.
    pub fn new(prefix: &str) -> Result<GrantTopics> {
        let bad = |reason| {
            Err(StoreError::InvalidGrantPrefix {
                prefix: prefix.to_string(),
                reason,
            })
        };
        if prefix.is_empty() {
            return bad("empty");
        }
        if prefix.starts_with('$') {
            return bad("topics starting with '$' are reserved by brokers");
        }
        if prefix.ends_with('/') {
            return bad("ends with '/'");
        }
        if prefix.len() > 1024 {
            return bad("longer than 1024 bytes");
        }
        if prefix.contains(['+', '#', '\0']) {
            return bad("contains '+', '#' or NUL");
        }
        Ok(GrantTopics {
            prefix: prefix.to_string(),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic filter a recipient subscribes to: `<prefix>/<fingerprint>/+`.
    pub fn subscription(&self, recipient: &Fingerprint) -> String {
        format!("{}/{recipient}/+", self.prefix)
    }

    /// The topic of a grant for `recipient`, issued by the holder of `issuer_ed25519`, for
    /// `filter`.
    pub fn topic(
        &self,
        recipient: &Fingerprint,
        issuer_ed25519: &[u8; 32],
        filter: &str,
    ) -> String {
        format!(
            "{}/{recipient}/{}",
            self.prefix,
            slot(recipient, issuer_ed25519, filter)
        )
    }

    /// The topic `grant` (whose key has `filter`) belongs on.
    pub fn topic_of(&self, grant: &Grant, filter: &str) -> String {
        self.topic(&grant.recipient(), &grant.issuer_ed25519(), filter)
    }

    /// Splits a topic under this prefix into (recipient fingerprint, slot), if it is a grant
    /// topic.
    pub fn parse(&self, topic: &str) -> Option<(Fingerprint, String)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (fp, slot) = rest.split_once('/')?;
        let fp = Fingerprint(from_hex::<32>(fp)?);
        (slot.len() == 16 && slot.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| (fp, slot.to_ascii_lowercase()))
    }
}

/// The slot of a grant topic (16 lowercase hex digits).
pub fn slot(recipient: &Fingerprint, issuer_ed25519: &[u8; 32], filter: &str) -> String {
    let digest = Sha256::new()
        .chain_update(SLOT_LABEL)
        .chain_update(recipient.0)
        .chain_update(issuer_ed25519)
        .chain_update(filter.as_bytes())
        .finalize();
    to_hex(digest.get(..8).unwrap_or(&[]))
}

/// A grant to publish: retained, on `topic`, with `payload` (the grant bytes) as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingGrant {
    /// The recipient's name in the issuer's store.
    pub recipient_name: String,
    /// The recipient.
    pub recipient: Fingerprint,
    /// The granted filter.
    pub filter: String,
    /// The epoch.
    pub epoch: u32,
    /// Where to publish it.
    pub topic: String,
    /// What to publish (already safe for the broker to see: HPKE-wrapped and signed).
    pub payload: Vec<u8>,
    /// Publish retained, so that an offline recipient gets it when it connects.
    pub retain: bool,
}

/// What adding a key changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The key's filter.
    pub filter: String,
    /// The key's epoch.
    pub epoch: u32,
    /// `false` if the same key was already held (nothing changed).
    pub added: bool,
    /// Older epochs of the same filter retired by this key: (epoch, not_after).
    pub retired: Vec<(u32, u64)>,
}

/// A grant accepted and stored.
#[derive(Debug, Clone)]
pub struct AcceptedGrant {
    /// The key it carried (now held by the store).
    pub key: TreeKey,
    /// The issuer's fingerprint.
    pub issuer: Fingerprint,
    /// The issuer's name in the trusted file (`None`: this store's own identity).
    pub issuer_name: Option<String>,
    /// What changed in the store.
    pub update: KeyUpdate,
}

/// The result of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The rotated filter.
    pub filter: String,
    /// The new epoch.
    pub epoch: u32,
    /// The new epoch's validity (signed into every grant of it).
    pub validity: Validity,
    /// Older epochs retired in this store: (epoch, not_after).
    pub retired: Vec<(u32, u64)>,
    /// Grants of the new epoch for every remaining member: publish each, retained.
    pub grants: Vec<OutgoingGrant>,
    /// Members of the previous epoch left out (revoked).
    pub excluded: Vec<Fingerprint>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefix_rules_and_topic_shape() {
        assert!(GrantTopics::new("$SYS/grants").is_err());
        assert!(GrantTopics::new("").is_err());
        assert!(GrantTopics::new("a/+").is_err());
        assert!(GrantTopics::new("a/").is_err());
        let t = GrantTopics::new("site/keys").unwrap();
        let fp = Fingerprint([0xab; 32]);
        let topic = t.topic(&fp, &[1; 32], "plant/#");
        assert!(topic.starts_with(&format!("site/keys/{fp}/")));
        assert_eq!(
            t.parse(&topic),
            Some((fp, topic.rsplit('/').next().unwrap().to_string()))
        );
        assert_eq!(t.subscription(&fp), format!("site/keys/{fp}/+"));
        assert_eq!(t.parse("site/keys/xx/0011223344556677"), None);
        assert_eq!(t.parse("other/x"), None);
        // The slot separates filters and issuers.
        assert_ne!(topic, t.topic(&fp, &[1; 32], "plant/7/#"));
        assert_ne!(topic, t.topic(&fp, &[2; 32], "plant/#"));
        assert_eq!(GrantTopics::default().prefix(), "mqseal/grants");
    }
}
