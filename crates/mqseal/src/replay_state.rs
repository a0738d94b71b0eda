//! The receiver's replay state (spec 7.3): one [`ReplayWindow`] per (sender, profile, epoch,
//! topic), bounded per sender and in total; an evicted window leaves a **floor** for its
//! (sender, profile), so eviction never lets a replay back in; and each (sender, profile)'s
//! high-water mark, the first-contact bound for live deliveries.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

use crate::envelope::Profile;
use crate::error::{Error, Result};
use crate::identity::Fingerprint;
use crate::replay::{REPLAY_WINDOW, ReplayWindow};

/// Default cap on the windows of one (sender, profile): [`ReplayLimits::per_sender`].
pub const DEFAULT_WINDOWS_PER_SENDER: usize = 1024;
/// Default cap on all windows of a receiver: [`ReplayLimits::total`].
pub const DEFAULT_WINDOWS_TOTAL: usize = 16_384;

/// How many replay windows a receiver keeps (spec 7.3, "Bounded state").
///
/// A window costs about 300 bytes plus its topic, so the default total bounds the windows of a
/// receiver at about 5 MiB plus their topics. When a new window would exceed a cap, the window
/// with the lowest highest-accepted number of that sender (or, for the total, of the sender
/// holding the most windows) is dropped and its highest number becomes the sender's floor:
/// numbers at or below the floor are refused `too_old` on every topic. Only authenticated
/// messages create windows, so only trusted senders (and, in `group-mac`, key holders on the
/// filters they are trusted for) can cause evictions. Both caps are at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Windows per (sender, profile). Default [`DEFAULT_WINDOWS_PER_SENDER`].
    pub per_sender: usize,
    /// Windows in all. Default [`DEFAULT_WINDOWS_TOTAL`].
    pub total: usize,
}

impl Default for ReplayLimits {
    fn default() -> ReplayLimits {
        ReplayLimits {
            per_sender: DEFAULT_WINDOWS_PER_SENDER,
            total: DEFAULT_WINDOWS_TOTAL,
        }
    }
}

/// Windows of one epoch, by topic: looked up with a borrowed `&str`, so opening on a known
/// topic allocates nothing.
///
/// Windows are boxed: a B-tree node reserves room for 11 values, and 11 inline 272-byte windows
/// would make the first window of each (sender, epoch) cost 3.3 KiB (measured on firmware).
type TopicWindows = BTreeMap<String, Box<ReplayWindow>>;

/// The replay state of one (sender, profile).
#[derive(Clone, Default)]
struct SenderState {
    /// Windows by epoch, then topic (each epoch's map boxed: a leaf of 11 inline maps is 300 B
    /// more per sender on firmware).
    epochs: BTreeMap<u32, Box<TopicWindows>>,
    /// Windows in `epochs`.
    count: usize,
    /// Highest number accepted in any window, evicted ones included.
    high_water: Option<u64>,
    /// Highest number of any evicted window.
    floor: Option<u64>,
}

impl SenderState {
    fn window(&self, epoch: u32, topic: &str) -> Option<&ReplayWindow> {
        self.epochs.get(&epoch)?.get(topic).map(|w| &**w)
    }

    fn raise_high_water(&mut self, seq: u64) {
        if self.high_water.is_none_or(|h| seq > h) {
            self.high_water = Some(seq);
        }
    }

    /// Drops the window with the lowest highest number (ties: lowest epoch, then topic bytes)
    /// and raises the floor to that number. Returns whether a window was dropped.
    fn evict_one(&mut self) -> bool {
        let mut lowest: Option<(Option<u64>, u32, &str)> = None;
        for (epoch, topics) in &self.epochs {
            for (topic, window) in topics.iter() {
                let candidate = (window.highest(), *epoch, topic.as_str());
                if lowest.is_none_or(|l| candidate < l) {
                    lowest = Some(candidate);
                }
            }
        }
        let Some((highest, epoch, topic)) = lowest else {
            return false;
        };
        let topic = topic.to_string();
        if let Some(topics) = self.epochs.get_mut(&epoch) {
            topics.remove(&topic);
            if topics.is_empty() {
                self.epochs.remove(&epoch);
            }
        }
        self.count = self.count.saturating_sub(1);
        if let Some(h) = highest
            && self.floor.is_none_or(|f| h > f)
        {
            self.floor = Some(h);
        }
        true
    }
}

