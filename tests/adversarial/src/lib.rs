//! Adversarial tests for mqseal live in `tests/`: the fuzz corpus replay (`fuzz_corpus.rs`, whose
//! bodies are shared with the cargo-fuzz targets in `tests/fuzz`).

pub mod attacks;
pub mod mqtt;
pub mod proxy;
pub mod report;
pub mod soak;
