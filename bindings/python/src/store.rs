//! `Store`: the keystore directory of `mqseal-store` (identity, trusted peers, held keys, grants,
//! crash-safe sequence numbers, persisted replay windows), and its persistent sealer and opener.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::convert::{Filter, Timestamp, Topic, hex, parse_fingerprint, parse_profile, py_repr};
use crate::errors::{CoreError, StoreFailure, StoreResult};
use crate::grant::Grant;
use crate::identity::{Identity, PublicIdentity};
use crate::keys::TreeKey;
use crate::open::{OpenPolicy, Opened, fingerprint_arg};

use mqseal_store as ms;

fn now_or(now: Option<u64>) -> u64 {
    now.unwrap_or_else(ms::unix_now)
}

fn roles(sender: bool, issuer: bool) -> ms::Roles {
    ms::Roles { sender, issuer }
}

/// Store options; `None` keeps the store crate's default.
fn options(
    grace_period: Option<u64>,
    sequence_block: Option<u64>,
    compact_after: Option<usize>,
    grant_prefix: Option<&str>,
    replay_limits: (Option<usize>, Option<usize>),
) -> StoreResult<ms::StoreOptions> {
    let mut options = ms::StoreOptions::default();
    if let Some(n) = replay_limits.0 {
        options.replay_limits.per_sender = n;
    }
    if let Some(n) = replay_limits.1 {
        options.replay_limits.total = n;
    }
    if let Some(g) = grace_period {
        options.grace_period = g;
    }
    if let Some(b) = sequence_block {
        options.sequence_block = b;
    }
    if let Some(c) = compact_after {
        options.compact_after = c;
    }
    if let Some(p) = grant_prefix {
        options.grant_topics = ms::GrantTopics::new(p)?;
    }
    Ok(options)
}

/// A keystore directory (the layout of the Rust `mqseal-store` crate and the `mqseal` CLI):
/// one identity, its trusted peers, held keys, issued grants, a crash-safe sequence counter and
/// persisted replay windows. Every method reads the files afresh, so several processes can share
/// a store.
#[pyclass(module = "mqseal", frozen)]
pub struct Store(ms::Store);

