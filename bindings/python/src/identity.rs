//! `Identity` and `PublicIdentity`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::convert::{array32, hex};
use crate::errors::CoreResult;

/// A participant's secret identity (Ed25519 signing key and X25519 agreement key from one seed).
///
/// The seed never appears in `repr`; `seed()` returns it for storage (keep it secret: file
/// mode 0600).
#[pyclass(module = "mqseal", frozen)]
pub struct Identity(pub mqseal::Identity);

#[pymethods]
impl Identity {
    /// A fresh identity from the operating system's random number generator.
    #[staticmethod]
    fn generate() -> CoreResult<Identity> {
        Ok(Identity(mqseal::Identity::generate()?))
    }

    /// The identity held in a 32-byte seed.
    #[staticmethod]
    fn from_seed(seed: PyBackedBytes) -> PyResult<Identity> {
        let seed = Zeroizing::new(array32(&seed, "seed")?);
        Ok(Identity(mqseal::Identity::from_seed(*seed)))
    }

    /// The 32-byte seed: everything needed to recreate this identity. Handle with care.
    fn seed<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.seed().as_ref())
    }

    /// The public part, to hand to peers.
    #[getter]
    fn public(&self) -> PublicIdentity {
        PublicIdentity(self.0.public())
    }

    /// The fingerprint (64 hex digits) naming this identity.
    #[getter]
    fn fingerprint(&self) -> String {
        hex(&self.0.fingerprint().0)
    }

    fn __repr__(&self) -> String {
        format!("Identity(fingerprint='{}')", self.0.fingerprint())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Identity>()
            .is_ok_and(|o| o.get().0.fingerprint() == self.0.fingerprint())
    }

    fn __hash__(&self) -> u64 {
        hash_fingerprint(&self.0.fingerprint())
    }
}

/// The public part of an identity: 64 bytes, Ed25519 key then X25519 key.
#[pyclass(module = "mqseal", frozen)]
#[derive(Clone)]
pub struct PublicIdentity(pub mqseal::PublicIdentity);

#[pymethods]
impl PublicIdentity {
    /// Parses the 64-byte encoding (`MalformedError` on a wrong length, `InvalidKeyError` on an
    /// invalid or low-order key).
    #[staticmethod]
    fn from_bytes(data: PyBackedBytes) -> CoreResult<PublicIdentity> {
        Ok(PublicIdentity(mqseal::PublicIdentity::from_slice(&data)?))
    }

    /// The 64-byte encoding.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.to_bytes())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.to_bytes(py)
    }

    /// The fingerprint (64 hex digits).
    #[getter]
    fn fingerprint(&self) -> String {
        hex(&self.0.fingerprint().0)
    }

    /// The 4-byte sender id carried in sealed messages (8 hex digits).
    #[getter]
    fn sender_id(&self) -> String {
        hex(&self.0.sender_id().0)
    }

    /// The Ed25519 verifying key (32 bytes).
    #[getter]
    fn ed25519<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.ed25519())
    }

    /// The X25519 public key (32 bytes).
    #[getter]
    fn x25519<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.x25519())
    }

    fn __repr__(&self) -> String {
        format!("PublicIdentity(fingerprint='{}')", self.0.fingerprint())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PublicIdentity>()
            .is_ok_and(|o| o.get().0 == self.0)
    }

    fn __hash__(&self) -> u64 {
        hash_fingerprint(&self.0.fingerprint())
    }
}

fn hash_fingerprint(fp: &mqseal::Fingerprint) -> u64 {
    let mut h = DefaultHasher::new();
    fp.hash(&mut h);
    h.finish()
}
