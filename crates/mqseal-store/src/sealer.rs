//! Crash-safe sequence numbers: the `state/seq` file and [`PersistentSealer`].
//!
//! ```text
//! mqseal-seq 1
//! identity <fingerprint hex of the sealing identity>
//! reserved <decimal u64: no number at or above it was ever used>
//! checksum <sha256 hex of every byte above>
//! ```
//!
//! Reservation (OSCORE, RFC 8613 appendix B.1.1): before sealing with any number below `L`, the
//! sealer durably records `reserved L` (write temporary file, fsync, rename, fsync directory). On
//! start it reads `R`, records `R + K` and seals from `R`: every number it hands out is at or above
//! everything a previous run could have used.

use std::fmt;
use std::path::{Path, PathBuf};

use mqseal::{Fingerprint, Profile, SealOptions, Sealer, TreeKey};

use crate::error::{Result, StoreError};
use crate::fsutil::{LockFile, SECRET_MODE, read_required, write_atomic};
use crate::text::{from_hex, open_text, parse_u64, seal_text};

/// First line of `state/seq`.
pub const SEQ_MAGIC: &str = "mqseal-seq 1";

/// Why a missing `state/seq` is fatal.
pub(crate) const SEQ_MISSING: &str = "the sequence state is lost; sealing could reuse nonces. \
     Restore the store's state/ from the same machine, or raise the counter above every number \
     ever used (Store::raise_sequence_floor), or create a new identity";

/// The contents of `state/seq`.
pub fn format_seq(identity: &Fingerprint, reserved: u64) -> String {
    seal_text(
        SEQ_MAGIC,
        &format!("identity {identity}\nreserved {reserved}\n"),
    )
}

/// Parses `state/seq`, checking it belongs to `identity`; returns the reservation.
pub fn parse_seq(path: &Path, bytes: &[u8], identity: &Fingerprint) -> Result<u64> {
    let lines = open_text(path, bytes, SEQ_MAGIC)?;
    let [(n1, id_line), (n2, reserved_line)] = lines.as_slice() else {
        return Err(StoreError::corrupt(
            path,
            None,
            "expected exactly the identity and reserved lines",
        ));
    };
    let fp = id_line
        .strip_prefix("identity ")
        .and_then(from_hex::<32>)
        .map(Fingerprint)
        .ok_or_else(|| StoreError::corrupt(path, Some(*n1), "bad identity line"))?;
    if fp != *identity {
        return Err(StoreError::corrupt(
            path,
            Some(*n1),
            format!("belongs to identity {fp}, not to this store's identity {identity}"),
        ));
    }
    reserved_line
        .strip_prefix("reserved ")
        .and_then(parse_u64)
        .ok_or_else(|| StoreError::corrupt(path, Some(*n2), "bad reserved line"))
}

/// A [`Sealer`] whose sequence numbers survive crashes and restarts without ever repeating.
///
/// Holds the store's `state/seal.lock` while alive, so a second sealing process on the same
/// store fails with [`StoreError::Locked`] instead of reusing numbers. Create it with
/// [`Store::sealer`](crate::Store::sealer).
pub struct PersistentSealer {
    sealer: Sealer,
    path: PathBuf,
    fingerprint: Fingerprint,
    reserved: u64,
    block: u64,
    keys: Vec<(String, u32)>,
    /// The process that opened this sealer: sealing from another one (a fork) is refused.
    pid: u32,
    _lock: LockFile,
}

impl PersistentSealer {
    /// Takes the lock, reads the reservation and reserves the first block.
    pub(crate) fn start(
        sealer: Sealer,
        path: PathBuf,
        lock: LockFile,
        block: u64,
        keys: Vec<TreeKey>,
    ) -> Result<PersistentSealer> {
        let fingerprint = sealer.identity().fingerprint();
        let bytes = read_required(&path, true, SEQ_MISSING)?;
        let start = parse_seq(&path, &bytes, &fingerprint)?;
        let mut s = PersistentSealer {
            sealer,
            path,
            fingerprint,
            reserved: start,
            block: block.max(1),
            keys: Vec::new(),
            pid: std::process::id(),
            _lock: lock,
        };
        s.reserve_from(start)?;
        s.set_keys(keys);
        Ok(s)
    }

