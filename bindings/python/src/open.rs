//! `Opener`, its `OpenPolicy`, `Opened` messages, `ReplayWindow`, and `inspect`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::convert::{Topic, hex, parse_fingerprint, parse_profile};
use crate::errors::CoreResult;
use crate::identity::PublicIdentity;
use crate::keys::TreeKey;

// The default of `OpenPolicy(validity_grace=)` is written out for the signature Python shows.
const _: () = assert!(mqseal::DEFAULT_VALIDITY_GRACE == 86400);

/// What an opener accepts beyond authenticity.
#[pyclass(module = "mqseal", frozen, get_all)]
#[derive(Clone)]
pub struct OpenPolicy {
    /// Refuse messages whose timestamp is more than this many seconds old, and messages without
    /// a timestamp.
    max_age: Option<u64>,
    /// With `max_age`, refuse timestamps more than this many seconds in the future.
    max_future_skew: u64,
    /// Refuse messages without a timestamp (implied by `max_age`).
    require_timestamp: bool,
    /// Seconds after a key's `not_after` during which messages under it are still opened.
    validity_grace: u64,
}

impl OpenPolicy {
    /// The core policy.
    pub fn core(&self) -> mqseal::OpenPolicy {
        mqseal::OpenPolicy {
            max_age: self.max_age,
            max_future_skew: self.max_future_skew,
            require_timestamp: self.require_timestamp,
            validity_grace: self.validity_grace,
        }
    }

    /// Converts the core policy.
    pub fn from_core(p: &mqseal::OpenPolicy) -> OpenPolicy {
        OpenPolicy {
            max_age: p.max_age,
            max_future_skew: p.max_future_skew,
            require_timestamp: p.require_timestamp,
            validity_grace: p.validity_grace,
        }
    }
}

