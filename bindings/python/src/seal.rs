//! `Sealer`, and the caller-provided random generator it may draw its salts from.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::convert::{Timestamp, Topic, parse_profile};
use crate::errors::to_py;
use crate::identity::{Identity, PublicIdentity};
use crate::keys::TreeKey;

/// Why the last call of a [`CallableRandom`] failed, kept for the `RandomnessError` it causes.
type LastFailure = Arc<Mutex<Option<PyErr>>>;

thread_local! {
    /// Set while this thread runs a sealer's `random` callable: the callable must not use a
    /// sealer (it would wait for the lock its own seal holds).
    static IN_RANDOM: Cell<bool> = const { Cell::new(false) };
}

/// A Python callable `random(n) -> bytes` as the core's [`mqseal::RandomSource`]: called with
/// the number of bytes wanted (8, one salt per message), it must return exactly that many.
/// Anything else (an exception, another length, not bytes) fails the seal with
/// `RandomnessError` (no sequence number is spent), with the reason as its `__cause__`.
struct CallableRandom {
    random: Py<PyAny>,
    failure: LastFailure,
}

impl mqseal::RandomSource for CallableRandom {
    fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
        Python::attach(|py| {
            IN_RANDOM.with(|busy| busy.set(true));
            let drawn = self
                .random
                .bind(py)
                .call1((buf.len(),))
                .and_then(|out| out.extract::<PyBackedBytes>().map_err(PyErr::from));
            IN_RANDOM.with(|busy| busy.set(false));
            let failure = match drawn {
                Ok(bytes) if bytes.len() == buf.len() => {
                    buf.copy_from_slice(&bytes);
                    return Ok(());
                }
                Ok(bytes) => PyValueError::new_err(format!(
                    "random({}) returned {} bytes",
                    buf.len(),
                    bytes.len()
                )),
                Err(e) => e,
            };
            *lock(&self.failure) = Some(failure);
            Err(mqseal::Error::Randomness)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seals messages for one sender and owns its sequence counter.
///
/// Every message gets a fresh random 8-byte salt in its key, so a reused sequence number never
/// reuses a nonce; but receivers refuse a number they already accepted (`ReplayError`), so the
/// sealer must start above every number its identity used: persist `next_seq` (or reserve blocks
/// with `set_sequence`), or use `Store.sealer()`, which does it for you. Safe to share between
/// threads.
#[pyclass(module = "mqseal", frozen)]
pub struct Sealer {
    /// The core sealer, taken with the GIL released (a `random` callable sealing holds the lock
    /// and needs the GIL, so no thread may wait for the lock while holding the GIL).
    inner: Mutex<mqseal::Sealer>,
    /// The reason the caller's `random` last failed (`None` with the OS generator).
    random_failure: Option<LastFailure>,
}

impl Sealer {
    /// Runs `f` on the core sealer, with the GIL released while it waits for and holds the lock.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut mqseal::Sealer) -> R + Send,
    ) -> PyResult<R> {
        if IN_RANDOM.with(Cell::get) {
            return Err(PyRuntimeError::new_err(
                "a Sealer's random callable must not use a Sealer",
            ));
        }
        Ok(py.detach(|| f(&mut lock(&self.inner))))
    }

    /// The reason a caller's `random` failed, if it did (taken: each failure is reported once).
    fn take_failure(&self) -> Option<PyErr> {
        self.random_failure.as_ref().and_then(|f| lock(f).take())
    }
}

#[pymethods]
impl Sealer {
    /// A sealer for `identity` using `profile` (`"signed"` or `"group-mac"`) whose first message
    /// carries sequence number `start` (required: a counter not restored from durable state must
    /// be a visible choice; receivers refuse numbers they already saw from this identity).
    ///
    /// `random`: where the per-message salts come from. Default (`None`): the operating system's
    /// generator, which is what every application should use. A callable `random(n) -> bytes`
    /// returning `n` fresh bytes is for firmware-like setups with a hardware RNG and for
    /// reproducing the spec's test vectors; it must be a cryptographically secure generator
    /// whose state is not copied with the process (never a seeded PRNG such as `random.Random`).
    #[new]
    #[pyo3(signature = (identity, profile = "signed", *, start, random = None))]
    fn new(
        identity: &Identity,
        profile: &str,
        start: u64,
        random: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Sealer> {
        let profile = parse_profile(profile)?;
        let identity = identity.0.clone();
        let (inner, random_failure) = match random {
            None => (mqseal::Sealer::new(identity, profile, start), None),
            Some(random) => {
                if !random.is_callable() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "random must be a callable random(n) -> bytes, or None (the OS generator)",
                    ));
                }
                let failure = LastFailure::default();
                let source = CallableRandom {
                    random: random.unbind(),
                    failure: Arc::clone(&failure),
                };
                (
                    mqseal::Sealer::with_random(identity, profile, start, Box::new(source)),
                    Some(failure),
                )
            }
        };
        Ok(Sealer {
            inner: Mutex::new(inner),
            random_failure,
        })
    }