/// Every replay window of a receiver, with floors and high-water marks (spec 7.3).
#[derive(Clone, Default)]
pub(crate) struct ReplayState {
    /// Boxed for the same reason as the windows: a B-tree leaf holds 11 values, and inline
    /// sender states would make the first sender cost about 1 KiB (firmware heap).
    senders: BTreeMap<(Fingerprint, Profile), Box<SenderState>>,
    /// Windows in all.
    total: usize,
    limits: ReplayLimits,
}

impl ReplayState {
    /// The limits in force.
    pub(crate) fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Sets the limits (each at least 1), evicting down to them at once.
    pub(crate) fn set_limits(&mut self, limits: ReplayLimits) {
        self.limits = ReplayLimits {
            per_sender: limits.per_sender.max(1),
            total: limits.total.max(1),
        };
        let per_sender = self.limits.per_sender;
        let mut evicted = 0;
        for state in self.senders.values_mut() {
            while state.count > per_sender && state.evict_one() {
                evicted += 1;
            }
        }
        self.total = self.total.saturating_sub(evicted);
        while self.total > self.limits.total && self.evict_from_largest() {}
    }

    /// The number of windows.
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// The window of (sender, profile, epoch, topic), if any.
    pub(crate) fn window(
        &self,
        sender: &Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
    ) -> Option<&ReplayWindow> {
        self.senders.get(&(*sender, profile))?.window(epoch, topic)
    }

    /// The sender's high-water mark in `profile`.
    pub(crate) fn high_water(&self, sender: &Fingerprint, profile: Profile) -> Option<u64> {
        self.senders.get(&(*sender, profile))?.high_water
    }

    /// The sender's eviction floor in `profile`.
    pub(crate) fn floor(&self, sender: &Fingerprint, profile: Profile) -> Option<u64> {
        self.senders.get(&(*sender, profile))?.floor
    }

