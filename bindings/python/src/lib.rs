//! The native module behind the `mqseal` Python package (`mqseal._native`).
//!
//! Every class here wraps a core type and only converts arguments and results: all cryptography
//! lives in the `mqseal` crate. Core errors become `mqseal.Error` subclasses carrying the core's
//! stable codes ([`errors`]). Python users import `mqseal`, whose `__init__.py` re-exports these
//! classes next to the exception hierarchy and the paho-mqtt helper.
#![forbid(unsafe_code)]

pub mod convert;
pub mod errors;
pub mod files;
pub mod grant;
pub mod identity;
pub mod keys;
pub mod open;
pub mod seal;
pub mod store;

use pyo3::prelude::*;

/// Native part of mqseal: end-to-end payload encryption for MQTT. Import `mqseal` instead.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<identity::Identity>()?;
    m.add_class::<identity::PublicIdentity>()?;
    m.add_class::<keys::TreeKey>()?;
    m.add_class::<keys::TopicKey>()?;
    m.add_class::<grant::Grant>()?;
    m.add_class::<seal::Sealer>()?;
    m.add_class::<open::OpenPolicy>()?;
    m.add_class::<open::Opener>()?;
    m.add_class::<open::Opened>()?;
    m.add_class::<open::Header>()?;
    m.add_class::<open::ReplayWindow>()?;
    m.add_class::<store::Store>()?;
    m.add_class::<store::PersistentSealer>()?;
    m.add_class::<store::PersistentOpener>()?;
    m.add_class::<store::TrustedPeer>()?;
    m.add_class::<store::HeldKey>()?;
    m.add_class::<store::OutgoingGrant>()?;
    m.add_class::<store::KeyUpdate>()?;
    m.add_class::<store::AcceptedGrant>()?;
    m.add_class::<store::Rotation>()?;
    m.add_class::<store::IssuedGrant>()?;
    m.add_function(wrap_pyfunction!(open::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(open::validate_topic, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(errors::store_error_codes, m)?)?;
    m.add("VERSION", mqseal::VERSION)?;
    m.add("MAX_OVERHEAD_SIGNED", mqseal::MAX_OVERHEAD_SIGNED)?;
    m.add("MAX_OVERHEAD_GROUP_MAC", mqseal::MAX_OVERHEAD_GROUP_MAC)?;
    m.add("MAX_SEALED_LEN", mqseal::MAX_SEALED_LEN)?;
    m.add("REPLAY_WINDOW", mqseal::REPLAY_WINDOW)?;
    m.add("REPLAY_WINDOW_BYTES", mqseal::REPLAY_WINDOW_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