#[pymethods]
impl Store {
    /// Creates a store in `dir` (new, or an existing empty directory; mode 0700) for a new
    /// random identity named `name`, or for `identity`.
    ///
    /// Options (not stored; `None`: the defaults of the Rust store): `grace_period` seconds a
    /// rotated-out epoch stays accepted (1 day), `sequence_block` numbers reserved per durable
    /// write (4096), `compact_after` journal records before a replay snapshot (10000, or the
    /// number of windows if larger), `grant_prefix` of the grant topics (`mqseal/grants`),
    /// `max_windows_per_sender` and `max_windows`: the opener's caps on replay windows (1024 per
    /// sender and profile, 16384 in all; see `Opener.set_replay_limits`).
    #[staticmethod]
    #[pyo3(signature = (dir, name, identity = None, *, grace_period = None,
        sequence_block = None, compact_after = None, grant_prefix = None,
        max_windows_per_sender = None, max_windows = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        dir: PathBuf,
        name: &str,
        identity: Option<&Identity>,
        grace_period: Option<u64>,
        sequence_block: Option<u64>,
        compact_after: Option<usize>,
        grant_prefix: Option<&str>,
        max_windows_per_sender: Option<usize>,
        max_windows: Option<usize>,
    ) -> StoreResult<Store> {
        let identity = match identity {
            Some(i) => i.0.clone(),
            None => mqseal::Identity::generate()?,
        };
        let options = options(
            grace_period,
            sequence_block,
            compact_after,
            grant_prefix,
            (max_windows_per_sender, max_windows),
        )?;
        Ok(Store(ms::Store::create_with(dir, name, identity, options)?))
    }

    /// Opens the store in `dir`. The options are this program's tunables (not stored).
    #[staticmethod]
    #[pyo3(signature = (dir, *, grace_period = None, sequence_block = None,
        compact_after = None, grant_prefix = None, max_windows_per_sender = None,
        max_windows = None))]
    fn open(
        dir: PathBuf,
        grace_period: Option<u64>,
        sequence_block: Option<u64>,
        compact_after: Option<usize>,
        grant_prefix: Option<&str>,
        max_windows_per_sender: Option<usize>,
        max_windows: Option<usize>,
    ) -> StoreResult<Store> {
        let options = options(
            grace_period,
            sequence_block,
            compact_after,
            grant_prefix,
            (max_windows_per_sender, max_windows),
        )?;
        Ok(Store(ms::Store::open_with(dir, options)?))
    }

    /// The store directory.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.0.dir().to_path_buf()
    }

    /// This identity's name.
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    /// This store's identity (its seed is in `identity.key`).
    #[getter]
    fn identity(&self) -> Identity {
        Identity(self.0.identity().clone())
    }

    /// This store's public identity.
    #[getter]
    fn public(&self) -> PublicIdentity {
        PublicIdentity(self.0.public())
    }

    /// This store's fingerprint (64 hex digits).
    #[getter]
    fn fingerprint(&self) -> String {
        hex(&self.0.fingerprint().0)
    }

    /// The line peers add to trust this identity (`name mqseal-pub1:<hex>`, no newline).
    #[getter]
    fn public_line(&self) -> String {
        self.0.public_line().trim_end().to_string()
    }

    /// The topic filter on which this identity's grants arrive (`<prefix>/<fingerprint>/+`);
    /// subscribe to it and pass each message to `accept_grant_message`.
    #[getter]
    fn grant_subscription(&self) -> String {
        self.0
            .options()
            .grant_topics
            .subscription(&self.0.fingerprint())
    }

    // ----- trusted peers -----

    /// The trusted peers (this store's own identity is implicitly trusted and not listed).
    fn trusted(&self) -> StoreResult<Vec<TrustedPeer>> {
        Ok(self
            .0
            .trusted()?
            .into_iter()
            .map(TrustedPeer::from)
            .collect())
    }

    /// The trusted peer named `name` (`UnknownPeerError` if none).
    fn peer(&self, name: &str) -> StoreResult<TrustedPeer> {
        Ok(self.0.peer(name)?.into())
    }

    /// Trusts `public` under `name`: as a sender (its messages are accepted) and/or an issuer
    /// (its grants are accepted). `scope` (issuers only): the filters its grants may be for
    /// (empty: every filter, an administrator). `group_mac` (senders only): filters on whose
    /// topics its unsigned `group-mac` messages are accepted (empty: signed only).
    #[pyo3(signature = (name, public, *, sender = true, issuer = false, scope = Vec::new(), group_mac = Vec::new()))]
    fn trust(
        &self,
        name: &str,
        public: &PublicIdentity,
        sender: bool,
        issuer: bool,
        scope: Vec<String>,
        group_mac: Vec<String>,
    ) -> StoreResult<TrustedPeer> {
        let mut peer = ms::TrustedPeer::new(name, public.0.clone(), roles(sender, issuer));
        peer.scope = scope;
        peer.group_mac = group_mac;
        Ok(self.0.trust_peer(peer)?.into())
    }

    /// Replaces the scope of the issuer named `name` (empty: every filter).
    fn set_scope(&self, name: &str, scope: Vec<String>) -> StoreResult<TrustedPeer> {
        let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
        Ok(self.0.set_scope(name, &scope)?.into())
    }

    /// Replaces the filters on which the sender named `name` may send `group-mac` messages
    /// (empty: signed only).
    fn set_group_mac(&self, name: &str, filters: Vec<String>) -> StoreResult<TrustedPeer> {
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        Ok(self.0.set_group_mac(name, &filters)?.into())
    }

    /// Trusts the peer of an `identity.pub` line (`name mqseal-pub1:<hex>`).
    #[pyo3(signature = (line, *, sender = true, issuer = false))]
    fn trust_line(&self, line: &str, sender: bool, issuer: bool) -> StoreResult<TrustedPeer> {
        Ok(self.0.trust_line(line, roles(sender, issuer))?.into())
    }

    /// Changes what the peer named `name` is trusted for.
    #[pyo3(signature = (name, *, sender, issuer))]
    fn set_roles(&self, name: &str, sender: bool, issuer: bool) -> StoreResult<TrustedPeer> {
        Ok(self.0.set_roles(name, roles(sender, issuer))?.into())
    }

    /// Stops trusting the peer named `name` and returns it.
    fn untrust(&self, name: &str) -> StoreResult<TrustedPeer> {
        Ok(self.0.untrust(name)?.into())
    }

    // ----- keys -----

    /// Every held key, with its retirement time.
    fn held_keys(&self) -> StoreResult<Vec<HeldKey>> {
        Ok(self.0.held_keys()?.into_iter().map(HeldKey).collect())
    }

    /// The keys a sealer uses at `now` (default: the current time): of one lineage per filter,
    /// those not retired, and retired ones whose successor has not begun yet (granted ahead of
    /// time), each with its validity.
    #[pyo3(signature = (now = None))]
    fn sealing_keys(&self, now: Option<u64>) -> StoreResult<Vec<TreeKey>> {
        Ok(self
            .0
            .sealing_keys_at(now_or(now))?
            .into_iter()
            .map(TreeKey)
            .collect())
    }

    /// Creates a random root key for `filter` (one this store holds no key for), valid from
    /// `not_before` (0: always) to `not_after` (None: never expires).
    #[pyo3(signature = (filter, now = None, *, not_before = 0, not_after = None))]
    fn create_key(
        &self,
        filter: Filter,
        now: Option<u64>,
        not_before: u64,
        not_after: Option<u64>,
    ) -> StoreResult<HeldKey> {
        let validity = mqseal::Validity::new(not_before, not_after)?;
        Ok(HeldKey(self.0.create_key_with(
            &filter,
            validity,
            now_or(now),
        )?))
    }

    /// Adds a key by hand (`issuer`: the fingerprint of whoever delivered it). A newer epoch
    /// retires older epochs of the same filter; an older one is refused (`StaleKeyError`).
    #[pyo3(signature = (key, issuer = None, now = None))]
    fn add_key(
        &self,
        key: &TreeKey,
        issuer: Option<&str>,
        now: Option<u64>,
    ) -> PyResult<KeyUpdate> {
        let issuer = issuer.map(parse_fingerprint).transpose()?;
        let update = self
            .0
            .add_key(key.0.clone(), issuer, now_or(now))
            .map_err(StoreFailure)?;
        Ok(KeyUpdate::from(update))
    }

    /// Removes a held key (a tombstone keeps it from coming back); returns whether it was held.
    fn remove_key(&self, filter: &str, epoch: u32) -> StoreResult<bool> {
        Ok(self.0.remove_key(filter, epoch)?)
    }

    /// Removes every key whose retirement grace period ended before `now`, or whose validity
    /// ended more than the grace period before `now`; returns their (filter, epoch).
    #[pyo3(signature = (now = None))]
    fn prune(&self, now: Option<u64>) -> StoreResult<Vec<(String, u32)>> {
        Ok(self
            .0
            .prune(now_or(now))?
            .into_iter()
            .map(|t| (t.filter, t.epoch))
            .collect())
    }

    // ----- grants -----

    /// Issues a grant of `filter` (a held key's filter or one below it) to the trusted peer
    /// `recipient_name`, or to `recipient` recorded under that name. Publish it retained.
    #[pyo3(signature = (filter, recipient_name, recipient = None))]
    fn issue_grant(
        &self,
        filter: &str,
        recipient_name: &str,
        recipient: Option<&PublicIdentity>,
    ) -> StoreResult<OutgoingGrant> {
        let grant = match recipient {
            Some(r) => self.0.issue_grant_to(filter, recipient_name, &r.0)?,
            None => self.0.issue_grant(filter, recipient_name)?,
        };
        Ok(grant.into())
    }

    /// Verifies, unwraps and stores a grant addressed to this identity from a trusted issuer.
    #[pyo3(signature = (grant, now = None))]
    fn accept_grant(&self, grant: &Grant, now: Option<u64>) -> StoreResult<AcceptedGrant> {
        Ok(self.0.accept_grant(&grant.0, now_or(now))?.into())
    }

    /// Handles a message from `grant_subscription`: returns the accepted grant, or `None` for an
    /// empty payload (a cleared retained message).
    #[pyo3(signature = (topic, payload, now = None))]
    fn accept_grant_message(
        &self,
        topic: Topic,
        payload: PyBackedBytes,
        now: Option<u64>,
    ) -> StoreResult<Option<AcceptedGrant>> {
        Ok(self
            .0
            .accept_grant_message(&topic, &payload, now_or(now))?
            .map(AcceptedGrant::from))
    }

    /// Rotates the root key of `filter`: a fresh key at the next epoch and grants of it for every
    /// member except the fingerprints in `exclude` (which are thereby revoked). The new key is
    /// valid from `not_before` to `not_after`: a `not_before` ahead grants the next epoch ahead
    /// of time (members switch to it then by themselves), a `not_after` bounds how long it is
    /// used if the next rotation never reaches a member.
    #[pyo3(signature = (filter, exclude = Vec::new(), now = None, *, not_before = 0, not_after = None))]
    fn rotate(
        &self,
        filter: &str,
        exclude: Vec<String>,
        now: Option<u64>,
        not_before: u64,
        not_after: Option<u64>,
    ) -> PyResult<Rotation> {
        let exclude = exclude
            .iter()
            .map(|f| parse_fingerprint(f))
            .collect::<PyResult<Vec<_>>>()?;
        let validity = mqseal::Validity::new(not_before, not_after).map_err(CoreError)?;
        let rotation = self
            .0
            .rotate_with(filter, &exclude, validity, now_or(now))
            .map_err(StoreFailure)?;
        Ok(Rotation::from(rotation))
    }

    /// Fresh grants of the current epoch of root `filter` for all its members (to republish).
    fn reissue(&self, filter: &str) -> StoreResult<Vec<OutgoingGrant>> {
        Ok(self
            .0
            .reissue(filter)?
            .into_iter()
            .map(OutgoingGrant::from)
            .collect())
    }

    /// The grants this store issued.
    fn issued(&self) -> StoreResult<Vec<IssuedGrant>> {
        Ok(self
            .0
            .issued()?
            .into_iter()
            .map(IssuedGrant::from)
            .collect())
    }

    /// The members of root `filter`: issued grants of its newest live epoch.
    fn members(&self, filter: &str) -> StoreResult<Vec<IssuedGrant>> {
        Ok(self
            .0
            .members(filter)?
            .into_iter()
            .map(IssuedGrant::from)
            .collect())
    }

    // ----- sealing and opening -----

    /// A sealer with crash-safe sequence numbers and this store's keys (one per store at a
    /// time: `StoreLockedError` while another one is open). Close it (or use `with`) to release
    /// the lock. It seals only in the process that opened it (`StoreForkedError` after
    /// `os.fork()`).
    #[pyo3(signature = (profile = "signed"))]
    fn sealer(&self, profile: &str) -> PyResult<PersistentSealer> {
        let profile = parse_profile(profile)?;
        let sealer = self.0.sealer(profile).map_err(StoreFailure)?;
        Ok(PersistentSealer(Shared::new(sealer)))
    }

    /// An opener with persisted replay windows, this store's keys and trusted senders (one per
    /// store at a time). Close it (or use `with`) to release the lock.
    #[pyo3(signature = (policy = None))]
    fn opener(&self, policy: Option<&OpenPolicy>) -> StoreResult<PersistentOpener> {
        let policy = policy.map(OpenPolicy::core).unwrap_or_default();
        Ok(PersistentOpener(Shared::new(self.0.opener(policy)?)))
    }

    /// The durable sequence reservation (no number at or above it was ever used).
    fn reserved_sequence(&self) -> StoreResult<u64> {
        Ok(self.0.reserved_sequence()?)
    }

    /// Raises the sequence reservation to at least `floor` (recovery after losing
    /// `state/seq`); returns it.
    fn raise_sequence_floor(&self, floor: u64) -> StoreResult<u64> {
        Ok(self.0.raise_sequence_floor(floor)?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Store(dir={}, name={}, fingerprint='{}')",
            py_repr(py, &self.0.dir().to_string_lossy())?,
            py_repr(py, self.0.name())?,
            self.0.fingerprint()
        ))
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("operation on a closed sealer/opener")
}

