//! [`Store`]: a keystore directory and everything done with it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mqseal::{
    FilterKind, Fingerprint, Grant, Identity, Issuer, KeyFilter, OpenPolicy, Profile,
    PublicIdentity, ReplayLimits, Sealer, TreeKey, Validity,
};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::fsutil::{
    LockFile, PUBLIC_MODE, SECRET_MODE, create_dir_private, read_optional, read_required, sync_dir,
    write_atomic, write_new,
};
use crate::grants::{AcceptedGrant, GrantTopics, KeyUpdate, OutgoingGrant, Rotation};
use crate::identity_file::{
    format_identity_key, format_identity_pub, parse_identity_key, parse_identity_pub,
};
use crate::issued::{IssuedGrant, format_issued, parse_issued};
use crate::journal;
use crate::keyfile::{HeldKey, KeyFile, Tombstone};
use crate::opener::PersistentOpener;
use crate::sealer::{PersistentSealer, SEQ_MISSING, format_seq, parse_seq};
use crate::text::check_name;
use crate::trust::{
    Roles, TRUSTED_HEADER, TrustedPeer, TrustedSender, parse_peer_line, parse_trusted,
};

/// File names inside a store directory (see `spec/keystore.md`).
pub mod layout {
    /// The identity's secret seed (0600).
    pub const IDENTITY_KEY: &str = "identity.key";
    /// The identity's public line (0644): `name mqseal-pub1:<hex>`.
    pub const IDENTITY_PUB: &str = "identity.pub";
    /// Trusted peers (0644), one per line.
    pub const TRUSTED: &str = "trusted";
    /// Held tree keys (0600).
    pub const KEYS: &str = "keys";
    /// Grants issued by this identity (0644).
    pub const ISSUED: &str = "issued";
    /// Mutable state (0700 directory, 0600 files).
    pub const STATE: &str = "state";
    /// The sequence reservation.
    pub const SEQ: &str = "state/seq";
    /// Replay windows snapshot.
    pub const REPLAY_SNAPSHOT: &str = "state/replay.snap";
    /// Replay journal since the snapshot.
    pub const REPLAY_LOG: &str = "state/replay.log";
    /// Held by a [`PersistentSealer`](crate::PersistentSealer).
    pub const SEAL_LOCK: &str = "state/seal.lock";
    /// Held by a [`PersistentOpener`](crate::PersistentOpener).
    pub const OPEN_LOCK: &str = "state/open.lock";
    /// Held briefly while `trusted`, `keys` or `issued` is rewritten.
    pub const STORE_LOCK: &str = "state/store.lock";
}

/// Default grace period after a rotation: one day.
pub const DEFAULT_GRACE_PERIOD: u64 = 86_400;
/// Default sequence block reserved per fsync.
pub const DEFAULT_SEQUENCE_BLOCK: u64 = 4096;
/// Default number of journal records before the replay journal is compacted.
pub const DEFAULT_COMPACT_AFTER: usize = 10_000;

/// Tunables of a store (not persisted: each program passes its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Seconds during which a rotated-out epoch is still accepted once a newer one arrived.
    pub grace_period: u64,
    /// Sequence numbers reserved per durable write (`K` of the reservation algorithm).
    pub sequence_block: u64,
    /// Journal records after which the replay windows are snapshotted (or the number of
    /// windows, if larger: compaction then writes at most one window per record).
    pub compact_after: usize,
    /// Caps on the opener's replay windows (`mqseal-v2.md` 7.3, bounded state).
    pub replay_limits: ReplayLimits,
    /// Topics grants travel on.
    pub grant_topics: GrantTopics,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            grace_period: DEFAULT_GRACE_PERIOD,
            sequence_block: DEFAULT_SEQUENCE_BLOCK,
            compact_after: DEFAULT_COMPACT_AFTER,
            replay_limits: ReplayLimits::default(),
            grant_topics: GrantTopics::default(),
        }
    }
}

/// Seconds since the Unix epoch (the `now` of the store's methods).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A keystore directory: one identity, its trusted peers, held keys, issued grants, sequence
/// counter and replay windows. Every method reads the files afresh, so several processes (a
/// daemon and the CLI) can share a store; rewrites are atomic and serialised by a lock.
///
/// ```
/// use mqseal::{OpenPolicy, Profile};
/// use mqseal_store::{Roles, Store};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
/// let admin = Store::create(&a_dir, "admin").unwrap();
/// let sensor = Store::create(&b_dir, "sensor").unwrap();
/// admin.trust("sensor", &sensor.public(), Roles::SENDER).unwrap();
/// sensor.trust("admin", &admin.public(), Roles::ISSUER).unwrap();
///
/// admin.create_key("plant/#", 0).unwrap();
/// let grant = admin.issue_grant("plant/7/#", "sensor").unwrap(); // publish it, retained
/// sensor.accept_grant_message(&grant.topic, &grant.payload, 0).unwrap();
///
/// let mut sealer = sensor.sealer(Profile::Signed).unwrap();     // crash-safe counter
/// let sealed = sealer.seal("plant/7/temp", b"21.5", false).unwrap();
/// let mut opener = admin.opener(OpenPolicy::default()).unwrap(); // persisted replay windows
/// assert_eq!(opener.open("plant/7/temp", &sealed).unwrap().payload, b"21.5");
/// ```
pub struct Store {
    dir: PathBuf,
    identity: Identity,
    name: String,
    options: StoreOptions,
}