#[pymethods]
impl OpenPolicy {
    /// The default policy unless overridden: no age limit, 60 s of future skew once an age
    /// limit is set (and before a key's `not_before`), timestamps optional (required once an
    /// age limit is set), one day of grace after a key's `not_after` (`KeyExpiredError` after
    /// it). Which senders may use `group-mac` is set per sender and filter:
    /// `Opener.trust_group_mac_sender`.
    #[new]
    #[pyo3(signature = (
        *,
        max_age = None,
        max_future_skew = 60,
        require_timestamp = false,
        validity_grace = 86400
    ))]
    fn new(
        max_age: Option<u64>,
        max_future_skew: u64,
        require_timestamp: bool,
        validity_grace: u64,
    ) -> OpenPolicy {
        OpenPolicy {
            max_age,
            max_future_skew,
            require_timestamp,
            validity_grace,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "OpenPolicy(max_age={}, max_future_skew={}, require_timestamp={}, validity_grace={})",
            self.max_age.map_or("None".to_string(), |a| a.to_string()),
            self.max_future_skew,
            py_bool(self.require_timestamp),
            self.validity_grace
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<OpenPolicy>()
            .is_ok_and(|o| o.get().core() == self.core())
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("None".to_string(), |v| v.to_string())
}

/// A fingerprint given as a `PublicIdentity` or as 64 hex digits.
pub fn fingerprint_arg(sender: &Bound<'_, PyAny>) -> PyResult<mqseal::Fingerprint> {
    if let Ok(p) = sender.cast::<PublicIdentity>() {
        return Ok(p.get().0.fingerprint());
    }
    if let Ok(text) = sender.extract::<&str>() {
        return parse_fingerprint(text);
    }
    Err(PyTypeError::new_err(
        "expected a PublicIdentity or a fingerprint (64 hex digits)",
    ))
}

/// Opens sealed messages: trusted senders, keys, and a replay window per (sender, profile,
/// epoch, topic).
#[pyclass(module = "mqseal")]
pub struct Opener(pub mqseal::Opener);

#[pymethods]
impl Opener {
    /// An opener with no keys and no trusted senders, with `policy` (default: `OpenPolicy()`).
    #[new]
    #[pyo3(signature = (policy = None))]
    fn new(policy: Option<&OpenPolicy>) -> Opener {
        Opener(mqseal::Opener::with_policy(
            policy.map(OpenPolicy::core).unwrap_or_default(),
        ))
    }

    /// The current policy (assign an `OpenPolicy` to replace it).
    #[getter]
    fn policy(&self) -> OpenPolicy {
        OpenPolicy::from_core(self.0.policy())
    }

    #[setter]
    fn set_policy(&mut self, policy: &OpenPolicy) {
        self.0.set_policy(policy.core());
    }

    /// Trusts `signed` messages from `sender` (idempotent). Its `group-mac` messages are
    /// refused (`ProfileNotAllowedError`) unless `trust_group_mac_sender` allows them.
    fn trust_sender(&mut self, sender: &PublicIdentity) {
        self.0.trust_sender(sender.0.clone());
    }

    /// Trusts `sender` and also accepts its `group-mac` messages on topics covered by `filter`
    /// (call again to add filters). Any holder of the topic key can forge such messages: allow
    /// it only for senders that cannot sign, where they publish. Raises `InvalidFilterError`.
    fn trust_group_mac_sender(&mut self, sender: &PublicIdentity, filter: &str) -> CoreResult<()> {
        Ok(self.0.trust_group_mac_sender(sender.0.clone(), filter)?)
    }

    /// Stops trusting `sender` (a `PublicIdentity` or its fingerprint); returns whether it was
    /// trusted.
    fn untrust_sender(&mut self, sender: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.0.untrust_sender(&fingerprint_arg(sender)?))
    }

    /// Adds a key to open with. Keys of one filter and epoch with different secrets (other
    /// issuers' lineages) are all kept.
    fn add_key(&mut self, key: &TreeKey) {
        self.0.add_key(key.0.clone());
    }

    /// Adds `key` already retired: opened until `not_after` (inclusive), only this key.
    fn add_retired_key(&mut self, key: &TreeKey, not_after: u64) {
        self.0.add_retired_key(key.0.clone(), not_after);
    }

    /// Forgets every key of `filter` at `epoch` (and its retirement); returns whether one was
    /// held.
    fn remove_key(&mut self, filter: &str, epoch: u32) -> bool {
        self.0.remove_key(filter, epoch)
    }

    /// Retires the key of `filter` at `epoch` after a rotation: its messages are still opened
    /// until `not_after` (seconds since the Unix epoch, inclusive), then refused with
    /// `EpochExpiredError`.
    fn retire_key(&mut self, filter: &str, epoch: u32, not_after: u64) {
        self.0.retire_key(filter, epoch, not_after);
    }

    /// When the key of `filter` at `epoch` stops being accepted, if it was retired.
    fn key_retirement(&self, filter: &str, epoch: u32) -> Option<u64> {
        self.0.key_retirement(filter, epoch)
    }

    /// Verifies, decrypts and replay-checks `data` received on `topic`. `retained` and
    /// `duplicate` are the MQTT retain and DUP flags of the delivery; `now` (seconds since the
    /// Unix epoch) defaults to the system clock when a max age applies.
    #[pyo3(signature = (topic, data, retained = false, duplicate = false, now = None))]
    fn open(
        &mut self,
        topic: Topic,
        data: PyBackedBytes,
        retained: bool,
        duplicate: bool,
        now: Option<u64>,
    ) -> CoreResult<Opened> {
        let topic: &str = &topic;
        let delivery = mqseal::Delivery {
            retained,
            duplicate,
            now,
        };
        Ok(Opened::from_core(
            self.0.open_delivered(topic, &data, &delivery)?,
        ))
    }

    /// A copy of the replay window of (`sender`, `profile`, `epoch`, `topic`), if a message was
    /// accepted there. Each profile has its own windows, so forgeable `group-mac` messages
    /// never move a sender's `signed` window.
    #[pyo3(signature = (sender, epoch, topic, *, profile = "signed"))]
    fn replay_window(
        &self,
        sender: &Bound<'_, PyAny>,
        epoch: u32,
        topic: Topic,
        profile: &str,
    ) -> PyResult<Option<ReplayWindow>> {
        let topic: &str = &topic;
        let fp = fingerprint_arg(sender)?;
        Ok(self
            .0
            .replay_window(&fp, parse_profile(profile)?, epoch, topic)
            .map(|w| ReplayWindow(w.clone())))
    }

    /// Installs a replay window for (`sender`, `profile`, `epoch`, `topic`).
    #[pyo3(signature = (sender, epoch, topic, window, *, profile = "signed"))]
    fn set_replay_window(
        &mut self,
        sender: &Bound<'_, PyAny>,
        epoch: u32,
        topic: Topic,
        window: &ReplayWindow,
        profile: &str,
    ) -> PyResult<()> {
        let topic: &str = &topic;
        let fp = fingerprint_arg(sender)?;
        self.0
            .set_replay_window(fp, parse_profile(profile)?, epoch, topic, window.0.clone());
        Ok(())
    }

    /// The highest sequence number accepted from `sender` (a `PublicIdentity` or its
    /// fingerprint) in `profile` on any topic and epoch, if any: a live message on a topic this
    /// opener has no window for yet is refused (`TooOldError`) if it is `REPLAY_WINDOW` or more
    /// below it.
    #[pyo3(signature = (sender, *, profile = "signed"))]
    fn high_water_mark(&self, sender: &Bound<'_, PyAny>, profile: &str) -> PyResult<Option<u64>> {
        Ok(self
            .0
            .high_water_mark(&fingerprint_arg(sender)?, parse_profile(profile)?))
    }

    /// The eviction floor of `sender` in `profile`, if one of its windows was dropped to stay
    /// within the replay limits: numbers at or below it are refused (`TooOldError`) on every
    /// topic. Persist it with the windows.
    #[pyo3(signature = (sender, *, profile = "signed"))]
    fn replay_floor(&self, sender: &Bound<'_, PyAny>, profile: &str) -> PyResult<Option<u64>> {
        Ok(self
            .0
            .replay_floor(&fingerprint_arg(sender)?, parse_profile(profile)?))
    }

    /// Raises the eviction floor of `sender` in `profile` to at least `floor` (e.g. restored
    /// from disk; it never goes down).
    #[pyo3(signature = (sender, floor, *, profile = "signed"))]
    fn raise_replay_floor(
        &mut self,
        sender: &Bound<'_, PyAny>,
        floor: u64,
        profile: &str,
    ) -> PyResult<()> {
        let fp = fingerprint_arg(sender)?;
        self.0
            .raise_replay_floor(fp, parse_profile(profile)?, floor);
        Ok(())
    }

    /// The caps on replay windows: `(per_sender, total)` (defaults 1024 and 16384).
    #[getter]
    fn replay_limits(&self) -> (usize, usize) {
        let l = self.0.replay_limits();
        (l.per_sender, l.total)
    }

    /// Sets the caps on replay windows (each at least 1), evicting down to them at once: the
    /// windows with the lowest numbers go first and leave their sender a floor.
    fn set_replay_limits(&mut self, per_sender: usize, total: usize) {
        self.0
            .set_replay_limits(mqseal::ReplayLimits { per_sender, total });
    }

    /// The number of replay windows held.
    #[getter]
    fn replay_window_count(&self) -> usize {
        self.0.replay_window_count()
    }

    fn __repr__(&self) -> String {
        format!("Opener(policy={})", self.policy().__repr__())
    }
}

