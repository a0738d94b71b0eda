//! `TreeKey` and `TopicKey`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::convert::{Filter, Topic, array32, parse_profile, py_repr};
use crate::errors::{CoreError, CoreResult};

/// A secret key for a filter (`#`, `prefix/#` or an exact topic) at an epoch, with a validity
/// `[not_before, not_after]` (seconds since the Unix epoch, inclusive; `not_before` 0: always,
/// `not_after` None: never expires).
///
/// Derives narrower keys downwards only (with the same validity). Sealers use a key only inside
/// its validity (`KeyExpiredError`; a key whose `not_before` is ahead waits until then),
/// openers refuse messages under it outside `[not_before - max_future_skew, not_after +
/// validity_grace]`, and grants carry it signed. The secret never appears in `repr`.
#[pyclass(module = "mqseal", frozen)]
#[derive(Clone)]
pub struct TreeKey(pub mqseal::TreeKey);

#[pymethods]
impl TreeKey {
    /// A fresh random key for `filter` at `epoch`, valid from `not_before` to `not_after`.
    #[staticmethod]
    #[pyo3(signature = (filter, epoch, *, not_before = 0, not_after = None))]
    fn generate(
        filter: Filter,
        epoch: u32,
        not_before: u64,
        not_after: Option<u64>,
    ) -> CoreResult<TreeKey> {
        let validity = mqseal::Validity::new(not_before, not_after)?;
        Ok(TreeKey(
            mqseal::TreeKey::generate(&filter, epoch)?.with_validity(validity),
        ))
    }

    /// Wraps an existing 32-byte secret (e.g. loaded from a keystore), valid from `not_before`
    /// to `not_after` (`MalformedError` if `not_before > not_after` or `not_after` is 0).
    #[staticmethod]
    #[pyo3(signature = (filter, epoch, secret, *, not_before = 0, not_after = None))]
    fn from_secret(
        filter: Filter,
        epoch: u32,
        secret: PyBackedBytes,
        not_before: u64,
        not_after: Option<u64>,
    ) -> PyResult<TreeKey> {
        let secret = Zeroizing::new(array32(&secret, "secret")?);
        let validity = mqseal::Validity::new(not_before, not_after).map_err(CoreError)?;
        Ok(TreeKey(
            mqseal::TreeKey::from_secret(&filter, epoch, *secret)
                .map_err(CoreError)?
                .with_validity(validity),
        ))
    }

    /// This key with another validity (the secret, filter and epoch unchanged).
    #[pyo3(signature = (*, not_before = 0, not_after = None))]
    fn with_validity(&self, not_before: u64, not_after: Option<u64>) -> CoreResult<TreeKey> {
        let validity = mqseal::Validity::new(not_before, not_after)?;
        Ok(TreeKey(self.0.clone().with_validity(validity)))
    }

    /// The first second this key may be used (0: always).
    #[getter]
    fn not_before(&self) -> u64 {
        self.0.validity().not_before()
    }

    /// The last second this key may be used (None: never expires).
    #[getter]
    fn not_after(&self) -> Option<u64> {
        self.0.validity().not_after()
    }

    /// The filter this key covers, as written.
    #[getter]
    fn filter(&self) -> &str {
        self.0.filter().as_str()
    }

    /// The epoch of this key.
    #[getter]
    fn epoch(&self) -> u32 {
        self.0.epoch()
    }

    /// `"subtree"` for `#` and `prefix/#`, `"exact"` for one topic.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0.filter().kind() {
            mqseal::FilterKind::Subtree => "subtree",
            _ => "exact",
        }
    }

    /// The 32 secret bytes, for storage or transport. Handle with care.
    fn secret_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.secret_bytes().as_ref())
    }

    /// Whether this key covers the topic name `topic`.
    fn covers(&self, topic: &str) -> bool {
        self.0.covers(topic)
    }

    /// The key of a narrower filter (a subtree below this one or a covered exact topic).
    fn derive(&self, filter: Filter) -> CoreResult<TreeKey> {
        Ok(TreeKey(self.0.derive(&filter)?))
    }

    /// The key of the exact topic `topic`.
    fn topic_key(&self, topic: Topic) -> CoreResult<TopicKey> {
        Ok(TopicKey(self.0.topic_key(&topic)?))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let validity = self.0.validity();
        let limits = if validity.is_limited() {
            format!(
                ", not_before={}, not_after={}",
                validity.not_before(),
                validity
                    .not_after()
                    .map_or("None".to_string(), |t| t.to_string())
            )
        } else {
            String::new()
        };
        Ok(format!(
            "TreeKey(filter={}, epoch={}{limits})",
            py_repr(py, self.0.filter().as_str())?,
            self.0.epoch()
        ))
    }

    /// Constant-time comparison of filter, epoch and secret, and equal validities.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<TreeKey>()
            .is_ok_and(|o| o.get().0.ct_eq(&self.0) && o.get().0.validity() == self.0.validity())
    }
}

/// The key of one exact topic at one epoch (mostly for interop checks and test vectors).
#[pyclass(module = "mqseal", frozen)]
pub struct TopicKey(pub mqseal::TopicKey);

#[pymethods]
impl TopicKey {
    /// The epoch of the tree key it came from.
    #[getter]
    fn epoch(&self) -> u32 {
        self.0.epoch()
    }

    /// The SHA-256 topic digest bound into every message on the topic.
    #[getter]
    fn topic_digest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.topic_digest())
    }

    /// The 32 secret bytes. Handle with care.
    fn secret_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.secret_bytes().as_ref())
    }

    /// The 4-byte key id messages sealed under this topic key carry (spec section 4.6).
    #[getter]
    fn key_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.key_id())
    }

    /// The AEAD key of one message of the sender with Ed25519 key `sender_ed25519` under
    /// `profile`, with the message's 8-byte `salt` (spec section 4.7). Handle with care.
    fn message_key<'py>(
        &self,
        py: Python<'py>,
        profile: &str,
        sender_ed25519: PyBackedBytes,
        salt: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let profile = parse_profile(profile)?;
        let ed = array32(&sender_ed25519, "sender_ed25519")?;
        let salt: [u8; mqseal::SALT_LEN] = salt.as_ref().try_into().map_err(|_| {
            PyValueError::new_err(format!(
                "salt must be {} bytes, got {}",
                mqseal::SALT_LEN,
                salt.len()
            ))
        })?;
        Ok(PyBytes::new(
            py,
            self.0.message_key(profile, &ed, &salt).as_ref(),
        ))
    }

    /// The sender key of the sender with Ed25519 key `sender_ed25519` under `profile`: the key
    /// every message key of that sender on this topic is derived from (`message_key`).
    fn sender_key<'py>(
        &self,
        py: Python<'py>,
        profile: &str,
        sender_ed25519: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let profile = parse_profile(profile)?;
        let ed = array32(&sender_ed25519, "sender_ed25519")?;
        Ok(PyBytes::new(py, self.0.sender_key(profile, &ed).as_ref()))
    }

    fn __repr__(&self) -> String {
        format!("TopicKey(epoch={})", self.0.epoch())
    }

    /// Constant-time comparison of secret and epoch.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<TopicKey>()
            .is_ok_and(|o| o.get().0.ct_eq(&self.0))
    }
}