impl Store {
    /// Creates a store with a new random identity named `name` (see [`Store::create_with`]).
    pub fn create(dir: impl AsRef<Path>, name: &str) -> Result<Store> {
        Store::create_with(dir, name, Identity::generate()?, StoreOptions::default())
    }

    /// Creates a store in `dir` (created with mode 0700, or an existing empty directory) for
    /// `identity`: `identity.key` (0600), `identity.pub`, an empty `trusted`, `keys` and
    /// `issued`, and the state files (sequence counter at 0, empty replay windows).
    /// `identity.key` is written last, so an interrupted creation is not mistaken for a store.
    pub fn create_with(
        dir: impl AsRef<Path>,
        name: &str,
        identity: Identity,
        options: StoreOptions,
    ) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        check_name(name)?;
        match std::fs::read_dir(&dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(StoreError::AlreadyExists { path: dir });
                }
                // An existing empty directory becomes private, as a created one is (it confers
                // trust: Store::open refuses one that others may write).
                set_dir_private(&dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dir_private(&dir)?,
            Err(e) => return Err(crate::fsutil::io_err(&dir, "read directory")(e)),
        }
        let store = Store {
            dir,
            identity,
            name: name.to_string(),
            options,
        };
        create_dir_private(&store.path(layout::STATE))?;
        let _lock = store.store_lock()?;
        write_new(
            &store.path(layout::TRUSTED),
            TRUSTED_HEADER.as_bytes(),
            PUBLIC_MODE,
        )?;
        write_new(
            &store.path(layout::KEYS),
            KeyFile::default().format().as_bytes(),
            SECRET_MODE,
        )?;
        write_new(
            &store.path(layout::ISSUED),
            format_issued(&[]).as_bytes(),
            PUBLIC_MODE,
        )?;
        let fp = store.fingerprint();
        write_new(
            &store.path(layout::SEQ),
            format_seq(&fp, 0).as_bytes(),
            SECRET_MODE,
        )?;
        journal::create_empty(
            &store.path(layout::REPLAY_SNAPSHOT),
            &store.path(layout::REPLAY_LOG),
        )?;
        let public = format_identity_pub(&store.identity, name);
        write_new(
            &store.path(layout::IDENTITY_PUB),
            public.as_bytes(),
            PUBLIC_MODE,
        )?;
        let secret = format_identity_key(&store.identity, name);
        write_new(
            &store.path(layout::IDENTITY_KEY),
            secret.as_bytes(),
            SECRET_MODE,
        )?;
        sync_dir(&store.dir)?;
        Ok(store)
    }

    /// Opens an existing store with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens an existing store: loads `identity.key` (refused if group/world-accessible) and
    /// checks that `identity.pub` matches it.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        let key_path = dir.join(layout::IDENTITY_KEY);
        let bytes = Zeroizing::new(read_required(
            &key_path,
            true,
            "no identity here: not an mqseal store (create one first)",
        )?);
        let identity = parse_identity_key(&key_path, &bytes)?;
        // The directory and `trusted` confer trust (who may send, who may issue keys): nobody
        // but the owner of identity.key may be able to write them.
        let owner = crate::fsutil::owner_of(&key_path)?;
        crate::fsutil::check_trust(&dir, owner)?;
        let pub_path = dir.join(layout::IDENTITY_PUB);
        let peer = parse_identity_pub(
            &pub_path,
            &read_required(&pub_path, false, "the public identity file is missing")?,
        )?;
        if peer.public != identity.public() {
            return Err(StoreError::corrupt(
                &pub_path,
                None,
                format!(
                    "does not match identity.key (fingerprint {} vs {})",
                    peer.fingerprint(),
                    identity.fingerprint()
                ),
            ));
        }
        Ok(Store {
            dir,
            identity,
            name: peer.name,
            options,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file of the [`layout`].
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The options in use.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The store's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The identity's name (from `identity.pub`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public identity.
    pub fn public(&self) -> PublicIdentity {
        self.identity.public()
    }

    /// The identity's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The `identity.pub` line: give it to peers (they append it to their `trusted` file or pass
    /// it to [`Store::trust_line`]).
    pub fn public_line(&self) -> String {
        format_identity_pub(&self.identity, &self.name)
    }

    fn store_lock(&self) -> Result<LockFile> {
        LockFile::acquire(&self.path(layout::STORE_LOCK))
    }

    // ----- trusted peers -----

    /// The trusted peers (this store's own identity is implicitly trusted as sender and issuer
    /// and is not listed).
    pub fn trusted(&self) -> Result<Vec<TrustedPeer>> {
        let path = self.path(layout::TRUSTED);
        let owner = crate::fsutil::owner_of(&self.path(layout::IDENTITY_KEY))?;
        crate::fsutil::check_trust(&path, owner)?;
        parse_trusted(
            &path,
            &read_required(
                &path,
                false,
                "the trusted peers file is missing (an empty one is fine)",
            )?,
        )
    }

    /// The trusted peer named `name`.
    pub fn peer(&self, name: &str) -> Result<TrustedPeer> {
        self.trusted()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| StoreError::UnknownPeer {
                name: name.to_string(),
            })
    }

    /// Senders trusted by openers, this store's own identity first (signed messages only), each
    /// with the filters its `group-mac` messages are accepted on.
    pub fn trusted_senders(&self) -> Result<Vec<TrustedSender>> {
        let mut out = vec![TrustedSender {
            public: self.public(),
            group_mac: Vec::new(),
        }];
        out.extend(
            self.trusted()?
                .into_iter()
                .filter(|p| p.roles.sender)
                .map(|p| TrustedSender {
                    public: p.public,
                    group_mac: p.group_mac,
                }),
        );
        Ok(out)
    }

    /// Grant issuers in trust order: this store's own identity first (for the whole tree),
    /// then the peers with the issuer role in the order of the `trusted` file, each with its
    /// scope (keystore spec section 4).
    pub fn trusted_issuers(&self) -> Result<Vec<Issuer>> {
        let mut out = vec![Issuer::unscoped(self.public())];
        for p in self.trusted()?.into_iter().filter(|p| p.roles.issuer) {
            out.push(p.issuer()?);
        }
        Ok(out)
    }

    /// Trusts `public` under `name` for `roles` (appends a line; comments are kept), with no
    /// scope and signed messages only (see [`Store::trust_peer`]). Names and keys must be
    /// unique, and the store's own identity needs no entry.
    pub fn trust(&self, name: &str, public: &PublicIdentity, roles: Roles) -> Result<TrustedPeer> {
        self.trust_peer(TrustedPeer::new(name, public.clone(), roles))
    }

    /// Trusts a peer with its attributes: an issuer's `scope` (the filters its grants may be
    /// for) and a sender's `group_mac` filters (keystore spec section 4). Attributes that do
    /// not fit the roles, invalid filters and duplicates are refused (`corrupt`, naming the
    /// peer).
    pub fn trust_peer(&self, mut peer: TrustedPeer) -> Result<TrustedPeer> {
        check_name(&peer.name)?;
        peer.check()
            .map_err(|reason| StoreError::corrupt("<trusted peer>", None, reason))?;
        let (name, public) = (peer.name.as_str(), &peer.public);
        let _lock = self.store_lock()?;
        if *public == self.public() {
            return Err(StoreError::DuplicatePeer {
                name: name.to_string(),
                existing: self.name.clone(),
            });
        }
        if let Some(dup) = self
            .trusted()?
            .into_iter()
            .find(|p| p.name == name || p.public == *public)
        {
            return Err(StoreError::DuplicatePeer {
                name: name.to_string(),
                existing: dup.name,
            });
        }
        let mut text = self.trusted_text()?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&peer.line());
        text.push('\n');
        write_atomic(&self.path(layout::TRUSTED), text.as_bytes(), PUBLIC_MODE)?;
        Ok(peer)
    }

    /// Trusts the peer of an `identity.pub` line (`name mqseal-pub1:<hex> [roles]`); `roles`
    /// overrides the line's.
    pub fn trust_line(&self, line: &str, roles: Roles) -> Result<TrustedPeer> {
        let peer = parse_peer_line(line.trim())
            .map_err(|reason| StoreError::corrupt("<public key line>", None, reason))?;
        self.trust(&peer.name, &peer.public, roles)
    }

    /// Changes the roles of the peer named `name` (its attributes stay; roles they no longer
    /// fit are refused).
    pub fn set_roles(&self, name: &str, roles: Roles) -> Result<TrustedPeer> {
        self.update_peer(name, |peer| peer.roles = roles)
    }

    /// Replaces the scope of the issuer named `name` (empty: the whole tree).
    pub fn set_scope(&self, name: &str, scope: &[&str]) -> Result<TrustedPeer> {
        self.update_peer(name, |peer| {
            peer.scope = scope.iter().map(|f| f.to_string()).collect();
        })
    }

    /// Replaces the filters on which the sender named `name` may send `group-mac` messages
    /// (empty: signed only).
    pub fn set_group_mac(&self, name: &str, filters: &[&str]) -> Result<TrustedPeer> {
        self.update_peer(name, |peer| {
            peer.group_mac = filters.iter().map(|f| f.to_string()).collect();
        })
    }

    fn update_peer(
        &self,
        name: &str,
        change: impl FnOnce(&mut TrustedPeer),
    ) -> Result<TrustedPeer> {
        let mut failure = None;
        let (_, new) = self.edit_peer_line(name, |peer| {
            let mut new = peer.clone();
            change(&mut new);
            match new.check() {
                Ok(()) => Some(new),
                Err(reason) => {
                    failure = Some(reason);
                    Some(peer.clone())
                }
            }
        })?;
        if let Some(reason) = failure {
            return Err(StoreError::corrupt("<trusted peer>", None, reason));
        }
        new.ok_or_else(|| StoreError::UnknownPeer {
            name: name.to_string(),
        })
    }

    /// Stops trusting the peer named `name` (removes its line) and returns it. Open openers keep
    /// trusting it until they reload ([`PersistentOpener::set_senders`]).
    pub fn untrust(&self, name: &str) -> Result<TrustedPeer> {
        self.edit_peer_line(name, |_| None).map(|(old, _)| old)
    }

    fn trusted_text(&self) -> Result<String> {
        let path = self.path(layout::TRUSTED);
        let bytes = read_required(&path, false, "the trusted peers file is missing")?;
        String::from_utf8(bytes).map_err(|_| StoreError::corrupt(&path, None, "not UTF-8 text"))
    }

    /// Replaces (or with `None` removes) the line of peer `name`, keeping every other line.
    fn edit_peer_line(
        &self,
        name: &str,
        edit: impl FnOnce(&TrustedPeer) -> Option<TrustedPeer>,
    ) -> Result<(TrustedPeer, Option<TrustedPeer>)> {
        let _lock = self.store_lock()?;
        self.trusted()?; // validates the whole file first
        let text = self.trusted_text()?;
        let mut out = String::with_capacity(text.len());
        let mut found = None;
        let mut edit = Some(edit);
        for raw in text.lines() {
            let line = raw.trim();
            let peer = (!line.is_empty() && !line.starts_with('#'))
                .then(|| parse_peer_line(line).ok())
                .flatten();
            match (peer, edit.take()) {
                (Some(peer), Some(f)) if peer.name == name => {
                    let new = f(&peer);
                    if let Some(n) = &new {
                        out.push_str(&n.line());
                        out.push('\n');
                    }
                    found = Some((peer, new));
                }
                (_, f) => {
                    edit = f;
                    out.push_str(raw);
                    out.push('\n');
                }
            }
        }
        let found = found.ok_or_else(|| StoreError::UnknownPeer {
            name: name.to_string(),
        })?;
        write_atomic(&self.path(layout::TRUSTED), out.as_bytes(), PUBLIC_MODE)?;
        Ok(found)
    }

    // ----- keys -----

    /// The whole `keys` file: held keys and tombstones.
    pub fn key_file(&self) -> Result<KeyFile> {
        let path = self.path(layout::KEYS);
        let bytes = Zeroizing::new(read_required(
            &path,
            true,
            "the held keys file is missing (restore it from a backup)",
        )?);
        KeyFile::parse(&path, &bytes)
    }

    fn write_key_file(&self, file: &KeyFile) -> Result<()> {
        write_atomic(
            &self.path(layout::KEYS),
            file.format().as_bytes(),
            SECRET_MODE,
        )
    }

    /// Every held key, with retirement times (for openers).
    pub fn held_keys(&self) -> Result<Vec<HeldKey>> {
        Ok(self.key_file()?.keys)
    }

    /// The keys a sealer should use at the current time (see [`Store::sealing_keys_at`]).
    pub fn sealing_keys(&self) -> Result<Vec<TreeKey>> {
        self.sealing_keys_at(unix_now())
    }

    /// The keys a sealer should use, as of `now`: per filter, one lineage — the first in trust
    /// order (keys created here, then the issuers of the `trusted` file in its order) that has
    /// a key not retired (keystore spec section 5) — and of it the keys not retired, plus each
    /// retired key none of whose newer epochs has begun yet at `now` (the successor was
    /// granted ahead of time: the sealer switches to it at its `not_before` by itself, spec
    /// section 6 step 2). Keys come with their validities; keys of issuers no longer trusted
    /// are not sealed with.
    pub fn sealing_keys_at(&self, now: u64) -> Result<Vec<TreeKey>> {
        let own = self.fingerprint();
        let mut order: Vec<Option<Fingerprint>> = vec![None];
        order.extend(
            self.trusted()?
                .iter()
                .filter(|p| p.roles.issuer)
                .map(|p| Some(p.fingerprint())),
        );
        // A key's rank: its lineage's place in trust order (the own identity's grants count as
        // created here); keys of issuers not in that order have none.
        let rank = |k: &HeldKey| {
            let issuer = k.issuer.filter(|fp| *fp != own);
            order.iter().position(|i| *i == issuer)
        };
        let held = self.held_keys()?;
        // A retired key still seals while it has newer epochs in its lineage and none of them
        // has begun (their grants arrived ahead of time).
        let superseded = |k: &HeldKey| {
            let mut newer = held
                .iter()
                .filter(|o| o.lineage() == k.lineage() && o.epoch() > k.epoch())
                .peekable();
            newer.peek().is_none() || newer.any(|o| o.key.validity().not_before() <= now)
        };
        let candidates: Vec<(&HeldKey, usize)> = held
            .iter()
            .filter(|k| k.not_after.is_none() || !superseded(k))
            .filter_map(|k| rank(k).map(|r| (k, r)))
            .collect();
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, r) in candidates.iter().filter(|(k, _)| k.not_after.is_none()) {
            let best = first.entry(k.filter()).or_insert(*r);
            *best = (*best).min(*r);
        }
        Ok(candidates
            .iter()
            .filter(|(k, r)| first.get(k.filter()) == Some(r))
            .map(|(k, _)| k.key.clone())
            .collect())
    }

    /// Creates a random root key for a filter this store holds no key of its own for (keys of
    /// other issuers' lineages do not count), at epoch 1 (or one above a removed epoch), valid
    /// at all times. To replace an existing key use [`Store::rotate`].
    pub fn create_key(&self, filter: &str, now: u64) -> Result<HeldKey> {
        self.create_key_with(filter, Validity::ALWAYS, now)
    }

    /// Like [`Store::create_key`], valid only during `validity` (signed into every grant of it
    /// or of keys derived from it): sealers stop at its end ([`mqseal::Error::KeyExpired`])
    /// unless a newer epoch reaches them, so issuers bound how long a withheld rotation can
    /// keep a member reading.
    pub fn create_key_with(&self, filter: &str, validity: Validity, now: u64) -> Result<HeldKey> {
        let _lock = self.store_lock()?;
        let mut file = self.key_file()?;
        let filter = KeyFilter::parse(filter)?;
        let filter = filter.as_str();
        if let Some(held) = file
            .keys
            .iter()
            .filter(|k| k.lineage() == (filter, None))
            .map(HeldKey::epoch)
            .max()
        {
            return Err(StoreError::KeyConflict {
                filter: filter.to_string(),
                epoch: held,
            });
        }
        let epoch = next_epoch(&file, filter)?;
        let key = TreeKey::generate(filter, epoch)?.with_validity(validity);
        apply_key(&mut file, key, None, now, self.options.grace_period)?;
        self.write_key_file(&file)?;
        find_key(&file, filter, epoch)
    }

    /// Adds a key (from a grant of `issuer`, or by hand with `None`) to its lineage (filter,
    /// issuer). A newer epoch retires the older epochs of the same lineage (openers accept
    /// them until `max(now, its not_before) + grace_period`: a key granted ahead of time
    /// retires its predecessors from its start on); an older epoch than one held or removed in
    /// the lineage is refused ([`StoreError::StaleKey`]); the same key again changes nothing,
    /// and the same secret with another validity is refused ([`StoreError::KeyConflict`]: a
    /// validity changes with a new epoch). Other lineages of the filter are never touched
    /// (keystore spec section 5).
    pub fn add_key(
        &self,
        key: TreeKey,
        issuer: Option<Fingerprint>,
        now: u64,
    ) -> Result<KeyUpdate> {
        let _lock = self.store_lock()?;
        let mut file = self.key_file()?;
        let update = apply_key(&mut file, key, issuer, now, self.options.grace_period)?;
        if update.added {
            self.write_key_file(&file)?;
        }
        Ok(update)
    }

    /// Removes the held keys of `filter` at `epoch` (of every lineage), leaving tombstones so
    /// that they cannot come back; returns whether one was held.
    pub fn remove_key(&self, filter: &str, epoch: u32) -> Result<bool> {
        let _lock = self.store_lock()?;
        let mut file = self.key_file()?;
        let (gone, kept): (Vec<HeldKey>, Vec<HeldKey>) = file
            .keys
            .drain(..)
            .partition(|k| k.filter() == filter && k.epoch() == epoch);
        file.keys = kept;
        if gone.is_empty() {
            return Ok(false);
        }
        file.retired.extend(gone.iter().map(tombstone_of));
        self.write_key_file(&file)?;
        Ok(true)
    }

    /// Removes every key whose retirement grace period ended before `now`, or whose validity
    /// ended more than the grace period before `now` (tombstones remain); returns them.
    pub fn prune(&self, now: u64) -> Result<Vec<Tombstone>> {
        let _lock = self.store_lock()?;
        let mut file = self.key_file()?;
        let grace = self.options.grace_period;
        let (gone, kept): (Vec<HeldKey>, Vec<HeldKey>) =
            file.keys.drain(..).partition(|k| k.is_spent(now, grace));
        file.keys = kept;
        let tombs: Vec<Tombstone> = gone.iter().map(tombstone_of).collect();
        if !tombs.is_empty() {
            file.retired.extend(tombs.iter().cloned());
            self.write_key_file(&file)?;
        }
        Ok(tombs)
    }

    // ----- grants -----

    /// Grants that this store issued.
    pub fn issued(&self) -> Result<Vec<IssuedGrant>> {
        let path = self.path(layout::ISSUED);
        parse_issued(
            &path,
            &read_required(&path, false, "the issued grants file is missing")?,
        )
    }

    /// Members of `filter`: the issued grants of the newest live epoch of this root filter.
    pub fn members(&self, filter: &str) -> Result<Vec<IssuedGrant>> {
        let file = self.key_file()?;
        let current = current_key(&file, filter)?;
        Ok(self
            .issued()?
            .into_iter()
            .filter(|g| g.root_filter == filter && g.epoch == current.epoch())
            .collect())
    }

    /// Issues a grant of `filter` (a held key's filter or one below it) to the trusted peer
    /// `recipient_name`, and records it as issued.
    pub fn issue_grant(&self, filter: &str, recipient_name: &str) -> Result<OutgoingGrant> {
        let peer = self.peer(recipient_name)?;
        self.issue_grant_to(filter, recipient_name, &peer.public)
    }

    /// Issues a grant of `filter` to any public identity (recorded under `recipient_name`).
    /// Derived from the most specific held live key covering `filter`, at its newest epoch.
    pub fn issue_grant_to(
        &self,
        filter: &str,
        recipient_name: &str,
        recipient: &PublicIdentity,
    ) -> Result<OutgoingGrant> {
        check_name(recipient_name)?;
        let _lock = self.store_lock()?;
        let file = self.key_file()?;
        let (root, granted) = best_root(&file, filter)?;
        let outgoing = self.make_grant(&granted, recipient_name, recipient)?;
        let record = IssuedGrant {
            root_filter: root.filter().to_string(),
            epoch: root.epoch(),
            granted_filter: granted.filter().as_str().to_string(),
            recipient_name: recipient_name.to_string(),
            recipient: recipient.clone(),
        };
        let mut issued = self.issued()?;
        issued.retain(|g| !same_membership(g, &record));
        issued.push(record);
        write_atomic(
            &self.path(layout::ISSUED),
            format_issued(&issued).as_bytes(),
            PUBLIC_MODE,
        )?;
        Ok(outgoing)
    }

    fn make_grant(
        &self,
        key: &TreeKey,
        recipient_name: &str,
        recipient: &PublicIdentity,
    ) -> Result<OutgoingGrant> {
        let grant = Grant::issue(&self.identity, recipient, key)?;
        let filter = key.filter().as_str();
        Ok(OutgoingGrant {
            recipient_name: recipient_name.to_string(),
            recipient: recipient.fingerprint(),
            filter: filter.to_string(),
            epoch: key.epoch(),
            topic: self.options.grant_topics.topic_of(&grant, filter),
            payload: grant.as_bytes().to_vec(),
            retain: true,
        })
    }

    /// Verifies, unwraps and stores a grant addressed to this store's identity from a trusted
    /// issuer (see [`Store::add_key`] for epochs).
    pub fn accept_grant(&self, grant: &Grant, now: u64) -> Result<AcceptedGrant> {
        self.accept_checked(grant, None, now)
    }

    /// Handles a message that arrived on this store's grant subscription
    /// ([`GrantTopics::subscription`]): an empty payload (a cleared retained message) is
    /// ignored (`Ok(None)`); otherwise the grant is verified, must sit on exactly the topic its
    /// recipient, issuer and filter give, and is stored.
    pub fn accept_grant_message(
        &self,
        topic: &str,
        payload: &[u8],
        now: u64,
    ) -> Result<Option<AcceptedGrant>> {
        let topics = &self.options.grant_topics;
        let mismatch = || StoreError::GrantTopicMismatch {
            topic: topic.to_string(),
            expected: format!(
                "a topic matching {}",
                topics.subscription(&self.fingerprint())
            ),
        };
        let (recipient, _) = topics.parse(topic).ok_or_else(mismatch)?;
        if recipient != self.fingerprint() {
            return Err(mismatch());
        }
        if payload.is_empty() {
            return Ok(None);
        }
        let grant = Grant::from_bytes(payload)?;
        self.accept_checked(&grant, Some(topic), now).map(Some)
    }

    fn accept_checked(
        &self,
        grant: &Grant,
        topic: Option<&str>,
        now: u64,
    ) -> Result<AcceptedGrant> {
        let peers = self.trusted()?;
        let issuers = self.trusted_issuers()?;
        let key = grant.accept_from(&self.identity, &issuers)?;
        let issuer_ed = grant.issuer_ed25519();
        let (issuer, issuer_name) = if issuer_ed == self.public().ed25519() {
            (self.fingerprint(), None)
        } else {
            let peer = peers
                .into_iter()
                .find(|p| p.roles.issuer && p.public.ed25519() == issuer_ed)
                .ok_or(StoreError::Core(mqseal::Error::UntrustedIssuer))?;
            (peer.fingerprint(), Some(peer.name))
        };
        if let Some(topic) = topic {
            let expected = self
                .options
                .grant_topics
                .topic_of(grant, key.filter().as_str());
            if expected != topic {
                return Err(StoreError::GrantTopicMismatch {
                    topic: topic.to_string(),
                    expected,
                });
            }
        }
        let stored_issuer = issuer_name.as_ref().map(|_| issuer);
        let update = self.add_key(key.clone(), stored_issuer, now)?;
        Ok(AcceptedGrant {
            key,
            issuer,
            issuer_name,
            update,
        })
    }

    /// Rotates `filter` (a held root key's filter): a fresh random key at the next epoch, held
    /// here, and grants of it for every member of the current epoch except `exclude` —
    /// excluding a member revokes it. The previous epoch is retired (accepted for the grace
    /// period). Publish every returned grant, retained. The new key is valid at all times
    /// (see [`Store::rotate_with`]).
    pub fn rotate(&self, filter: &str, exclude: &[Fingerprint], now: u64) -> Result<Rotation> {
        self.rotate_with(filter, exclude, Validity::ALWAYS, now)
    }

    /// Like [`Store::rotate`], the new epoch valid only during `validity`. With a `not_before`
    /// in the future this grants the next epoch **ahead of time**: members (and this store's
    /// sealers) keep sealing under the current epoch until `not_before`, then switch by
    /// themselves, even if they are offline then; the current epoch is retired at
    /// `not_before + grace_period`. A `not_after` bounds how long the new epoch can be used if
    /// the next rotation never reaches a member (a broker withholding it):
    /// [`mqseal::Error::KeyExpired`] after it.
    pub fn rotate_with(
        &self,
        filter: &str,
        exclude: &[Fingerprint],
        validity: Validity,
        now: u64,
    ) -> Result<Rotation> {
        let _lock = self.store_lock()?;
        let mut file = self.key_file()?;
        let current = current_key(&file, filter)?.epoch();
        let epoch = next_epoch(&file, filter)?;
        let key = TreeKey::generate(filter, epoch)?.with_validity(validity);
        let mut issued = self.issued()?;
        let mut grants = Vec::new();
        let mut excluded = Vec::new();
        let mut added = Vec::new();
        for member in issued
            .iter()
            .filter(|g| g.root_filter == filter && g.epoch == current)
        {
            let fp = member.recipient.fingerprint();
            if exclude.contains(&fp) {
                if !excluded.contains(&fp) {
                    excluded.push(fp);
                }
                continue;
            }
            let granted = key.derive(&member.granted_filter)?;
            grants.push(self.make_grant(&granted, &member.recipient_name, &member.recipient)?);
            added.push(IssuedGrant {
                epoch,
                ..member.clone()
            });
        }
        for record in added {
            issued.retain(|g| !same_membership(g, &record));
            issued.push(record);
        }
        // `issued` first: if we crash before `keys`, the next rotation still finds the members
        // of the current epoch (and the unpublished grants are simply issued again).
        write_atomic(
            &self.path(layout::ISSUED),
            format_issued(&issued).as_bytes(),
            PUBLIC_MODE,
        )?;
        let update = apply_key(&mut file, key, None, now, self.options.grace_period)?;
        self.write_key_file(&file)?;
        Ok(Rotation {
            filter: filter.to_string(),
            epoch,
            validity,
            retired: update.retired,
            grants,
            excluded,
        })
    }

    /// Issues fresh grants of the current epoch of root `filter` to all its members again (to
    /// republish after a crash, or for a member that lost its store). Records nothing new.
    pub fn reissue(&self, filter: &str) -> Result<Vec<OutgoingGrant>> {
        let file = self.key_file()?;
        let root = current_key(&file, filter)?;
        self.members(filter)?
            .iter()
            .map(|m| {
                let granted = root.key.derive(&m.granted_filter)?;
                self.make_grant(&granted, &m.recipient_name, &m.recipient)
            })
            .collect()
    }

    // ----- durable sealing and opening -----

    /// A sealer with crash-safe sequence numbers and this store's non-retired keys. Fails with
    /// [`StoreError::Locked`] while another one runs on this store.
    pub fn sealer(&self, profile: Profile) -> Result<PersistentSealer> {
        let lock = LockFile::try_acquire(&self.path(layout::SEAL_LOCK))?;
        PersistentSealer::start(
            Sealer::new(self.identity.clone(), profile, 0),
            self.path(layout::SEQ),
            lock,
            self.options.sequence_block,
            self.sealing_keys()?,
        )
    }

    /// An opener with persisted replay windows, this store's keys (retired ones until their
    /// grace period ends) and trusted senders (including this identity). Fails with
    /// [`StoreError::Locked`] while another one runs on this store.
    pub fn opener(&self, policy: OpenPolicy) -> Result<PersistentOpener> {
        let lock = LockFile::try_acquire(&self.path(layout::OPEN_LOCK))?;
        let mut opener = PersistentOpener::start(
            policy,
            self.options.replay_limits,
            self.path(layout::REPLAY_SNAPSHOT),
            self.path(layout::REPLAY_LOG),
            lock,
            self.options.compact_after,
        )?;
        opener.set_senders(self.trusted_senders()?)?;
        opener.set_keys(&self.held_keys()?);
        Ok(opener)
    }

    /// The durable sequence reservation (no number at or above it was used).
    pub fn reserved_sequence(&self) -> Result<u64> {
        let path = self.path(layout::SEQ);
        let bytes = read_required(&path, true, SEQ_MISSING)?;
        parse_seq(&path, &bytes, &self.fingerprint())
    }

    /// Raises the sequence reservation to at least `floor` (never lowers it) and returns it.
    /// The recovery for a lost `state/seq`: pass a number above every one this identity ever
    /// used (e.g. above the highest its subscribers saw). A damaged `state/seq` is refused; move
    /// it away first if you are sure. Fails while a sealer runs.
    pub fn raise_sequence_floor(&self, floor: u64) -> Result<u64> {
        let _lock = LockFile::try_acquire(&self.path(layout::SEAL_LOCK))?;
        let path = self.path(layout::SEQ);
        let current = match read_optional(&path, true)? {
            Some(bytes) => parse_seq(&path, &bytes, &self.fingerprint())?,
            None => 0,
        };
        let reserved = current.max(floor);
        write_atomic(
            &path,
            format_seq(&self.fingerprint(), reserved).as_bytes(),
            SECRET_MODE,
        )?;
        Ok(reserved)
    }
}

