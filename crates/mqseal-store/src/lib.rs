//! # mqseal-store — durable keys and state for mqseal
//!
//! Real deployments restart, lose power and fire members. This crate keeps what
//! [`mqseal`] needs across all of that, in a directory a person can inspect and back up:
//!
//! ```text
//! <store>/                 0700
//!   identity.key           0600  secret seed           (mqseal-secret1:<hex>)
//!   identity.pub           0644  public line            (name mqseal-pub1:<hex>)
//!   trusted                0644  trusted peers          (name mqseal-pub1:<hex> sender|issuer)
//!   keys                   0600  held tree keys per filter and epoch, retirements, tombstones
//!   issued                 0644  grants this identity issued (who holds which filter)
//!   state/                 0700
//!     seq                  0600  sequence reservation (crash-safe counter)
//!     replay.snap          0600  replay windows snapshot
//!     replay.log           0600  replay journal since the snapshot
//!     seal.lock open.lock store.lock
//! ```
//!
//! - [`Store`]: create/open a store, trust peers ([`Roles`]), hold keys, issue, accept and
//!   rotate grants ([`Store::rotate`] revokes by leaving members out).
//! - [`PersistentSealer`]: sequence numbers never repeat, even after `kill -9` or power loss
//!   (block reservation, OSCORE RFC 8613 appendix B.1.1).
//! - [`PersistentOpener`]: replay windows persisted before delivery, so a restarted subscriber
//!   still rejects replays and still accepts every new message.
//! - [`GrantTopics`]: grants travel in-band over MQTT (`mqseal/grants/<fingerprint>/<slot>`,
//!   retained).
//!
//! File formats, algorithms and vectors: `spec/keystore.md`, `spec/vectors/keystore.json`.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod error;
mod fsutil;
mod grants;
mod identity_file;
mod issued;
mod journal;
mod keyfile;
mod opener;
mod sealer;
mod store;
mod text;
mod trust;

pub use error::{Result, StoreError};
pub use grants::{
    AcceptedGrant, DEFAULT_GRANT_PREFIX, GrantTopics, KeyUpdate, OutgoingGrant, Rotation,
};
pub use issued::IssuedGrant;
pub use keyfile::{HeldKey, KeyFile, Tombstone};
pub use opener::PersistentOpener;
pub use sealer::PersistentSealer;
pub use store::{
    DEFAULT_COMPACT_AFTER, DEFAULT_GRACE_PERIOD, DEFAULT_SEQUENCE_BLOCK, Store, StoreOptions,
    layout, unix_now,
};
pub use trust::{Roles, TokenError, TrustedPeer, TrustedSender, parse_public_token, public_token};

/// The byte- and line-level file formats, as pure functions (used by the spec vectors; handy for
/// tools that inspect a store).
pub mod formats {
    pub use crate::grants::slot as grant_slot;
    pub use crate::identity_file::{
        SECRET_PREFIX, format_identity_key, format_identity_pub, parse_identity_key,
        parse_identity_pub,
    };
    pub use crate::issued::{ISSUED_MAGIC, format_issued, parse_issued};
    pub use crate::journal::{
        Accepted, LOG_MAGIC, ParsedLog, ReplaySnapshot, SNAPSHOT_MAGIC, WindowId, decode_log,
        decode_snapshot, encode_record, encode_snapshot,
    };
    pub use crate::keyfile::KEYS_MAGIC;
    pub use crate::sealer::{SEQ_MAGIC, format_seq, parse_seq};
    pub use crate::text::{decode_filter, encode_filter, valid_name};
    pub use crate::trust::{
        PUBLIC_PREFIX, TRUSTED_HEADER, format_trusted, parse_peer_line, parse_trusted,
    };
}