/// A persistent sealer or opener shared with Python threads: a mutex around it (taken without the
/// GIL, so file writes and fsyncs never stall other Python threads), empty once closed.
struct Shared<T>(Mutex<Option<T>>);

impl<T: Send> Shared<T> {
    fn new(inner: T) -> Shared<T> {
        Shared(Mutex::new(Some(inner)))
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        // A panic while holding the lock cannot leave the store inconsistent (its files are
        // written atomically), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the inner value with the GIL held (quick, in-memory operations).
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> PyResult<R> {
        self.lock().as_mut().map(f).ok_or_else(closed)
    }

    /// Runs `f` on the inner value with the GIL released (anything that may touch the disk).
    fn detached<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut T) -> R + Send) -> PyResult<R> {
        py.detach(|| self.lock().as_mut().map(f)).ok_or_else(closed)
    }

    fn close(&self, py: Python<'_>) {
        let taken = py.detach(|| self.lock().take());
        drop(taken);
    }

    fn is_closed(&self) -> bool {
        self.lock().is_none()
    }
}

/// A sealer whose sequence numbers never repeat, even after a crash (it reserves blocks in the
/// store before using them). Holds the store's sealing lock until closed. Safe to share between
/// threads; sealing releases the GIL while it waits for the disk.
#[pyclass(module = "mqseal", frozen)]
pub struct PersistentSealer(Shared<ms::PersistentSealer>);

