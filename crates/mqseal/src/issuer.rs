//! Trusted issuers and their scope: which key filters an issuer may grant (spec 8.1).

use alloc::vec;
use alloc::vec::Vec;

use crate::error::Result;
use crate::identity::PublicIdentity;
use crate::topic::KeyFilter;

/// An identity trusted to issue grants, for the part of the topic tree its scope names.
///
/// A grant is accepted from an issuer only if its filter lies inside one of the issuer's scope
/// filters ([`KeyFilter::contains`]); otherwise [`crate::Error::OutOfScope`]. So an issuer that
/// manages `lab/#` cannot hand a device an exact `plant/7/temp` key (which sealers would prefer
/// over the real `plant/#` key), nor rotate or pre-empt keys outside `lab/#`.
///
/// ```
/// use mqseal::{Error, Grant, Identity, Issuer, TreeKey};
/// let lab_admin = Identity::from_seed([1; 32]);
/// let device = Identity::from_seed([2; 32]);
/// let lab = Issuer::new(lab_admin.public(), &["lab/#"]).unwrap();
///
/// let ok = TreeKey::from_secret("lab/7/#", 1, [3; 32]).unwrap();
/// let grant = Grant::issue_with_ikm(&lab_admin, &device.public(), &ok, &[4; 32]).unwrap();
/// assert!(grant.accept_from(&device, &[lab.clone()]).is_ok());
///
/// let rogue = TreeKey::from_secret("plant/7/temp", 1, [5; 32]).unwrap();
/// let grant = Grant::issue_with_ikm(&lab_admin, &device.public(), &rogue, &[6; 32]).unwrap();
/// assert_eq!(grant.accept_from(&device, &[lab]).unwrap_err(), Error::OutOfScope);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    identity: PublicIdentity,
    scope: Vec<KeyFilter>,
}

impl Issuer {
    /// Trusts `identity` to issue keys for the filters in `scope` (and anything below them).
    /// Fails with [`crate::Error::InvalidFilter`] on an invalid filter. An empty scope trusts
    /// the issuer for nothing.
    pub fn new(identity: PublicIdentity, scope: &[&str]) -> Result<Issuer> {
        let scope = scope
            .iter()
            .map(|f| KeyFilter::parse(f))
            .collect::<Result<Vec<_>>>()?;
        Ok(Issuer { identity, scope })
    }

    /// Trusts `identity` to issue keys for the whole tree (scope `#`): an administrator.
    pub fn unscoped(identity: PublicIdentity) -> Issuer {
        Issuer {
            identity,
            scope: vec![KeyFilter::root()],
        }
    }

    /// The issuer's public identity.
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    /// The filters it may grant keys inside.
    pub fn scope(&self) -> &[KeyFilter] {
        &self.scope
    }

    /// Whether a grant of `filter` from this issuer is within its scope.
    pub fn permits(&self, filter: &KeyFilter) -> bool {
        self.scope.iter().any(|s| s.contains(filter))
    }
}