    /// Durably records `next + block` as the reservation, then allows numbers `next..` up to it.
    fn reserve_from(&mut self, next: u64) -> Result<()> {
        let limit = next.saturating_add(self.block);
        write_atomic(
            &self.path,
            format_seq(&self.fingerprint, limit).as_bytes(),
            SECRET_MODE,
        )?;
        self.reserved = limit;
        self.sealer.set_sequence(next, limit);
        Ok(())
    }

    /// Runs a sealing operation; when the block is used up, reserves the next one and retries.
    fn with_reservation<T>(
        &mut self,
        mut op: impl FnMut(&mut Sealer) -> mqseal::Result<T>,
    ) -> Result<T> {
        let used_by = std::process::id();
        if used_by != self.pid {
            return Err(StoreError::Forked {
                opened_by: self.pid,
                used_by,
            });
        }
        match op(&mut self.sealer) {
            Err(mqseal::Error::SequenceExhausted)
                if self.sealer.next_seq() == self.reserved && self.reserved < u64::MAX =>
            {
                self.reserve_from(self.reserved)?;
                Ok(op(&mut self.sealer)?)
            }
            other => Ok(other?),
        }
    }

    /// Seals `payload` for `topic` (see [`Sealer::seal`]).
    pub fn seal(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<Vec<u8>> {
        self.with_reservation(|s| s.seal(topic, payload, retain))
    }

    /// Seals with explicit options (see [`Sealer::seal_with`]).
    pub fn seal_with(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
    ) -> Result<Vec<u8>> {
        self.with_reservation(|s| s.seal_with(topic, payload, options))
    }

    /// Seals into a caller buffer (see [`Sealer::seal_into`]).
    pub fn seal_into(
        &mut self,
        topic: &str,
        payload: &[u8],
        options: &SealOptions,
        out: &mut [u8],
    ) -> Result<usize> {
        self.with_reservation(|s| s.seal_into(topic, payload, options, &mut *out))
    }

    /// The wrapped sealer (read-only: its counter is managed here).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The profile messages are sealed with.
    pub fn profile(&self) -> Profile {
        self.sealer.profile()
    }

    /// The sequence number the next message will carry.
    pub fn next_seq(&self) -> u64 {
        self.sealer.next_seq()
    }

    /// The durable reservation: no number at or above it has been used.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Adds a key to seal with (e.g. from an in-band grant; the store already holds it).
    pub fn add_key(&mut self, key: TreeKey) {
        let id = (key.filter().as_str().to_string(), key.epoch());
        if !self.keys.contains(&id) {
            self.keys.push(id);
        }
        self.sealer.add_key(key);
    }

    /// Stops sealing with the key of `filter` at `epoch`.
    pub fn remove_key(&mut self, filter: &str, epoch: u32) -> bool {
        self.keys.retain(|(f, e)| !(f == filter && *e == epoch));
        self.sealer.remove_key(filter, epoch)
    }

    /// Replaces the held keys (what [`Store::sealing_keys`](crate::Store::sealing_keys) returns).
    pub fn set_keys(&mut self, keys: Vec<TreeKey>) {
        for (f, e) in std::mem::take(&mut self.keys) {
            self.sealer.remove_key(&f, e);
        }
        for k in keys {
            self.add_key(k);
        }
    }
}

impl fmt::Debug for PersistentSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentSealer")
            .field("sealer", &self.sealer)
            .field("reserved", &self.reserved)
            .field("block", &self.block)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seq_file_round_trips_and_is_bound_to_its_identity() {
        let fp = Fingerprint([7; 32]);
        let p = Path::new("seq");
        let text = format_seq(&fp, 4096);
        assert_eq!(parse_seq(p, text.as_bytes(), &fp).unwrap(), 4096);
        let err = parse_seq(p, text.as_bytes(), &Fingerprint([8; 32])).unwrap_err();
        assert!(err.to_string().contains("belongs to identity"), "{err}");
        for n in 0..text.len() {
            assert!(parse_seq(p, &text.as_bytes()[..n], &fp).is_err());
        }
    }
}
