//! Sliding anti-replay window (RFC 6479 style bitmap), one per (sender, epoch, topic).

use crate::error::{Error, Result};

/// Number of sequence numbers the window remembers below the highest accepted one.
pub const REPLAY_WINDOW: u64 = 2048;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;
/// Length of [`ReplayWindow::to_bytes`]: a presence byte, the highest accepted number (8 bytes,
/// big-endian) and the bitmap (32 big-endian 64-bit words).
pub const REPLAY_WINDOW_BYTES: usize = 1 + 8 + WORDS * 8;

/// Remembers which of the last [`REPLAY_WINDOW`] sequence numbers were accepted.
///
/// Any number above the highest accepted is new; a number within the window is new unless its
/// bit is set; anything older is refused as [`Error::TooOld`].
///
/// ```
/// use mqseal::{Error, ReplayWindow};
/// let mut w = ReplayWindow::new();
/// w.accept(10).unwrap();
/// w.accept(12).unwrap();
/// assert_eq!(w.accept(10), Err(Error::Replay));
/// w.accept(11).unwrap();                 // late, but inside the window
/// w.accept(10_000).unwrap();
/// assert_eq!(w.check(11), Err(Error::TooOld));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    highest: Option<u64>,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// An empty window: the first number seen is accepted.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    /// The highest accepted sequence number, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    fn slot(seq: u64) -> (usize, u64) {
        let idx = seq % REPLAY_WINDOW;
        ((idx / 64) as usize, 1u64 << (idx % 64))
    }

    fn is_set(&self, seq: u64) -> bool {
        let (w, m) = Self::slot(seq);
        self.bits.get(w).is_some_and(|word| word & m != 0)
    }

    fn set(&mut self, seq: u64, on: bool) {
        let (w, m) = Self::slot(seq);
        if let Some(word) = self.bits.get_mut(w) {
            if on {
                *word |= m;
            } else {
                *word &= !m;
            }
        }
    }

    /// Whether `seq` would be accepted, without recording it.
    pub fn check(&self, seq: u64) -> Result<()> {
        match self.highest {
            None => Ok(()),
            Some(h) if seq > h => Ok(()),
            Some(h) if h - seq >= REPLAY_WINDOW => Err(Error::TooOld),
            Some(_) if self.is_set(seq) => Err(Error::Replay),
            Some(_) => Ok(()),
        }
    }

    /// The window as bytes, to persist it across restarts (format in `spec/keystore.md`):
    /// `present (0x00 empty | 0x01) || highest (u64 BE, 0 if empty) || 32 words (u64 BE)`, where
    /// bit `j` (value `1 << j`) of word `i` records sequence number `s` with
    /// `s mod 2048 = 64 i + j`.
    ///
    /// ```
    /// use mqseal::ReplayWindow;
    /// let mut w = ReplayWindow::new();
    /// w.accept(70).unwrap();
    /// let bytes = w.to_bytes();
    /// assert_eq!(ReplayWindow::from_bytes(&bytes).unwrap(), w);
    /// ```
    pub fn to_bytes(&self) -> [u8; REPLAY_WINDOW_BYTES] {
        let mut out = [0u8; REPLAY_WINDOW_BYTES];
        let (head, bits) = out.split_at_mut(1 + 8);
        let (present, highest) = head.split_at_mut(1);
        present.fill(u8::from(self.highest.is_some()));
        highest.copy_from_slice(&self.highest.unwrap_or(0).to_be_bytes());
        for (chunk, word) in bits.chunks_exact_mut(8).zip(self.bits.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Parses [`ReplayWindow::to_bytes`]. Only the canonical form is accepted ([`Error::Malformed`]
    /// otherwise): exact length, presence byte 0 or 1, an empty window all zero, and in a
    /// non-empty one the bit of `highest` set and no bit set for a number above `highest` (which
    /// no sequence of [`ReplayWindow::accept`] calls can produce).
    pub fn from_bytes(bytes: &[u8]) -> Result<ReplayWindow> {
        let bytes: &[u8; REPLAY_WINDOW_BYTES] = bytes.try_into().map_err(|_| Error::Malformed)?;
        let (&present, rest) = bytes.split_first().ok_or(Error::Malformed)?;
        let (highest, bit_bytes) = rest.split_first_chunk::<8>().ok_or(Error::Malformed)?;
        let highest = u64::from_be_bytes(*highest);
        let mut bits = [0u64; WORDS];
        for (word, chunk) in bits.iter_mut().zip(bit_bytes.chunks_exact(8)) {
            let chunk: [u8; 8] = chunk.try_into().map_err(|_| Error::Malformed)?;
            *word = u64::from_be_bytes(chunk);
        }
        let window = match present {
            0 if highest == 0 && bits.iter().all(|w| *w == 0) => ReplayWindow::new(),
            1 => ReplayWindow {
                highest: Some(highest),
                bits,
            },
            _ => return Err(Error::Malformed),
        };
        if window.highest.is_some() {
            if !window.is_set(highest) {
                return Err(Error::Malformed);
            }
            // Slots of numbers below 0 (only while highest < REPLAY_WINDOW - 1) stay clear.
            if highest < REPLAY_WINDOW - 1 && (highest + 1..REPLAY_WINDOW).any(|s| window.is_set(s))
            {
                return Err(Error::Malformed);
            }
        }
        Ok(window)
    }

    /// Checks `seq` and records it as accepted.
    pub fn accept(&mut self, seq: u64) -> Result<()> {
        self.check(seq)?;
        match self.highest {
            Some(h) if seq <= h => {}
            Some(h) if seq - h < REPLAY_WINDOW => {
                for s in h + 1..seq {
                    self.set(s, false);
                }
                self.highest = Some(seq);
            }
            _ => {
                self.bits = [0; WORDS];
                self.highest = Some(seq);
            }
        }
        self.set(seq, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn exact_window_edges() {
        let mut w = ReplayWindow::new();
        w.accept(5000).unwrap();
        assert_eq!(w.check(5000 - REPLAY_WINDOW), Err(Error::TooOld));
        w.accept(5000 - REPLAY_WINDOW + 1).unwrap();
        assert_eq!(w.accept(5000 - REPLAY_WINDOW + 1), Err(Error::Replay));
        // Slide by less than a window: old bits that fall out must not haunt new numbers.
        w.accept(5000 + 3).unwrap();
        for s in 5001..5003 {
            w.accept(s).unwrap();
        }
        assert_eq!(w.accept(5002), Err(Error::Replay));
        // Jump past the window: everything is forgotten and older numbers are too old.
        w.accept(u64::MAX).unwrap();
        assert_eq!(w.check(5003), Err(Error::TooOld));
        assert_eq!(w.check(u64::MAX), Err(Error::Replay));
    }

    #[test]
    fn bytes_round_trip_and_reject_non_canonical_forms() {
        let empty = ReplayWindow::new();
        assert_eq!(ReplayWindow::from_bytes(&empty.to_bytes()).unwrap(), empty);
        assert_eq!(empty.to_bytes(), [0u8; REPLAY_WINDOW_BYTES]);
        let mut w = ReplayWindow::new();
        for s in [3u64, 5, 64, 2000, 2100, 2101, 4000, 4003] {
            w.accept(s).unwrap();
            let back = ReplayWindow::from_bytes(&w.to_bytes()).unwrap();
            assert_eq!(back, w);
            // The restored window behaves identically.
            for probe in 0..4200 {
                assert_eq!(back.check(probe), w.check(probe), "{probe}");
            }
        }
        let bytes = w.to_bytes();
        assert!(ReplayWindow::from_bytes(&bytes[..REPLAY_WINDOW_BYTES - 1]).is_err());
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(ReplayWindow::from_bytes(&longer), Err(Error::Malformed));
        let mut bad = bytes;
        bad[0] = 2;
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(Error::Malformed));
        // Empty window with stray bits or a highest value.
        let mut bad = [0u8; REPLAY_WINDOW_BYTES];
        bad[8] = 1;
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(Error::Malformed));
        let mut bad = [0u8; REPLAY_WINDOW_BYTES];
        bad[REPLAY_WINDOW_BYTES - 1] = 1;
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(Error::Malformed));
        // Highest's own bit clear.
        let mut small = ReplayWindow::new();
        small.accept(10).unwrap();
        let mut bad = small.to_bytes();
        let word0_last = 9 + 7; // word 0, least significant byte: bits 0..8
        assert_eq!(bad[word0_last], 0);
        bad[9 + 6] ^= 0x04; // bit 10 lives in the second-lowest byte of word 0
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(Error::Malformed));
        // A bit above highest while the window has not filled yet.
        let mut bad = small.to_bytes();
        bad[REPLAY_WINDOW_BYTES - 1] = 1; // number 1984 > 10
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(Error::Malformed));
        // Layout: highest big-endian after the presence byte; word i bit j = number 64 i + j.
        assert_eq!(&small.to_bytes()[..9], &[1, 0, 0, 0, 0, 0, 0, 0, 10]);
        assert_eq!(&small.to_bytes()[9..17], &(1u64 << 10).to_be_bytes());
    }

    #[test]
    fn every_number_in_a_shuffled_range_is_accepted_once() {
        let mut w = ReplayWindow::new();
        let order: Vec<u64> = (0..3000u64).map(|i| (i * 7919) % 3000).collect();
        let mut accepted = 0;
        for &s in &order {
            if w.accept(s).is_ok() {
                accepted += 1;
            }
        }
        for &s in &order {
            assert!(w.accept(s).is_err());
        }
        assert!(accepted > 2000, "{accepted}");
    }
}
