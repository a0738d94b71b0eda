//! Operating-system randomness (std builds only; no_std callers pass seeds in).

use crate::error::{Error, Result};

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Randomness)
}