#[pymethods]
impl PersistentSealer {
    /// Seals `payload` for `topic` (see `Sealer.seal`), reserving the next block of sequence
    /// numbers durably when needed.
    ///
    /// In a process forked from the one that opened it, sealing fails with `StoreForkedError`
    /// (both processes would hand out the same sequence numbers): open a new sealer there once
    /// the parent released the store.
    #[pyo3(signature = (topic, payload, retain = false, timestamp = Timestamp::Now))]
    #[pyo3(text_signature = "($self, topic, payload, retain=False, timestamp='now')")]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        topic: Topic,
        payload: PyBackedBytes,
        retain: bool,
        timestamp: Timestamp,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let topic: &str = &topic;
        let options = timestamp.options(retain);
        let sealed = self
            .0
            .detached(py, |s| s.seal_with(topic, &payload, &options))?
            .map_err(StoreFailure)?;
        Ok(PyBytes::new(py, &sealed))
    }

    /// The sequence number the next message will carry.
    #[getter]
    fn next_seq(&self) -> PyResult<u64> {
        self.0.with(|s| s.next_seq())
    }

    /// The durable reservation: numbers below it may be used without another write.
    #[getter]
    fn reserved(&self) -> PyResult<u64> {
        self.0.with(|s| s.reserved())
    }

    /// `"signed"` or `"group-mac"`.
    #[getter]
    fn profile(&self) -> PyResult<&'static str> {
        self.0.with(|s| s.profile().name())
    }

    /// The public identity messages are sealed as.
    #[getter]
    fn public(&self) -> PyResult<PublicIdentity> {
        self.0
            .with(|s| PublicIdentity(s.sealer().identity().public()))
    }

    /// Adds a key to seal with.
    fn add_key(&self, key: &TreeKey) -> PyResult<()> {
        self.0.with(|s| s.add_key(key.0.clone()))
    }

    /// Forgets the key of `filter` at `epoch`; returns whether it was held.
    fn remove_key(&self, filter: &str, epoch: u32) -> PyResult<bool> {
        self.0.with(|s| s.remove_key(filter, epoch))
    }

    /// Replaces the keys (e.g. with `Store.sealing_keys()` after a grant or rotation).
    fn set_keys(&self, keys: Vec<PyRef<'_, TreeKey>>) -> PyResult<()> {
        let keys: Vec<mqseal::TreeKey> = keys.iter().map(|k| k.0.clone()).collect();
        self.0.with(|s| s.set_keys(keys))
    }

    /// Releases the store's sealing lock; the sealer cannot be used afterwards.
    fn close(&self, py: Python<'_>) {
        self.0.close(py);
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.0.is_closed()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        self.0
            .with(|s| {
                format!(
                    "PersistentSealer(fingerprint='{}', profile='{}', next_seq={}, reserved={})",
                    s.sealer().identity().fingerprint(),
                    s.profile().name(),
                    s.next_seq(),
                    s.reserved()
                )
            })
            .unwrap_or_else(|_| "PersistentSealer(closed)".to_string())
    }
}