    /// The replay rule of spec 7.3, read-only: `replay` (`duplicate` when `duplicate`) or
    /// `too_old` if `seq` would be refused. At or below the sender's floor is `too_old` on every
    /// topic (an evicted window may have held it); then the topic's window decides; with no
    /// window on the topic, a live delivery (`retained` false) with `M − seq ≥ W` for the
    /// sender's high-water mark `M` is `too_old`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check(
        &self,
        sender: &Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        seq: u64,
        retained: bool,
        duplicate: bool,
    ) -> Result<()> {
        let Some(state) = self.senders.get(&(*sender, profile)) else {
            return Ok(());
        };
        if state.floor.is_some_and(|f| seq <= f) {
            return Err(Error::TooOld);
        }
        match state.window(epoch, topic) {
            Some(window) => match window.check(seq) {
                Err(Error::Replay) if duplicate => Err(Error::Duplicate),
                other => other,
            },
            None if !retained
                && state
                    .high_water
                    .is_some_and(|h| h.saturating_sub(seq) >= REPLAY_WINDOW) =>
            {
                Err(Error::TooOld)
            }
            None => Ok(()),
        }
    }

    /// Records `seq` in its window (creating it, within the limits), after [`Self::check`]
    /// passed; fails only as the window's own rule does.
    pub(crate) fn record(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        seq: u64,
    ) -> Result<()> {
        if let Some(window) = self.window_mut(sender, profile, epoch, topic) {
            window.accept(seq)?;
        } else {
            let mut window = ReplayWindow::new();
            window.accept(seq)?;
            self.insert_new(sender, profile, epoch, topic, window);
        }
        if let Some(state) = self.senders.get_mut(&(sender, profile)) {
            state.raise_high_water(seq);
        }
        Ok(())
    }

    /// Re-applies an acceptance read back from a journal: with the floor rule of
    /// [`Self::check`] (as for a retained delivery), then [`Self::record`]. An acceptance the
    /// state already reflects changes nothing.
    pub(crate) fn restore_accepted(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        seq: u64,
    ) {
        if self
            .check(&sender, profile, epoch, topic, seq, true, false)
            .is_ok()
        {
            let _ = self.record(sender, profile, epoch, topic, seq);
        }
    }

    /// Installs (or replaces) a window, within the limits.
    pub(crate) fn set_window(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        window: ReplayWindow,
    ) {
        let highest = window.highest();
        match self.window_mut(sender, profile, epoch, topic) {
            Some(slot) => *slot = window,
            None => self.insert_new(sender, profile, epoch, topic, window),
        }
        if let (Some(h), Some(state)) = (highest, self.senders.get_mut(&(sender, profile))) {
            state.raise_high_water(h);
        }
    }

    /// Raises the sender's floor in `profile` to at least `floor` (and its high-water mark
    /// with it), e.g. restored from disk.
    pub(crate) fn raise_floor(&mut self, sender: Fingerprint, profile: Profile, floor: u64) {
        let state = self.senders.entry((sender, profile)).or_default();
        if state.floor.is_none_or(|f| floor > f) {
            state.floor = Some(floor);
        }
        state.raise_high_water(floor);
    }

    /// Every window: (sender, profile, epoch, topic, window), in that order.
    pub(crate) fn windows(
        &self,
    ) -> impl Iterator<Item = (Fingerprint, Profile, u32, &str, &ReplayWindow)> + '_ {
        self.senders.iter().flat_map(|((fp, profile), state)| {
            state.epochs.iter().flat_map(move |(epoch, topics)| {
                topics
                    .iter()
                    .map(move |(topic, w)| (*fp, *profile, *epoch, topic.as_str(), &**w))
            })
        })
    }

    /// Every floor: (sender, profile, floor), in that order.
    pub(crate) fn floors(&self) -> impl Iterator<Item = (Fingerprint, Profile, u64)> + '_ {
        self.senders
            .iter()
            .filter_map(|((fp, profile), s)| s.floor.map(|f| (*fp, *profile, f)))
    }

    /// Forgets every window, floor and high-water mark.
    pub(crate) fn clear(&mut self) {
        self.senders.clear();
        self.total = 0;
    }

    /// The window of (sender, profile, epoch, topic), if any, to change it.
    fn window_mut(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
    ) -> Option<&mut ReplayWindow> {
        let topics = self
            .senders
            .get_mut(&(sender, profile))?
            .epochs
            .get_mut(&epoch)?;
        topics.get_mut(topic).map(|w| &mut **w)
    }

    /// Inserts a window on a topic that has none, evicting first so that both limits hold.
    fn insert_new(
        &mut self,
        sender: Fingerprint,
        profile: Profile,
        epoch: u32,
        topic: &str,
        window: ReplayWindow,
    ) {
        let per_sender = self.limits.per_sender.max(1);
        let state = self.senders.entry((sender, profile)).or_default();
        if state.count >= per_sender && state.evict_one() {
            self.total = self.total.saturating_sub(1);
        }
        if self.total >= self.limits.total.max(1) {
            self.evict_from_largest();
        }
        let state = self.senders.entry((sender, profile)).or_default();
        state
            .epochs
            .entry(epoch)
            .or_default()
            .insert(topic.to_string(), Box::new(window));
        state.count += 1;
        self.total += 1;
    }

    /// Evicts one window of the (sender, profile) holding the most (ties: the first in order).
    fn evict_from_largest(&mut self) -> bool {
        let mut largest: Option<(&(Fingerprint, Profile), usize)> = None;
        for (key, state) in &self.senders {
            if largest.is_none_or(|(_, n)| state.count > n) {
                largest = Some((key, state.count));
            }
        }
        let Some((&key, _)) = largest else {
            return false;
        };
        let evicted = self.senders.get_mut(&key).is_some_and(|s| s.evict_one());
        if evicted {
            self.total = self.total.saturating_sub(1);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const A: Fingerprint = Fingerprint([1; 32]);
    const B: Fingerprint = Fingerprint([2; 32]);
    const S: Profile = Profile::Signed;

    fn limited(per_sender: usize, total: usize) -> ReplayState {
        let mut state = ReplayState::default();
        state.set_limits(ReplayLimits { per_sender, total });
        state
    }

    fn accept(state: &mut ReplayState, fp: Fingerprint, topic: &str, seq: u64) -> Result<()> {
        state.check(&fp, S, 1, topic, seq, false, false)?;
        state.record(fp, S, 1, topic, seq)
    }

    #[test]
    fn the_per_sender_cap_evicts_the_lowest_window_and_leaves_its_number_as_floor() {
        let mut state = limited(2, 100);
        accept(&mut state, A, "t/1", 10).unwrap();
        accept(&mut state, A, "t/2", 20).unwrap();
        accept(&mut state, A, "t/3", 30).unwrap();
        assert_eq!(state.len(), 2);
        assert!(state.window(&A, S, 1, "t/1").is_none());
        assert_eq!(state.floor(&A, S), Some(10));
        // The evicted topic's old numbers stay refused; newer ones open a new window.
        assert_eq!(accept(&mut state, A, "t/1", 10), Err(Error::TooOld));
        assert_eq!(accept(&mut state, A, "t/1", 9), Err(Error::TooOld));
        accept(&mut state, A, "t/1", 11).unwrap();
        assert_eq!(state.floor(&A, S), Some(20));
        // Retained deliveries are held to the floor too (not to the high-water mark).
        assert_eq!(
            state.check(&A, S, 1, "t/9", 20, true, false),
            Err(Error::TooOld)
        );
        assert_eq!(state.check(&A, S, 1, "t/9", 21, true, false), Ok(()));
    }

    #[test]
    fn the_total_cap_evicts_from_the_sender_holding_the_most_windows() {
        let mut state = limited(10, 3);
        accept(&mut state, A, "a/1", 1).unwrap();
        accept(&mut state, A, "a/2", 2).unwrap();
        accept(&mut state, B, "b/1", 5).unwrap();
        accept(&mut state, B, "b/2", 6).unwrap();
        assert_eq!(state.len(), 3);
        assert!(state.window(&A, S, 1, "a/1").is_none());
        assert_eq!(state.floor(&A, S), Some(1));
        assert_eq!(state.floor(&B, S), None);
    }

    #[test]
    fn no_sequence_of_evictions_lets_a_replay_back_in() {
        let mut state = limited(3, 5);
        let mut accepted: Vec<(Fingerprint, String, u64)> = Vec::new();
        let mut seq = 0u64;
        for round in 0..200u64 {
            let fp = if round % 3 == 0 { B } else { A };
            seq += 1 + round % 4;
            let topic = alloc::format!("t/{}", (round * 7) % 11);
            if accept(&mut state, fp, &topic, seq).is_ok() {
                accepted.push((fp, topic, seq));
            }
            assert!(state.len() <= 5);
            for (fp, topic, s) in &accepted {
                assert!(state.check(fp, S, 1, topic, *s, false, false).is_err());
                assert!(state.check(fp, S, 1, topic, *s, true, false).is_err());
            }
        }
    }

    #[test]
    fn lowering_the_limits_evicts_at_once_and_restoring_a_journal_honours_floors() {
        let mut state = ReplayState::default();
        for (i, seq) in [5u64, 7, 9].iter().enumerate() {
            accept(&mut state, A, &alloc::format!("t/{i}"), *seq).unwrap();
        }
        state.set_limits(ReplayLimits {
            per_sender: 1,
            total: 0,
        });
        assert_eq!(state.limits().total, 1);
        assert_eq!(state.len(), 1);
        assert_eq!(state.floor(&A, S), Some(7));
        // A journal record of an evicted window changes nothing.
        state.restore_accepted(A, S, 1, "t/0", 5);
        assert_eq!(state.len(), 1);
        assert!(state.window(&A, S, 1, "t/0").is_none());
        assert_eq!(state.high_water(&A, S), Some(9));
    }
}