/// An opened message: the plaintext and who sent it.
#[pyclass(module = "mqseal", frozen)]
pub struct Opened {
    sender: PublicIdentity,
    seq: u64,
    epoch: u32,
    profile: &'static str,
    retain: bool,
    timestamp: Option<u64>,
    payload: Vec<u8>,
}

impl Opened {
    /// Converts the core's opened message.
    pub fn from_core(o: mqseal::Opened) -> Opened {
        Opened {
            sender: PublicIdentity(o.sender),
            seq: o.seq,
            epoch: o.epoch,
            profile: o.profile.name(),
            retain: o.retain,
            timestamp: o.timestamp,
            payload: o.payload,
        }
    }
}

#[pymethods]
impl Opened {
    /// The sender (authenticated by its signature in the `signed` profile).
    #[getter]
    fn sender(&self) -> PublicIdentity {
        self.sender.clone()
    }

    /// The sender's sequence number.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// The key epoch the message was sealed under.
    #[getter]
    fn epoch(&self) -> u32 {
        self.epoch
    }

    /// `"signed"` or `"group-mac"`.
    #[getter]
    fn profile(&self) -> &'static str {
        self.profile
    }

    /// Whether the publisher published it retained.
    #[getter]
    fn retain(&self) -> bool {
        self.retain
    }

    /// The sender's timestamp (seconds since the Unix epoch), if any.
    #[getter]
    fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// The plaintext.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.payload)
    }

    fn __repr__(&self) -> String {
        format!(
            "Opened(sender='{}', seq={}, epoch={}, profile='{}', retain={}, timestamp={}, payload=<{} bytes>)",
            self.sender.0.fingerprint(),
            self.seq,
            self.epoch,
            self.profile,
            py_bool(self.retain),
            opt(self.timestamp),
            self.payload.len()
        )
    }
}

