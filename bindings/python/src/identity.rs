//! `Identity` and `PublicIdentity`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use std::path::PathBuf;

use crate::convert::{array32, hex};
use crate::errors::{CoreResult, StoreResult, to_py_with};
use crate::files::{PUBLIC_MODE, SECRET_MODE, check_name, read, write_new};
use mqseal_store::formats;

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

    /// Loads an identity from an `identity.key` file (keystore format, `spec/keystore.md`).
    /// Refuses a file that group or others may access (`InsecurePermissionsError`) and a
    /// corrupt one (`CorruptFileError`).
    #[staticmethod]
    fn load(path: PathBuf) -> StoreResult<Identity> {
        let bytes = read(&path, true)?;
        Ok(Identity(formats::parse_identity_key(&path, &bytes)?))
    }

    /// Writes this identity to a new `identity.key` file, mode 0600 (never replaces a file).
    /// `name` (1 to 64 of `A-Z a-z 0-9 . _ - @`) is recorded in a comment.
    fn save(&self, path: PathBuf, name: &str) -> StoreResult<()> {
        check_name(name)?;
        let text = formats::format_identity_key(&self.0, name);
        write_new(&path, text.as_bytes(), SECRET_MODE)?;
        Ok(())
    }

    /// Writes the public part to a new `identity.pub` file (a `trusted`-file line naming it
    /// `name`), mode 0644, for peers to trust.
    fn save_public(&self, path: PathBuf, name: &str) -> StoreResult<()> {
        check_name(name)?;
        let text = formats::format_identity_pub(&self.0, name);
        write_new(&path, text.as_bytes(), PUBLIC_MODE)?;
        Ok(())
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

    /// Parses a `mqseal-pub1:<128 hex digits>` token (how keystores and the CLI write public
    /// identities).
    #[staticmethod]
    fn from_token(py: Python<'_>, token: &str) -> PyResult<PublicIdentity> {
        use mqseal_store::TokenError;
        formats_token(token).map_err(|e| {
            let code = match e {
                TokenError::InvalidKey => mqseal::Error::InvalidKey,
                _ => mqseal::Error::Malformed,
            };
            to_py_with(py, code, Some(e.to_string()))
        })
    }

    /// The `mqseal-pub1:<128 hex digits>` token of this identity.
    #[getter]
    fn token(&self) -> String {
        mqseal_store::public_token(&self.0)
    }

    /// Loads the public identity from an `identity.pub` file (or any single `trusted`-file
    /// line).
    #[staticmethod]
    fn load(path: PathBuf) -> StoreResult<PublicIdentity> {
        let bytes = read(&path, false)?;
        Ok(PublicIdentity(
            formats::parse_identity_pub(&path, &bytes)?.public,
        ))
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

fn formats_token(token: &str) -> Result<PublicIdentity, mqseal_store::TokenError> {
    mqseal_store::parse_public_token(token).map(PublicIdentity)
}

fn hash_fingerprint(fp: &mqseal::Fingerprint) -> u64 {
    let mut h = DefaultHasher::new();
    fp.hash(&mut h);
    h.finish()
}
