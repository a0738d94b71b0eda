//! Small conversions between Python values and core types (hex, fixed-size arrays, profiles).

use pyo3::exceptions::{PyUnicodeEncodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
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

/// A topic name argument: any `str`. A string that is not valid Unicode text (lone surrogates,
/// what `os.fsdecode` makes of bytes that are not UTF-8) is no MQTT topic: `InvalidTopicError`
/// rather than Python's `UnicodeEncodeError`. Anything but a `str` stays a `TypeError`.
pub struct Topic(PyBackedStr);

/// A key filter argument, checked like [`Topic`] (`InvalidFilterError`).
pub struct Filter(PyBackedStr);

/// A `str` that must be UTF-8, or `error` with a message saying why it is not.
fn utf8_text(
    obj: Borrowed<'_, '_, PyAny>,
    error: mqseal::Error,
    what: &str,
) -> PyResult<PyBackedStr> {
    let py = obj.py();
    obj.extract::<PyBackedStr>().map_err(|e| {
        if e.is_instance_of::<PyUnicodeEncodeError>(py) {
            crate::errors::to_py_with(
                py,
                error,
                Some(format!(
                    "the {what} is not valid Unicode (lone surrogates: bytes that were not \
                     UTF-8); MQTT topics are UTF-8 text"
                )),
            )
        } else {
            e
        }
    })
}

impl<'a, 'py> FromPyObject<'a, 'py> for Topic {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Topic> {
        utf8_text(obj, mqseal::Error::InvalidTopic, "topic").map(Topic)
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Filter {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Filter> {
        utf8_text(obj, mqseal::Error::InvalidFilter, "filter").map(Filter)
    }
}

impl std::ops::Deref for Topic {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Filter {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// The `timestamp` argument of `seal` / `sealed_len`: `"now"` (the default: the system clock,
/// as the core's `SealOptions::retain`), an explicit number of seconds since the Unix epoch, or
/// `None` for a message without a timestamp (5 bytes shorter; receivers with a maximum age refuse
/// it as `missing_timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// The current time, read when the message is sealed.
    Now,
    /// This time (seconds since the Unix epoch).
    At(u64),
    /// No timestamp.
    Without,
}

impl Timestamp {
    /// The core options of a message with this timestamp and `retain`.
    pub fn options(self, retain: bool) -> mqseal::SealOptions {
        match self {
            Timestamp::Now => mqseal::SealOptions::retain(retain),
            Timestamp::At(t) => mqseal::SealOptions::at(retain, t),
            Timestamp::Without => mqseal::SealOptions::without_timestamp(retain),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Timestamp {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Timestamp> {
        if obj.is_none() {
            return Ok(Timestamp::Without);
        }
        if let Ok(text) = obj.cast::<PyString>() {
            return if text.to_cow().is_ok_and(|t| t == "now") {
                Ok(Timestamp::Now)
            } else {
                Err(PyValueError::new_err(
                    "timestamp must be \"now\", a number of seconds since the Unix epoch, or \
                     None (no timestamp)",
                ))
            };
        }
        // An int in 0..2^64 (OverflowError outside, TypeError for anything else).
        obj.extract::<u64>().map(Timestamp::At)
    }
}
