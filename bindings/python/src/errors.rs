//! Core errors as Python exceptions.
//!
//! The exception classes live in Python (`mqseal/_errors.py`: `mqseal.Error` and one subclass per
//! core code); this side only hands over the core's stable code and lets that module pick the
//! class, so the hierarchy is defined once, where Python users read it.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// A core error on its way to Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreError(pub mqseal::Error);

impl From<mqseal::Error> for CoreError {
    fn from(e: mqseal::Error) -> CoreError {
        CoreError(e)
    }
}

/// Results of binding methods that fail with a core error.
pub type CoreResult<T> = Result<T, CoreError>;

static FROM_CODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        Python::attach(|py| to_py(py, e.0))
    }
}

/// The `mqseal.Error` subclass instance for `e` (or a `RuntimeError` naming the code if the
/// Python package around the native module is missing).
pub fn to_py(py: Python<'_>, e: mqseal::Error) -> PyErr {
    let made = FROM_CODE
        .import(py, "mqseal._errors", "_from_code")
        .and_then(|from_code| from_code.call1((e.code(),)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(format!(
            "mqseal error {} ({}): {}",
            e.code(),
            e.name(),
            e.message()
        )),
    }
}

/// `(code, name, message)` of every core error, in code order.
#[pyfunction]
pub fn error_codes() -> Vec<(u32, &'static str, &'static str)> {
    mqseal::Error::ALL
        .iter()
        .map(|e| (e.code(), e.name(), e.message()))
        .collect()
}