fn same_membership(a: &IssuedGrant, b: &IssuedGrant) -> bool {
    a.root_filter == b.root_filter
        && a.epoch == b.epoch
        && a.granted_filter == b.granted_filter
        && a.recipient == b.recipient
}

/// The tombstone a removed key leaves.
fn tombstone_of(key: &HeldKey) -> Tombstone {
    Tombstone {
        filter: key.filter().to_string(),
        epoch: key.epoch(),
        issuer: key.issuer,
    }
}

/// The next epoch of this store's own lineage of `filter`.
fn next_epoch(file: &KeyFile, filter: &str) -> Result<u32> {
    file.newest_epoch(filter, None)
        .unwrap_or(0)
        .checked_add(1)
        .ok_or(StoreError::Core(mqseal::Error::TooLarge))
}

fn find_key(file: &KeyFile, filter: &str, epoch: u32) -> Result<HeldKey> {
    file.keys
        .iter()
        .find(|k| k.lineage() == (filter, None) && k.epoch() == epoch)
        .cloned()
        .ok_or_else(|| StoreError::NoKeyFor {
            filter: filter.to_string(),
        })
}

/// The newest live key of this store's own lineage of exactly `filter` (the one it rotates and
/// whose members it records).
fn current_key(file: &KeyFile, filter: &str) -> Result<HeldKey> {
    file.keys
        .iter()
        .filter(|k| k.lineage() == (filter, None) && k.not_after.is_none())
        .max_by_key(|k| k.epoch())
        .cloned()
        .ok_or_else(|| StoreError::NoKeyFor {
            filter: filter.to_string(),
        })
}

