//! Randomness: the [`RandomSource`] a [`Sealer`](crate::Sealer) draws each message's salt from,
//! and the operating system's generator ([`OsRandom`], std builds).

#[cfg(feature = "std")]
use crate::error::Error;
use crate::error::Result;

/// A cryptographically secure random generator.
///
/// A sealer draws 8 fresh bytes from it for every message (spec section 4.7): that, not the
/// sequence counter, keeps (key, nonce) pairs unique after a crash, a restored backup, a fork or
/// a VM snapshot. Implementations must therefore draw from a generator whose state is not cloned
/// with the process: the OS (`getrandom`, reseeded on VM restore where the kernel supports it) or
/// a hardware RNG. Never a seeded user-space PRNG, never a fixed value outside test vectors.
///
/// ```
/// use mqseal::{Identity, Profile, RandomSource, Sealer, TreeKey};
/// /// A firmware's hardware RNG (here: a stand-in for the example).
/// struct HardwareRng(u8);
/// impl RandomSource for HardwareRng {
///     fn fill(&mut self, buf: &mut [u8]) -> mqseal::Result<()> {
///         for b in buf { self.0 = self.0.wrapping_mul(31).wrapping_add(7); *b = self.0; }
///         Ok(())
///     }
/// }
/// let mut sealer = Sealer::with_random(Identity::from_seed([1; 32]), Profile::Signed, 0,
///                                      Box::new(HardwareRng(1)));
/// sealer.add_key(TreeKey::from_secret("#", 1, [2; 32]).unwrap());
/// assert!(sealer.seal_with("t", b"x", &mqseal::SealOptions::at(false, 1_800_000_000)).is_ok());
/// ```
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes, or fails with [`Error::Randomness`](crate::Error::Randomness).
    fn fill(&mut self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (`getrandom`).
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

#[cfg(feature = "std")]
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        fill(buf)
    }
}

/// Fills `buf` from the OS CSPRNG.
#[cfg(feature = "std")]
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Randomness)
}
