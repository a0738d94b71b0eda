//! Small conversions between Python values and core types (hex, fixed-size arrays, profiles).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Exactly 32 bytes, or a `ValueError` naming `what`.
pub fn array32(bytes: &[u8], what: &str) -> PyResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| PyValueError::new_err(format!("{what} must be 32 bytes, got {}", bytes.len())))
}

/// Parses a fingerprint written as 64 hex digits (either case).
pub fn parse_fingerprint(text: &str) -> PyResult<mqseal::Fingerprint> {
    let bad = || PyValueError::new_err("a fingerprint is 64 hex digits");
    let digits: Vec<u8> = text
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        if let [hi, lo] = pair {
            *byte = hi << 4 | lo;
        }
    }
    Ok(mqseal::Fingerprint(out))
}

/// `"signed"` or `"group-mac"` (the core's stable profile names).
pub fn parse_profile(name: &str) -> PyResult<mqseal::Profile> {
    match name {
        "signed" => Ok(mqseal::Profile::Signed),
        "group-mac" => Ok(mqseal::Profile::GroupMac),
        other => Err(PyValueError::new_err(format!(
            "unknown profile {other:?} (expected 'signed' or 'group-mac')"
        ))),
    }
}

/// Python's `repr()` of a string (quotes and escapes as Python prints them).
pub fn py_repr(py: Python<'_>, text: &str) -> PyResult<String> {
    PyString::new(py, text).repr()?.extract()
}
