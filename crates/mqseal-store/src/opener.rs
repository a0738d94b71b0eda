//! [`PersistentOpener`]: an [`Opener`] whose replay windows survive restarts.
//!
//! Strategy: *persist before delivery*. Each accepted sequence number is appended to
//! `state/replay.log` and made durable (`fdatasync`) before the message is handed to the
//! application ([`PersistentOpener::open`]); batches can share one sync
//! ([`PersistentOpener::open_uncommitted`] + [`PersistentOpener::commit`]). The log is folded into
//! `state/replay.snap` every so often. After a crash the windows are exactly those of every
//! delivered message (plus possibly some accepted but not yet delivered: those are lost, never
//! replayed), so a restarted subscriber rejects every replay and accepts every new number.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use mqseal::{
    Delivery, Fingerprint, OpenPolicy, Opened, OpenedInfo, Opener, Profile, PublicIdentity,
    ReplayWindow,
};

use crate::error::{Result, StoreError};
use crate::fsutil::LockFile;
use crate::journal::{Accepted, WindowId};
use crate::keyfile::HeldKey;
use crate::trust::TrustedSender;

pub(crate) use crate::journal::Journal;

/// Windows as they were before a message was opened: (sender, window if any), for the
/// message's profile and epoch.
type Preimages = Vec<(Fingerprint, Option<ReplayWindow>)>;

/// A window's (sender, profile, epoch), under which its topics are listed.
type WindowGroup = (Fingerprint, Profile, u32);

/// An [`Opener`] whose replay windows are persisted before each delivery.
///
/// Holds the store's `state/open.lock` while alive. Create it with
/// [`Store::opener`](crate::Store::opener).
pub struct PersistentOpener {
    opener: Opener,
    journal: Journal,
    windows: BTreeMap<WindowGroup, BTreeSet<String>>,
    undo: Vec<(WindowId, Option<ReplayWindow>)>,
    senders: Vec<PublicIdentity>,
    keys: Vec<(String, u32)>,
    compact_after: usize,
    poisoned: bool,
    _lock: LockFile,
}

