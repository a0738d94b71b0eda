//! Sliding anti-replay window (RFC 6479 style bitmap), one per (sender, epoch, topic).

use crate::error::{Error, Result};

/// Number of sequence numbers the window remembers below the highest accepted one.
pub const REPLAY_WINDOW: u64 = 2048;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

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
