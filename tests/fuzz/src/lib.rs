//! Fuzz bodies, shared by the cargo-fuzz targets in `fuzz_targets/` and by the corpus replay test
//! of the main workspace (`tests/adversarial`), which includes `bodies.rs` by path.
#![forbid(unsafe_code)]

pub mod bodies;