    /// Adds a key to seal with (replacing one of the same filter and epoch).
    fn add_key(&self, py: Python<'_>, key: &TreeKey) -> PyResult<()> {
        let key = key.0.clone();
        self.with(py, |s| s.add_key(key))
    }

    /// Forgets the key of `filter` at `epoch`; returns whether it was held.
    fn remove_key(&self, py: Python<'_>, filter: &str, epoch: u32) -> PyResult<bool> {
        self.with(py, |s| s.remove_key(filter, epoch))
    }

    /// Seals `payload` for `topic`. `retain` must be the MQTT retain flag it will be published
    /// with. `timestamp`: `"now"` (default) includes the current time, an int includes that time
    /// (seconds since the Unix epoch), `None` includes none (5 bytes shorter, refused by
    /// receivers with a maximum age). The timestamp (else the current time) is also when key
    /// validities are checked: `KeyExpiredError` if no key covering `topic` is valid then.
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
        let sealed = self.with(py, |s| {
            s.seal_with(topic, &payload, &options)
                .map_err(|e| (e, self.take_failure()))
        })?;
        match sealed {
            Ok(sealed) => Ok(PyBytes::new(py, &sealed)),
            Err((e, cause)) => {
                let err = to_py(py, e);
                if let Some(cause) = cause.filter(|_| e == mqseal::Error::Randomness) {
                    err.set_cause(py, Some(cause));
                }
                Err(err)
            }
        }
    }

    /// The sealed length of a `payload_len`-byte payload with the next sequence number and
    /// `timestamp` (as for `seal`), or `None` if no key covering `topic` is valid then.
    #[pyo3(signature = (topic, payload_len, timestamp = Timestamp::Now))]
    #[pyo3(text_signature = "($self, topic, payload_len, timestamp='now')")]
    fn sealed_len(
        &self,
        py: Python<'_>,
        topic: Topic,
        payload_len: usize,
        timestamp: Timestamp,
    ) -> PyResult<Option<usize>> {
        let topic: &str = &topic;
        let options = timestamp.options(false);
        self.with(py, |s| s.sealed_len(topic, payload_len, &options))
    }

    /// The sequence number the next message will carry.
    #[getter]
    fn next_seq(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| s.next_seq())
    }

    /// The first sequence number this sealer may not use.
    #[getter]
    fn sequence_limit(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |s| s.sequence_limit())
    }

    /// Sets the next sequence number and the exclusive limit (crash-safe persistence: durably
    /// store `limit` first, then call this; after a restart resume at the stored limit).
    /// Without `limit`, numbers are only limited by their 64-bit range.
    #[pyo3(signature = (next, limit = None))]
    fn set_sequence(&self, py: Python<'_>, next: u64, limit: Option<u64>) -> PyResult<()> {
        self.with(py, |s| s.set_sequence(next, limit.unwrap_or(u64::MAX)))
    }

    /// `"signed"` or `"group-mac"`.
    #[getter]
    fn profile(&self, py: Python<'_>) -> PyResult<&'static str> {
        self.with(py, |s| s.profile().name())
    }

    /// The public identity messages are sealed as.
    #[getter]
    fn public(&self, py: Python<'_>) -> PyResult<PublicIdentity> {
        self.with(py, |s| PublicIdentity(s.identity().public()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| {
            format!(
                "Sealer(fingerprint='{}', profile='{}', next_seq={})",
                s.identity().fingerprint(),
                s.profile().name(),
                s.next_seq()
            )
        })
    }
}
