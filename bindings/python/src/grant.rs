//! `Grant`: a tree key wrapped to one recipient and signed by its issuer.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::convert::{array32, hex};
use crate::errors::{CoreError, CoreResult};
use crate::identity::{Identity, PublicIdentity};
use crate::keys::TreeKey;

/// A signed, HPKE-wrapped tree key for one recipient; safe to publish anywhere.
#[pyclass(module = "mqseal", frozen)]
pub struct Grant(pub mqseal::Grant);

#[pymethods]
impl Grant {
    /// Wraps `key` for `recipient`, signed by `issuer`.
    #[staticmethod]
    fn issue(issuer: &Identity, recipient: &PublicIdentity, key: &TreeKey) -> CoreResult<Grant> {
        Ok(Grant(mqseal::Grant::issue(
            &issuer.0,
            &recipient.0,
            &key.0,
        )?))
    }

    /// Like `issue`, with the HPKE ephemeral key derived from the given 32 bytes instead of
    /// fresh randomness (reproducible grants for test vectors; never reuse them otherwise).
    #[staticmethod]
    fn issue_with_ikm(
        issuer: &Identity,
        recipient: &PublicIdentity,
        key: &TreeKey,
        ikm: PyBackedBytes,
    ) -> PyResult<Grant> {
        let ikm = Zeroizing::new(array32(&ikm, "ikm")?);
        Ok(Grant(
            mqseal::Grant::issue_with_ikm(&issuer.0, &recipient.0, &key.0, &ikm)
                .map_err(CoreError)?,
        ))
    }

    /// Parses a received grant's structure (nothing is verified until `accept`).
    #[staticmethod]
    fn from_bytes(data: PyBackedBytes) -> CoreResult<Grant> {
        Ok(Grant(mqseal::Grant::from_bytes(&data)?))
    }

    /// The encoded grant.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.as_bytes())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.to_bytes(py)
    }

    /// Fingerprint (64 hex digits) of the identity the grant is for.
    #[getter]
    fn recipient(&self) -> String {
        hex(&self.0.recipient().0)
    }

    /// The issuer's Ed25519 key (32 bytes).
    #[getter]
    fn issuer_ed25519<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.issuer_ed25519())
    }

    /// Verifies and unwraps the grant for `recipient`, accepting only issuers among
    /// `trusted_issuers`: each a `PublicIdentity` (trusted for every filter) or a pair
    /// `(PublicIdentity, [filter, ...])` trusted only for those filters and below (its scope).
    /// A trusted issuer's grant outside its scope raises `OutOfScopeError`.
    fn accept(
        &self,
        recipient: &Identity,
        trusted_issuers: &Bound<'_, PyAny>,
    ) -> PyResult<TreeKey> {
        let mut trusted = Vec::new();
        for item in trusted_issuers.try_iter()? {
            let item = item?;
            if let Ok(public) = item.cast::<PublicIdentity>() {
                trusted.push(mqseal::Issuer::unscoped(public.get().0.clone()));
                continue;
            }
            let (public, scope): (PyRef<'_, PublicIdentity>, Vec<String>) =
                item.extract().map_err(|_| {
                    PyTypeError::new_err(
                        "trusted_issuers: expected PublicIdentity or (PublicIdentity, [filter, ...])",
                    )
                })?;
            let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
            trusted.push(mqseal::Issuer::new(public.0.clone(), &scope).map_err(CoreError)?);
        }
        Ok(TreeKey(
            self.0
                .accept_from(&recipient.0, &trusted)
                .map_err(CoreError)?,
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "Grant(recipient='{}', len={})",
            self.0.recipient(),
            self.0.as_bytes().len()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Grant>().is_ok_and(|o| o.get().0 == self.0)
    }
}
