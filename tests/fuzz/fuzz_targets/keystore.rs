//! cargo-fuzz target: see `mqseal_fuzz::bodies::keystore`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqseal_fuzz::bodies::keystore(data));