/// The cleartext header of a sealed message (what anyone, the broker included, can read).
#[pyclass(module = "mqseal", frozen)]
pub struct Header {
    profile: &'static str,
    retain: bool,
    epoch: u32,
    sender_id: String,
    key_id: [u8; mqseal::KEY_ID_LEN],
    salt: [u8; mqseal::SALT_LEN],
    seq: u64,
    timestamp: Option<u64>,
}

#[pymethods]
impl Header {
    /// `"signed"` or `"group-mac"`.
    #[getter]
    fn profile(&self) -> &'static str {
        self.profile
    }

    /// Whether the publisher published it retained.
    #[getter]
    fn retain(&self) -> bool {
        self.retain
    }

    /// Epoch of the key it is sealed under.
    #[getter]
    fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The sender's 4-byte id (8 hex digits).
    #[getter]
    fn sender_id(&self) -> &str {
        &self.sender_id
    }

    /// The 4-byte id of the topic key it is sealed under (`TopicKey.key_id`): the one key a
    /// receiver tries.
    #[getter]
    fn key_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key_id)
    }

    /// The message's 8 random bytes, mixed into its key (not secret).
    #[getter]
    fn salt<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.salt)
    }

    /// The sender's sequence number.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// The sender's timestamp (seconds since the Unix epoch), if any.
    #[getter]
    fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    fn __repr__(&self) -> String {
        format!(
            "Header(profile='{}', retain={}, epoch={}, sender_id='{}', key_id='{}', salt='{}', \
             seq={}, timestamp={})",
            self.profile,
            py_bool(self.retain),
            self.epoch,
            self.sender_id,
            hex(&self.key_id),
            hex(&self.salt),
            self.seq,
            opt(self.timestamp)
        )
    }
}

/// Decodes the header of a sealed message without any key (nothing is verified).
#[pyfunction]
pub fn inspect(data: PyBackedBytes) -> CoreResult<Header> {
    let h = mqseal::inspect(&data)?;
    Ok(Header {
        profile: h.profile.name(),
        retain: h.retain,
        epoch: h.epoch,
        sender_id: hex(&h.sender.0),
        key_id: h.key_id,
        salt: h.salt,
        seq: h.seq,
        timestamp: h.timestamp,
    })
}

/// Checks that `topic` can be published to and sealed for (`InvalidTopicError` otherwise).
#[pyfunction]
pub fn validate_topic(topic: Topic) -> CoreResult<()> {
    Ok(mqseal::validate_topic(&topic)?)
}

/// Remembers which of the last `REPLAY_WINDOW` sequence numbers were accepted.
#[pyclass(module = "mqseal")]
pub struct ReplayWindow(pub mqseal::ReplayWindow);

#[pymethods]
impl ReplayWindow {
    /// An empty window: the first number seen is accepted.
    #[new]
    fn new() -> ReplayWindow {
        ReplayWindow(mqseal::ReplayWindow::new())
    }

    /// The highest accepted sequence number, if any.
    #[getter]
    fn highest(&self) -> Option<u64> {
        self.0.highest()
    }

    /// Raises `ReplayError` / `TooOldError` if `seq` would be refused, without recording it.
    fn check(&self, seq: u64) -> CoreResult<()> {
        Ok(self.0.check(seq)?)
    }

    /// Checks `seq` and records it as accepted.
    fn accept(&mut self, seq: u64) -> CoreResult<()> {
        Ok(self.0.accept(seq)?)
    }

    /// The window as `REPLAY_WINDOW_BYTES` bytes, to persist it across restarts
    /// (format: `spec/keystore.md`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    /// Restores a window saved with `to_bytes` (`MalformedError` if invalid).
    #[staticmethod]
    fn from_bytes(data: PyBackedBytes) -> CoreResult<ReplayWindow> {
        Ok(ReplayWindow(mqseal::ReplayWindow::from_bytes(&data)?))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<ReplayWindow>()
            .is_ok_and(|o| o.borrow().0 == self.0)
    }

    fn __repr__(&self) -> String {
        format!("ReplayWindow(highest={})", opt(self.0.highest()))
    }
}
