//! [`PersistentOpener`]: an [`Opener`] whose replay windows survive restarts.
//!
//! Strategy: *persist before delivery*. Each accepted sequence number is appended to
//! `state/replay.log` and made durable (`fdatasync`) before the message is handed to the
//! application ([`PersistentOpener::open`]); batches can share one sync
//! ([`PersistentOpener::open_uncommitted`] + [`PersistentOpener::commit`]). The log is folded into
//! `state/replay.snap` every so often. After a crash the windows are exactly those of every
//! delivered message (plus possibly some accepted but not yet delivered: those are lost, never
//! replayed), so a restarted subscriber rejects every replay and accepts every new number.

use std::fmt;
use std::path::PathBuf;

use mqseal::{
    BatchItem, Delivery, OpenPolicy, Opened, OpenedInfo, Opener, Profile, PublicIdentity,
    ReplayLimits,
};

use crate::error::{Result, StoreError};
use crate::fsutil::LockFile;
use crate::journal::{Accepted, ReplaySnapshot, Restored};
use crate::keyfile::HeldKey;
use crate::trust::TrustedSender;

pub(crate) use crate::journal::Journal;

/// An [`Opener`] whose replay windows are persisted before each delivery.
///
/// Holds the store's `state/open.lock` while alive. Create it with
/// [`Store::opener`](crate::Store::opener).
pub struct PersistentOpener {
    opener: Opener,
    journal: Journal,
    senders: Vec<PublicIdentity>,
    keys: Vec<(String, u32)>,
    compact_after: usize,
    poisoned: bool,
    _lock: LockFile,
}

impl PersistentOpener {
    pub(crate) fn start(
        policy: OpenPolicy,
        limits: ReplayLimits,
        snapshot: PathBuf,
        log_path: PathBuf,
        lock: LockFile,
        compact_after: usize,
    ) -> Result<PersistentOpener> {
        let (journal, restored) = Journal::open(snapshot, log_path)?;
        let mut opener = Opener::with_policy(policy);
        opener.set_replay_limits(limits);
        load(&mut opener, restored);
        Ok(PersistentOpener {
            opener,
            journal,
            senders: Vec::new(),
            keys: Vec::new(),
            compact_after: compact_after.max(1),
            poisoned: false,
            _lock: lock,
        })
    }

    /// Opens a live message and persists its acceptance before returning it.
    pub fn open(&mut self, topic: &str, message: &[u8]) -> Result<Opened> {
        self.open_delivered(topic, message, &Delivery::default())
    }