/// An opener whose replay windows are persisted before each message is returned, so a restarted
/// subscriber still refuses replays. Holds the store's opening lock until closed. Safe to share
/// between threads; opening releases the GIL while it waits for the disk.
#[pyclass(module = "mqseal", frozen)]
pub struct PersistentOpener(Shared<ms::PersistentOpener>);

#[pymethods]
impl PersistentOpener {
    /// Verifies, decrypts, replay-checks `data` received on `topic` and persists its acceptance
    /// before returning it (arguments as for `Opener.open`).
    #[pyo3(signature = (topic, data, retained = false, duplicate = false, now = None))]
    fn open(
        &self,
        py: Python<'_>,
        topic: Topic,
        data: PyBackedBytes,
        retained: bool,
        duplicate: bool,
        now: Option<u64>,
    ) -> PyResult<Opened> {
        let topic: &str = &topic;
        let delivery = mqseal::Delivery {
            retained,
            duplicate,
            now,
        };
        let opened = self
            .0
            .detached(py, |o| o.open_delivered(topic, &data, &delivery))?
            .map_err(StoreFailure)?;
        Ok(Opened::from_core(opened))
    }

    /// Group commit: opens `messages` (`(topic, data)` pairs, all delivered with the same
    /// flags) with their signatures verified together, and persists every acceptance with one
    /// `fdatasync` before returning anything. Returns, in order, an `Opened` or the refusal (an
    /// `MqsealError` instance, not raised) for each message. Raises a `StoreError` if the sync
    /// fails: then no message of the batch counts as delivered (each is accepted again when
    /// redelivered). A crash before the sync likewise loses only acceptances never returned.
    #[pyo3(signature = (messages, *, retained = false, duplicate = false, now = None))]
    fn open_batch(
        &self,
        py: Python<'_>,
        messages: Vec<(String, PyBackedBytes)>,
        retained: bool,
        duplicate: bool,
        now: Option<u64>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let delivery = mqseal::Delivery {
            retained,
            duplicate,
            now,
        };
        let items: Vec<mqseal::BatchItem<'_>> = messages
            .iter()
            .map(|(topic, data)| mqseal::BatchItem {
                topic,
                message: data,
                delivery,
            })
            .collect();
        let results = self
            .0
            .detached(py, |o| o.open_batch(&items))?
            .map_err(StoreFailure)?;
        results
            .into_iter()
            .map(|r| match r {
                Ok(opened) => Ok(Py::new(py, Opened::from_core(opened))?.into_any()),
                Err(e) => Ok(crate::errors::to_py(py, e).into_value(py).into_any()),
            })
            .collect()
    }

