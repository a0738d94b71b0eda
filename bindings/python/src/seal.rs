//! `Sealer`.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::convert::{Topic, parse_profile};
use crate::errors::CoreResult;
use crate::identity::{Identity, PublicIdentity};
use crate::keys::TreeKey;

/// Seals messages for one sender and owns its sequence counter.
///
/// Never run two sealers for the same identity at once, and persist `next_seq` (or reserve
/// blocks with `set_sequence`) across restarts: a sequence number must never be used twice.
#[pyclass(module = "mqseal")]
pub struct Sealer(pub mqseal::Sealer);

#[pymethods]
impl Sealer {
    /// A sealer for `identity` using `profile` (`"signed"` or `"group-mac"`), starting at
    /// sequence number 0 with no limit.
    #[new]
    #[pyo3(signature = (identity, profile = "signed"))]
    fn new(identity: &Identity, profile: &str) -> PyResult<Sealer> {
        Ok(Sealer(mqseal::Sealer::new(
            identity.0.clone(),
            parse_profile(profile)?,
        )))
    }

    /// Adds a key to seal with (replacing one of the same filter and epoch).
    fn add_key(&mut self, key: &TreeKey) {
        self.0.add_key(key.0.clone());
    }

    /// Forgets the key of `filter` at `epoch`; returns whether it was held.
    fn remove_key(&mut self, filter: &str, epoch: u32) -> bool {
        self.0.remove_key(filter, epoch)
    }

    /// Seals `payload` for `topic`. `retain` must be the MQTT retain flag it will be published
    /// with; `timestamp` (seconds since the Unix epoch) is included for receivers with a max age.
    #[pyo3(signature = (topic, payload, retain = false, timestamp = None))]
    fn seal<'py>(
        &mut self,
        py: Python<'py>,
        topic: Topic,
        payload: PyBackedBytes,
        retain: bool,
        timestamp: Option<u64>,
    ) -> CoreResult<Bound<'py, PyBytes>> {
        let topic: &str = &topic;
        let options = mqseal::SealOptions { retain, timestamp };
        let sealed = self.0.seal_with(topic, &payload, &options)?;
        Ok(PyBytes::new(py, &sealed))
    }

    /// The sealed length of a `payload_len`-byte payload with the next sequence number, or
    /// `None` if no key covers `topic`.
    #[pyo3(signature = (topic, payload_len, timestamp = None))]
    fn sealed_len(
        &self,
        topic: Topic,
        payload_len: usize,
        timestamp: Option<u64>,
    ) -> Option<usize> {
        let topic: &str = &topic;
        let options = mqseal::SealOptions {
            retain: false,
            timestamp,
        };
        self.0.sealed_len(topic, payload_len, &options)
    }

    /// The sequence number the next message will carry.
    #[getter]
    fn next_seq(&self) -> u64 {
        self.0.next_seq()
    }

    /// The first sequence number this sealer may not use.
    #[getter]
    fn sequence_limit(&self) -> u64 {
        self.0.sequence_limit()
    }

    /// Sets the next sequence number and the exclusive limit (crash-safe persistence: durably
    /// store `limit` first, then call this; after a restart resume at the stored limit).
    /// Without `limit`, numbers are only limited by their 64-bit range.
    #[pyo3(signature = (next, limit = None))]
    fn set_sequence(&mut self, next: u64, limit: Option<u64>) {
        self.0.set_sequence(next, limit.unwrap_or(u64::MAX));
    }

    /// `"signed"` or `"group-mac"`.
    #[getter]
    fn profile(&self) -> &'static str {
        self.0.profile().name()
    }

    /// The public identity messages are sealed as.
    #[getter]
    fn public(&self) -> PublicIdentity {
        PublicIdentity(self.0.identity().public())
    }

    fn __repr__(&self) -> String {
        format!(
            "Sealer(fingerprint='{}', profile='{}', next_seq={})",
            self.0.identity().fingerprint(),
            self.0.profile().name(),
            self.0.next_seq()
        )
    }
}