impl PersistentOpener {
    pub(crate) fn start(
        policy: OpenPolicy,
        snapshot: PathBuf,
        log_path: PathBuf,
        lock: LockFile,
        compact_after: usize,
    ) -> Result<PersistentOpener> {
        let (journal, restored) = Journal::open(snapshot, log_path)?;
        let mut opener = Opener::with_policy(policy);
        let mut windows: BTreeMap<WindowGroup, BTreeSet<String>> = BTreeMap::new();
        for ((fp, profile, epoch, topic), window) in restored {
            opener.set_replay_window(fp, profile, epoch, &topic, window);
            windows
                .entry((fp, profile, epoch))
                .or_default()
                .insert(topic);
        }
        Ok(PersistentOpener {
            opener,
            journal,
            windows,
            undo: Vec::new(),
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
        let pre = self.preimages(topic, message);
        let info = self.opener.open_into(topic, message, delivery, out)?;
        let id = (info.sender.fingerprint(), info.profile, info.epoch);
        self.keep_preimage(pre, topic, id);
        self.record(topic, id, info.seq);
        if let Err(e) = self.commit() {
            out.iter_mut().for_each(|b| *b = 0);
            return Err(e);
        }
        Ok(info)
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
        let pre = self.preimages(topic, message);
        let opened = self.opener.open_delivered(topic, message, delivery)?;
        let id = (opened.sender.fingerprint(), opened.profile, opened.epoch);
        self.keep_preimage(pre, topic, id);
        self.record(topic, id, opened.seq);
        Ok(opened)
    }

    /// Makes every acceptance since the last commit durable. On failure the windows are rolled
    /// back (those messages count as not delivered) and the error is returned.
    pub fn commit(&mut self) -> Result<()> {
        self.check()?;
        match self.journal.commit() {
            Ok(()) => {
                self.undo.clear();
                if self.journal.records_since_snapshot() >= self.compact_after {
                    // A failed compaction leaves a consistent state; it is retried next time.
                    let _ = self.compact();
                }
                Ok(())
            }
            Err((e, fatal)) => {
                for ((fp, profile, epoch, topic), pre) in std::mem::take(&mut self.undo) {
                    self.opener.set_replay_window(
                        fp,
                        profile,
                        epoch,
                        &topic,
                        pre.unwrap_or_default(),
                    );
                }
                self.poisoned = fatal;
                Err(e)
            }
        }
    }

    /// Folds the journal into a new snapshot now (commits pending acceptances first).
    pub fn compact(&mut self) -> Result<()> {
        if self.journal.has_pending() {
            self.commit()?;
        }
        let mut all = BTreeMap::new();
        for ((fp, profile, epoch), topics) in &self.windows {
            for topic in topics {
                if let Some(w) = self.opener.replay_window(fp, *profile, *epoch, topic) {
                    all.insert((*fp, *profile, *epoch, topic.clone()), w.clone());
                }
            }
        }
        self.journal.compact(&all)
    }

    /// The wrapped opener (read-only: its windows are managed here).
    pub fn opener(&self) -> &Opener {
        &self.opener
    }

    /// The number of persisted replay windows (sender, profile, epoch, topic).
    pub fn window_count(&self) -> usize {
        self.windows.values().map(BTreeSet::len).sum()
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

    /// The windows this message may touch (one per trusted sender with its sender id, for the
    /// message's profile and epoch), as they are before opening it. Held only for the duration of the call: a refused message leaves
    /// nothing behind (a key-less attacker who writes a trusted sender's id on junk cannot grow
    /// the undo list).
    fn preimages(&self, topic: &str, message: &[u8]) -> Preimages {
        let Ok(header) = mqseal::inspect(message) else {
            return Vec::new();
        };
        self.senders
            .iter()
            .filter(|s| s.sender_id() == header.sender)
            .map(|s| {
                let fp = s.fingerprint();
                let pre = self
                    .opener
                    .replay_window(&fp, header.profile, header.epoch, topic)
                    .cloned();
                (fp, pre)
            })
            .collect()
    }

    /// After an acceptance in window group `id` (sender, profile, epoch): keeps the pre-image
    /// of the window it changed (once per window and batch) so that a failed commit can roll it
    /// back.
    fn keep_preimage(&mut self, pre: Preimages, topic: &str, id: WindowGroup) {
        let (sender, profile, epoch) = id;
        let seen = self
            .undo
            .iter()
            .any(|((f, p, e, t), _)| (*f, *p, *e) == id && t == topic);
        if seen {
            return;
        }
        if let Some((_, window)) = pre.into_iter().find(|(f, _)| *f == sender) {
            self.undo
                .push(((sender, profile, epoch, topic.to_string()), window));
        }
    }

    fn record(&mut self, topic: &str, id: WindowGroup, seq: u64) {
        let topics = self.windows.entry(id).or_default();
        if !topics.contains(topic) {
            topics.insert(topic.to_string());
        }
        let (sender, profile, epoch) = id;
        self.journal.push(&Accepted {
            sender,
            profile,
            epoch,
            topic: topic.to_string(),
            seq,
        });
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
    use mqseal::{Identity, Profile, SealOptions, Sealer};

    /// Issue 12's reproduction: junk carrying a trusted sender's id (visible on the wire) on
    /// distinct topics used to leave one undo pre-image each (3 000 took 28 s and 170 MB).
    #[test]
    fn refusals_leave_no_undo_state_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("s"), "dash").unwrap();
        let sensor = Identity::from_seed([3; 32]);
        store
            .trust("sensor", &sensor.public(), Roles::SENDER)
            .unwrap();
        let key = store.create_key("plant/#", 1_800_000_000).unwrap();
        let mut opener = store.opener(OpenPolicy::default()).unwrap();
        let mut sealer = Sealer::new(sensor, Profile::Signed, 0);
        sealer.add_key(key.key.clone());
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
        assert!(opener.undo.is_empty());
        // An acceptance keeps exactly one pre-image until the commit.
        opener
            .open_uncommitted("plant/0", &real, &Delivery::default())
            .unwrap();
        assert_eq!(opener.undo.len(), 1);
        opener.commit().unwrap();
        assert!(opener.undo.is_empty());
    }
}