    /// The number of persisted replay windows (sender, profile, epoch, topic).
    #[getter]
    fn window_count(&self) -> PyResult<usize> {
        self.0.with(|o| o.window_count())
    }

    /// The eviction floor of `sender` in `profile` (see `Opener.replay_floor`), persisted with
    /// the windows.
    #[pyo3(signature = (sender, *, profile = "signed"))]
    fn replay_floor(&self, sender: &Bound<'_, PyAny>, profile: &str) -> PyResult<Option<u64>> {
        let fp = fingerprint_arg(sender)?;
        let profile = crate::convert::parse_profile(profile)?;
        self.0.with(|o| o.opener().replay_floor(&fp, profile))
    }

    /// The highest sequence number accepted from `sender` (a `PublicIdentity` or its
    /// fingerprint) in `profile` on any topic and epoch, restored from the persisted windows
    /// (see `Opener.high_water_mark`).
    #[pyo3(signature = (sender, *, profile = "signed"))]
    fn high_water_mark(&self, sender: &Bound<'_, PyAny>, profile: &str) -> PyResult<Option<u64>> {
        let fp = fingerprint_arg(sender)?;
        let profile = crate::convert::parse_profile(profile)?;
        self.0.with(|o| o.opener().high_water_mark(&fp, profile))
    }

    /// The current policy.
    #[getter]
    fn policy(&self) -> PyResult<OpenPolicy> {
        self.0.with(|o| OpenPolicy::from_core(o.opener().policy()))
    }

    /// Replaces the trusted senders: each a `PublicIdentity` (signed messages only) or a
    /// `TrustedPeer` (e.g. from `Store.trusted()` after a change; peers without the sender
    /// role are skipped), whose `group_mac` filters also admit its `group-mac` messages there.
    fn set_senders(&self, senders: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut list = Vec::new();
        for item in senders.try_iter()? {
            let item = item?;
            if let Ok(p) = item.cast::<TrustedPeer>() {
                let p = p.get();
                if !p.sender {
                    continue; // an issuer only: its messages are not trusted
                }
                list.push(ms::TrustedSender {
                    public: p.public.0.clone(),
                    group_mac: p.group_mac.clone(),
                });
            } else {
                let public = item.cast::<PublicIdentity>().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(
                        "senders: expected PublicIdentity or TrustedPeer items",
                    )
                })?;
                list.push(ms::TrustedSender {
                    public: public.get().0.clone(),
                    group_mac: Vec::new(),
                });
            }
        }
        self.0
            .with(|o| o.set_senders(list))?
            .map_err(|e| StoreFailure(e).into())
    }

    /// Replaces the keys with `Store.held_keys()` (after a grant or a rotation).
    fn set_keys(&self, keys: Vec<PyRef<'_, HeldKey>>) -> PyResult<()> {
        let keys: Vec<ms::HeldKey> = keys.iter().map(|k| k.0.clone()).collect();
        self.0.with(|o| o.set_keys(&keys))
    }

    /// Adds or updates one held key.
    fn add_key(&self, key: &HeldKey) -> PyResult<()> {
        self.0.with(|o| o.add_key(&key.0))
    }

    /// Retires a key: accepted until `not_after`, then refused with `EpochExpiredError`.
    fn retire_key(&self, filter: &str, epoch: u32, not_after: u64) -> PyResult<()> {
        self.0.with(|o| o.retire_key(filter, epoch, not_after))
    }

    /// Folds the replay journal into a new snapshot now.
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        Ok(self
            .0
            .detached(py, |o| o.compact())?
            .map_err(StoreFailure)?)
    }

    /// Releases the store's opening lock; the opener cannot be used afterwards.
    fn close(&self, py: Python<'_>) {
        self.0.close(py);
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.0.is_closed()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        self.0
            .with(|o| format!("PersistentOpener(windows={})", o.window_count()))
            .unwrap_or_else(|_| "PersistentOpener(closed)".to_string())
    }
}