/// The most specific live held key that can derive `filter`, and the derived key.
fn best_root(file: &KeyFile, filter: &str) -> Result<(HeldKey, TreeKey)> {
    KeyFilter::parse(filter)?;
    file.keys
        .iter()
        .filter(|k| k.not_after.is_none())
        .filter_map(|k| k.key.derive(filter).ok().map(|d| (k, d)))
        .max_by_key(|(k, _)| {
            let f = k.key.filter();
            (
                f.kind() == FilterKind::Exact,
                f.prefix().map_or(0, str::len),
                k.epoch(),
            )
        })
        .map(|(k, d)| (k.clone(), d))
        .ok_or_else(|| StoreError::NoKeyFor {
            filter: filter.to_string(),
        })
}

/// Adds `key` to `file` per the lineage rules of [`Store::add_key`] (keystore spec section 5).
fn apply_key(
    file: &mut KeyFile,
    key: TreeKey,
    issuer: Option<Fingerprint>,
    now: u64,
    grace: u64,
) -> Result<KeyUpdate> {
    let filter = key.filter().as_str().to_string();
    let epoch = key.epoch();
    if let Some(held) = file
        .keys
        .iter()
        .find(|k| k.lineage() == (filter.as_str(), issuer) && k.epoch() == epoch)
    {
        if held.key.ct_eq(&key) && held.key.validity() == key.validity() {
            return Ok(KeyUpdate {
                filter,
                epoch,
                added: false,
                retired: Vec::new(),
            });
        }
        return Err(StoreError::KeyConflict { filter, epoch });
    }
    if let Some(newest) = file.newest_epoch(&filter, issuer).filter(|n| *n >= epoch) {
        return Err(StoreError::StaleKey {
            filter,
            epoch,
            newest,
        });
    }
    // The grace period starts when the new key takes over: now, or its not_before.
    let not_after = now.max(key.validity().not_before()).saturating_add(grace);
    let mut retired = Vec::new();
    for k in file
        .keys
        .iter_mut()
        .filter(|k| k.lineage() == (filter.as_str(), issuer) && k.not_after.is_none())
    {
        k.not_after = Some(not_after);
        retired.push((k.epoch(), not_after));
    }
    file.keys.push(HeldKey {
        key,
        not_after: None,
        issuer,
    });
    Ok(KeyUpdate {
        filter,
        epoch,
        added: true,
        retired,
    })
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Sets a directory's mode to 0700.
#[cfg(unix)]
fn set_dir_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(crate::fsutil::io_err(dir, "chmod directory"))
}

#[cfg(not(unix))]
fn set_dir_private(_dir: &Path) -> Result<()> {
    Ok(())
}
