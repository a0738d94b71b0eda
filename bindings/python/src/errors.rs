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
    to_py_with(py, e, None)
}

/// Like [`to_py`], with a more specific message than the core's one-liner.
pub fn to_py_with(py: Python<'_>, e: mqseal::Error, message: Option<String>) -> PyErr {
    let made = FROM_CODE
        .import(py, "mqseal._errors", "_from_code")
        .and_then(|from_code| from_code.call1((e.code(), message)));
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

/// A keystore error on its way to Python: core errors become their `mqseal.Error` subclass,
/// file-system failures a `mqseal.StoreIoError` (also an `OSError`), the rest their
/// `mqseal.StoreError` subclass; the message is the store's (it names the file and the fix).
#[derive(Debug)]
pub struct StoreFailure(pub mqseal_store::StoreError);

impl From<mqseal_store::StoreError> for StoreFailure {
    fn from(e: mqseal_store::StoreError) -> StoreFailure {
        StoreFailure(e)
    }
}

impl From<mqseal::Error> for StoreFailure {
    fn from(e: mqseal::Error) -> StoreFailure {
        StoreFailure(mqseal_store::StoreError::Core(e))
    }
}

/// Results of binding methods that fail with a keystore error.
pub type StoreResult<T> = Result<T, StoreFailure>;

static FROM_STORE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl From<StoreFailure> for PyErr {
    fn from(e: StoreFailure) -> PyErr {
        Python::attach(|py| store_to_py(py, &e.0))
    }
}

/// The Python exception for a store error.
pub fn store_to_py(py: Python<'_>, e: &mqseal_store::StoreError) -> PyErr {
    use mqseal_store::StoreError;
    if let Some(core) = e.core() {
        return to_py(py, core);
    }
    let (errno, filename) = match e {
        StoreError::Io { path, source, .. } => (
            source.raw_os_error(),
            Some(path.to_string_lossy().into_owned()),
        ),
        _ => (None, None),
    };
    let made = FROM_STORE
        .import(py, "mqseal._errors", "_from_store")
        .and_then(|f| f.call1((e.code(), e.to_string(), errno, filename)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(format!("mqseal store error {}: {e}", e.code())),
    }
}

/// `(code, name)` of every keystore error (codes 101 and up).
#[pyfunction]
pub fn store_error_codes() -> Vec<(u32, &'static str)> {
    mqseal_store::StoreError::CODES.to_vec()
}

/// `(code, name, message)` of every core error, in code order.
#[pyfunction]
pub fn error_codes() -> Vec<(u32, &'static str, &'static str)> {
    mqseal::Error::ALL
        .iter()
        .map(|e| (e.code(), e.name(), e.message()))
        .collect()
}