/// A trusted peer: its local name, public identity and roles.
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct TrustedPeer {
    /// Local name (unique in the store).
    name: String,
    /// The peer's public identity.
    public: PublicIdentity,
    /// Its messages are accepted.
    sender: bool,
    /// Its grants are accepted.
    issuer: bool,
    /// As an issuer, the filters its grants may be for (empty: every filter).
    scope: Vec<String>,
    /// As a sender, the filters on which its `group-mac` messages are accepted (empty: signed
    /// only).
    group_mac: Vec<String>,
    /// Its fingerprint (64 hex digits).
    fingerprint: String,
    /// Its line in the `trusted` file.
    line: String,
}

impl From<ms::TrustedPeer> for TrustedPeer {
    fn from(p: ms::TrustedPeer) -> TrustedPeer {
        TrustedPeer {
            fingerprint: hex(&p.fingerprint().0),
            line: p.line(),
            name: p.name,
            public: PublicIdentity(p.public),
            sender: p.roles.sender,
            issuer: p.roles.issuer,
            scope: p.scope,
            group_mac: p.group_mac,
        }
    }
}

#[pymethods]
impl TrustedPeer {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TrustedPeer(name={}, fingerprint='{}', sender={}, issuer={}, scope={:?}, group_mac={:?})",
            py_repr(py, &self.name)?,
            self.fingerprint,
            py_bool(self.sender),
            py_bool(self.issuer),
            self.scope,
            self.group_mac
        ))
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A key held by the store, with its retirement time and who delivered it.
#[pyclass(module = "mqseal", frozen)]
pub struct HeldKey(ms::HeldKey);

#[pymethods]
impl HeldKey {
    /// The key.
    #[getter]
    fn key(&self) -> TreeKey {
        TreeKey(self.0.key.clone())
    }

    /// The key's filter.
    #[getter]
    fn filter(&self) -> &str {
        self.0.filter()
    }

    /// The key's epoch.
    #[getter]
    fn epoch(&self) -> u32 {
        self.0.epoch()
    }

    /// When openers stop accepting this epoch (set once a newer epoch arrived), if retired. (The
    /// key's own validity is `key.not_before` .. `key.not_after`.)
    #[getter]
    fn not_after(&self) -> Option<u64> {
        self.0.not_after
    }

    /// Fingerprint of the identity whose grant delivered it (`None`: created here).
    #[getter]
    fn issuer(&self) -> Option<String> {
        self.0.issuer.map(|f| hex(&f.0))
    }

    /// Whether openers still accept it at `now` (default: the current time).
    #[pyo3(signature = (now = None))]
    fn is_live(&self, now: Option<u64>) -> bool {
        self.0.is_live(now_or(now))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "HeldKey(filter={}, epoch={}, not_after={})",
            py_repr(py, self.0.filter())?,
            self.0.epoch(),
            self.0
                .not_after
                .map_or("None".to_string(), |t| t.to_string())
        ))
    }
}

/// A grant to publish, retained, on `topic` with `payload` (safe for the broker to see).
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct OutgoingGrant {
    /// The recipient's name in the issuer's store.
    recipient_name: String,
    /// The recipient's fingerprint.
    recipient: String,
    /// The granted filter.
    filter: String,
    /// The epoch.
    epoch: u32,
    /// Where to publish it.
    topic: String,
    /// What to publish.
    payload: Py<PyBytes>,
    /// Publish it retained (always true: an offline recipient gets it when it connects).
    retain: bool,
}

impl From<ms::OutgoingGrant> for OutgoingGrant {
    fn from(g: ms::OutgoingGrant) -> OutgoingGrant {
        OutgoingGrant {
            recipient_name: g.recipient_name,
            recipient: hex(&g.recipient.0),
            filter: g.filter,
            epoch: g.epoch,
            topic: g.topic,
            payload: Python::attach(|py| PyBytes::new(py, &g.payload).unbind()),
            retain: g.retain,
        }
    }
}

#[pymethods]
impl OutgoingGrant {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "OutgoingGrant(recipient_name={}, filter={}, epoch={}, topic={})",
            py_repr(py, &self.recipient_name)?,
            py_repr(py, &self.filter)?,
            self.epoch,
            py_repr(py, &self.topic)?
        ))
    }
}