    /// Opens a message (with the delivery's MQTT flags and time) and persists its acceptance
    /// before returning it: once this returns `Ok`, a restart still rejects its replays.
    pub fn open_delivered(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened> {
        let opened = self.open_uncommitted(topic, message, delivery)?;
        self.commit()?;
        Ok(opened)
    }

    /// Like [`PersistentOpener::open_delivered`], into a caller buffer (see
    /// [`Opener::open_into`]).
    pub fn open_into(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
        out: &mut [u8],
    ) -> Result<OpenedInfo> {
        self.check()?;
        let info = self.opener.open_into(topic, message, delivery, out)?;
        self.record(topic, &info.sender, info.profile, info.epoch, info.seq);
        if let Err(e) = self.commit() {
            out.iter_mut().for_each(|b| *b = 0);
            return Err(e);
        }
        Ok(info)
    }

    /// **Group commit**: opens a batch (signatures verified together, as
    /// [`Opener::open_batch`]) and makes every acceptance durable with one `fdatasync`
    /// before returning any plaintext. The guarantee is that of [`PersistentOpener::open`]
    /// for each message — nothing is returned before it is durable, and after a crash every
    /// returned message stays refused — at one sync per batch instead of one per message. The
    /// cost: a crash before the sync loses the whole batch's acceptances (none was returned, so
    /// redeliveries are accepted once). `Err` means the sync failed: no message of the batch
    /// (nor any opened with [`PersistentOpener::open_uncommitted`] since the last commit)
    /// counts as delivered; the inner results are each message's own outcome.
    ///
    /// ```
    /// # use mqseal::{BatchItem, Identity, OpenPolicy, Profile, Sealer};
    /// # use mqseal_store::{Roles, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::create(dir.path().join("s"), "dash").unwrap();
    /// # let sensor = Identity::from_seed([3; 32]);
    /// # store.trust("sensor", &sensor.public(), Roles::SENDER).unwrap();
    /// # let key = store.create_key("plant/#", 1_800_000_000).unwrap();
    /// # let mut sealer = Sealer::new(sensor, Profile::Signed, 0);
    /// # sealer.add_key(key.key.clone());
    /// let sealed: Vec<Vec<u8>> = (0..8u8)
    ///     .map(|i| sealer.seal("plant/7", &[i], false).unwrap())
    ///     .collect();
    /// let mut opener = store.opener(OpenPolicy::default()).unwrap();
    /// let items: Vec<BatchItem> = sealed.iter().map(|m| BatchItem::live("plant/7", m)).collect();
    /// let results = opener.open_batch(&items).unwrap(); // one fdatasync for all eight
    /// assert!(results.iter().all(|r| r.is_ok()));
    /// assert!(opener.open_batch(&items).unwrap().iter().all(|r| r.is_err())); // replays
    /// ```
    pub fn open_batch(
        &mut self,
        items: &[BatchItem<'_>],
    ) -> Result<Vec<std::result::Result<Opened, mqseal::Error>>> {
        self.check()?;
        let results = self.opener.open_batch(items);
        for (item, result) in items.iter().zip(&results) {
            if let Ok(o) = result {
                self.record(item.topic, &o.sender, o.profile, o.epoch, o.seq);
            }
        }
        self.commit()?;
        Ok(results)
    }

    /// Opens a message and records its acceptance in memory only: **do not act on it until
    /// [`PersistentOpener::commit`] returns `Ok`** (then every message opened since the last
    /// commit is durable). Lets a batch share one `fdatasync`.
    pub fn open_uncommitted(
        &mut self,
        topic: &str,
        message: &[u8],
        delivery: &Delivery,
    ) -> Result<Opened> {
        self.check()?;
        let opened = self.opener.open_delivered(topic, message, delivery)?;
        self.record(
            topic,
            &opened.sender,
            opened.profile,
            opened.epoch,
            opened.seq,
        );
        Ok(opened)
    }

    /// Makes every acceptance since the last commit durable. On failure the replay state is
    /// read back from disk (those messages count as not delivered) and the error is returned;
    /// if even that fails the opener refuses everything ([`StoreError::Poisoned`]).
    pub fn commit(&mut self) -> Result<()> {
        self.check()?;
        match self.journal.commit() {
            Ok(()) => {
                // Compaction writes every window, so it waits until the log holds at least as
                // many records as there are windows: at most one window written per record.
                let due = self.compact_after.max(self.opener.replay_window_count());
                if self.journal.records_since_snapshot() >= due {
                    // A failed compaction leaves a consistent state; it is retried next time.
                    let _ = self.compact();
                }
                Ok(())
            }
            Err((e, fatal)) => {
                // The log was cut back to its last durable length: that is the state.
                match (fatal, self.journal.reread()) {
                    (false, Ok(restored)) => {
                        self.opener.clear_replay_state();
                        load(&mut self.opener, restored);
                    }
                    _ => self.poisoned = true,
                }
                Err(e)
            }
        }
    }

    /// Folds the journal into a new snapshot now (commits pending acceptances first).
    pub fn compact(&mut self) -> Result<()> {
        if self.journal.has_pending() {
            self.commit()?;
        }
        let mut snapshot = ReplaySnapshot::default();
        for (fp, profile, epoch, topic, window) in self.opener.replay_windows() {
            snapshot
                .windows
                .insert((fp, profile, epoch, topic.to_string()), window.clone());
        }
        for (fp, profile, floor) in self.opener.replay_floors() {
            snapshot.floors.insert((fp, profile), floor);
        }
        self.journal.compact(&snapshot)
    }

    /// The wrapped opener (read-only: its windows are managed here).
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// The number of persisted replay windows (sender, profile, epoch, topic), at most the
    /// store's [`ReplayLimits::total`].
    pub fn window_count(&self) -> usize {
        self.opener.replay_window_count()
    }

    /// Replaces the trusted senders (what [`Store::trusted_senders`](crate::Store::trusted_senders)
    /// returns), each with the filters its `group-mac` messages are accepted on.
    /// Fails with `InvalidFilter` on a group-mac filter that is not one (then no sender is
    /// trusted until a successful call).
    pub fn set_senders(&mut self, senders: Vec<TrustedSender>) -> Result<()> {
        for s in std::mem::take(&mut self.senders) {
            self.opener.untrust_sender(&s.fingerprint());
        }
        for s in senders {
            self.opener.trust_sender(s.public.clone());
            self.senders.push(s.public.clone());
            for filter in &s.group_mac {
                if let Err(e) = self.opener.trust_group_mac_sender(s.public.clone(), filter) {
                    for t in std::mem::take(&mut self.senders) {
                        self.opener.untrust_sender(&t.fingerprint());
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Replaces the held keys, with their retirement times (what
    /// [`Store::held_keys`](crate::Store::held_keys) returns).
    pub fn set_keys(&mut self, keys: &[HeldKey]) {
        for (f, e) in std::mem::take(&mut self.keys) {
            self.opener.remove_key(&f, e);
        }
        for k in keys {
            self.add_key(k);
        }
    }

    /// Adds (or updates) one held key and its retirement; other lineages' keys of the same
    /// filter and epoch are kept.
    pub fn add_key(&mut self, key: &HeldKey) {
        let id = (key.filter().to_string(), key.epoch());
        match key.not_after {
            Some(t) => self.opener.add_retired_key(key.key.clone(), t),
            None => self.opener.add_key(key.key.clone()),
        }
        if !self.keys.contains(&id) {
            self.keys.push(id);
        }
    }

    /// Retires a held key (see [`Opener::retire_key`]).
    pub fn retire_key(&mut self, filter: &str, epoch: u32, not_after: u64) {
        self.opener.retire_key(filter, epoch, not_after);
    }

    fn check(&self) -> Result<()> {
        if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn record(
        &mut self,
        topic: &str,
        sender: &PublicIdentity,
        profile: Profile,
        epoch: u32,
        seq: u64,
    ) {
        self.journal.push(&Accepted {
            sender: sender.fingerprint(),
            profile,
            epoch,
            topic: topic.to_string(),
            seq,
        });
    }
}

/// Applies what the journal holds to `opener`: floors, windows, then each record in order.
fn load(opener: &mut Opener, restored: Restored) {
    for ((fp, profile), floor) in restored.snapshot.floors {
        opener.raise_replay_floor(fp, profile, floor);
    }
    for ((fp, profile, epoch, topic), window) in restored.snapshot.windows {
        opener.set_replay_window(fp, profile, epoch, &topic, window);
    }
    for r in restored.records {
        opener.restore_accepted(r.sender, r.profile, r.epoch, &r.topic, r.seq);
    }
}

impl fmt::Debug for PersistentOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentOpener")
            .field("opener", &self.opener)
            .field("windows", &self.window_count())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Roles, Store};
    use mqseal::{Fingerprint, Identity, Profile, SealOptions, Sealer};

    /// A subscriber store `dash` (with `options`) trusting the sender `sensor` (seed 3), which
    /// holds its key `plant/#`: (tempdir, store, sensor's fingerprint, sensor's sealer).
    fn site(options: crate::StoreOptions) -> (tempfile::TempDir, Store, Fingerprint, Sealer) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create_with(
            dir.path().join("s"),
            "dash",
            Identity::from_seed([4; 32]),
            options,
        )
        .unwrap();
        let sensor = Identity::from_seed([3; 32]);
        store
            .trust("sensor", &sensor.public(), Roles::SENDER)
            .unwrap();
        let key = store.create_key("plant/#", 1_800_000_000).unwrap();
        let fp = sensor.fingerprint();
        let mut sealer = Sealer::new(sensor, Profile::Signed, 0);
        sealer.add_key(key.key.clone());
        (dir, store, fp, sealer)
    }

    /// Issue 12's reproduction: junk carrying a trusted sender's id (visible on the wire) on
    /// distinct topics used to leave one undo pre-image each (3 000 took 28 s and 170 MB). There
    /// is no undo state any more (a failed commit reads the state back from disk); refusals
    /// leave neither records nor windows.
    #[test]
    fn refusals_leave_no_undo_state_behind() {
        let (_dir, store, _, mut sealer) = site(crate::StoreOptions::default());
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        let real = sealer
            .seal_with("plant/0", b"x", &SealOptions::at(false, 1_800_000_000))
            .unwrap();
        for i in 0..3_000 {
            let mut junk = real.clone();
            let last = junk.len() - 1;
            junk[last] ^= 1; // a broken signature: refused after the sender lookup
            let topic = format!("plant/{i}");
            assert!(
                opener
                    .open_uncommitted(&topic, &junk, &Delivery::default())
                    .is_err()
            );
        }
        assert!(!opener.journal.has_pending());
        assert_eq!(opener.window_count(), 0);
        // An acceptance queues exactly one record until the commit.
        opener
            .open_uncommitted("plant/0", &real, &Delivery::default())
            .unwrap();
        assert!(opener.journal.has_pending());
        opener.commit().unwrap();
        assert!(!opener.journal.has_pending());
        assert_eq!(opener.window_count(), 1);
    }

    /// A failed commit forgets every acceptance since the last good one (their messages were
    /// not delivered, so they may come again) and keeps every earlier one, evictions included:
    /// the state is read back from disk.
    #[test]
    fn a_failed_commit_reads_the_durable_state_back() {
        let options = crate::StoreOptions {
            replay_limits: ReplayLimits {
                per_sender: 2,
                total: 10,
            },
            ..crate::StoreOptions::default()
        };
        let (_dir, store, fp, mut sealer) = site(options);
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        let m: Vec<Vec<u8>> = (0..5)
            .map(|i| sealer.seal(&format!("plant/{i}"), b"x", false).unwrap())
            .collect();
        let live = Delivery::default();
        for (i, msg) in m.iter().enumerate().take(3) {
            opener.open(&format!("plant/{i}"), msg).unwrap(); // plant/0 is evicted: floor 0
        }
        assert_eq!(opener.opener().replay_floor(&fp, Profile::Signed), Some(0));
        opener.open_uncommitted("plant/3", &m[3], &live).unwrap(); // evicts plant/1
        opener.open_uncommitted("plant/4", &m[4], &live).unwrap(); // evicts plant/2
        assert_eq!(opener.opener().replay_floor(&fp, Profile::Signed), Some(2));
        opener.journal.fail_next_append = true;
        assert!(opener.commit().is_err());
        // Back to the durable state: plant/1 and plant/2 held, floor 0, 3 and 4 not accepted.
        assert_eq!(opener.opener().replay_floor(&fp, Profile::Signed), Some(0));
        assert_eq!(opener.window_count(), 2);
        assert!(opener.open("plant/1", &m[1]).is_err());
        assert!(opener.open("plant/0", &m[0]).is_err());
        opener.open("plant/3", &m[3]).unwrap();
        opener.open("plant/4", &m[4]).unwrap();
        drop(opener);
        let mut again = store.opener(OpenPolicy::default()).unwrap();
        for (i, msg) in m.iter().enumerate() {
            assert!(again.open(&format!("plant/{i}"), msg).is_err(), "{i}");
        }
    }

    /// Group commit: a batch whose one sync fails delivers nothing and is accepted again when
    /// redelivered; a batch that committed stays refused after a restart.
    #[test]
    fn a_batch_is_durable_together_or_not_at_all() {
        let (_dir, store, _, mut sealer) = site(crate::StoreOptions::default());
        let sealed: Vec<Vec<u8>> = (0..6u8)
            .map(|i| {
                sealer
                    .seal(&format!("plant/{}", i % 3), &[i], false)
                    .unwrap()
            })
            .collect();
        let items: Vec<BatchItem<'_>> = sealed
            .iter()
            .enumerate()
            .map(|(i, m)| BatchItem {
                topic: ["plant/0", "plant/1", "plant/2"][i % 3],
                message: m,
                delivery: Delivery::default(),
            })
            .collect();
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        opener.journal.fail_next_append = true;
        assert!(opener.open_batch(&items).is_err());
        assert_eq!(opener.window_count(), 0);
        let results = opener.open_batch(&items).unwrap();
        assert!(results.iter().all(|r| r.is_ok()));
        drop(opener);
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        let again = opener.open_batch(&items).unwrap();
        assert!(again.iter().all(|r| *r == Err(mqseal::Error::Replay)));
    }
}