/// What adding a key changed.
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct KeyUpdate {
    /// The key's filter.
    filter: String,
    /// The key's epoch.
    epoch: u32,
    /// False if the same key was already held.
    added: bool,
    /// Older epochs retired by it: (epoch, not_after).
    retired: Vec<(u32, u64)>,
}

impl From<ms::KeyUpdate> for KeyUpdate {
    fn from(u: ms::KeyUpdate) -> KeyUpdate {
        KeyUpdate {
            filter: u.filter,
            epoch: u.epoch,
            added: u.added,
            retired: u.retired,
        }
    }
}

#[pymethods]
impl KeyUpdate {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "KeyUpdate(filter={}, epoch={}, added={}, retired={:?})",
            py_repr(py, &self.filter)?,
            self.epoch,
            py_bool(self.added),
            self.retired
        ))
    }
}

/// A grant accepted and stored.
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct AcceptedGrant {
    /// The key it carried (now held by the store).
    key: TreeKey,
    /// The issuer's fingerprint.
    issuer: String,
    /// The issuer's name among the trusted peers (`None`: this store's own identity).
    issuer_name: Option<String>,
    /// False if the store already held this key.
    added: bool,
    /// Older epochs retired by it: (epoch, not_after).
    retired: Vec<(u32, u64)>,
}

impl From<ms::AcceptedGrant> for AcceptedGrant {
    fn from(a: ms::AcceptedGrant) -> AcceptedGrant {
        AcceptedGrant {
            key: TreeKey(a.key),
            issuer: hex(&a.issuer.0),
            issuer_name: a.issuer_name,
            added: a.update.added,
            retired: a.update.retired,
        }
    }
}

#[pymethods]
impl AcceptedGrant {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "AcceptedGrant(filter={}, epoch={}, issuer='{}', added={})",
            py_repr(py, self.key.0.filter().as_str())?,
            self.key.0.epoch(),
            self.issuer,
            py_bool(self.added)
        ))
    }
}

/// The result of a rotation: publish every grant, retained.
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct Rotation {
    /// The rotated filter.
    filter: String,
    /// The new epoch.
    epoch: u32,
    /// The new epoch's validity start (0: always).
    not_before: u64,
    /// The new epoch's validity end (None: never expires).
    not_after: Option<u64>,
    /// Older epochs retired here: (epoch, not_after).
    retired: Vec<(u32, u64)>,
    /// Grants of the new epoch for every remaining member.
    grants: Vec<Py<OutgoingGrant>>,
    /// Fingerprints of the members left out (revoked).
    excluded: Vec<String>,
}

impl From<ms::Rotation> for Rotation {
    fn from(r: ms::Rotation) -> Rotation {
        Python::attach(|py| Rotation {
            filter: r.filter,
            epoch: r.epoch,
            not_before: r.validity.not_before(),
            not_after: r.validity.not_after(),
            retired: r.retired,
            grants: r
                .grants
                .into_iter()
                .filter_map(|g| Py::new(py, OutgoingGrant::from(g)).ok())
                .collect(),
            excluded: r.excluded.iter().map(|f| hex(&f.0)).collect(),
        })
    }
}

#[pymethods]
impl Rotation {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Rotation(filter={}, epoch={}, grants={}, excluded={})",
            py_repr(py, &self.filter)?,
            self.epoch,
            self.grants.len(),
            self.excluded.len()
        ))
    }
}

/// A grant this store issued: who holds which filter of which epoch.
#[pyclass(module = "mqseal", frozen, get_all)]
pub struct IssuedGrant {
    /// The held key's filter it was derived from.
    root_filter: String,
    /// The epoch.
    epoch: u32,
    /// The filter the recipient received.
    granted_filter: String,
    /// The recipient's name.
    recipient_name: String,
    /// The recipient.
    recipient: PublicIdentity,
}

impl From<ms::IssuedGrant> for IssuedGrant {
    fn from(g: ms::IssuedGrant) -> IssuedGrant {
        IssuedGrant {
            root_filter: g.root_filter,
            epoch: g.epoch,
            granted_filter: g.granted_filter,
            recipient_name: g.recipient_name,
            recipient: PublicIdentity(g.recipient),
        }
    }
}

#[pymethods]
impl IssuedGrant {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "IssuedGrant(granted_filter={}, epoch={}, recipient_name={})",
            py_repr(py, &self.granted_filter)?,
            self.epoch,
            py_repr(py, &self.recipient_name)?
        ))
    }
}
