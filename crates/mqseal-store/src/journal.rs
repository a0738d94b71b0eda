//! Persisted replay windows: `state/replay.snap` (a checksummed snapshot of every window) and
//! `state/replay.log` (an append-only journal of accepted sequence numbers since the snapshot).
//!
//! ```text
//! replay.snap = "MQSRSNP3" || count (u32 BE) || entry* || floor count (u32 BE) || floor*
//!               || SHA-256(all bytes before)
//! entry       = sender fingerprint (32) || profile (1) || epoch (u32 BE) || topic length (u16 BE)
//!               || topic || window (265 bytes, mqseal::ReplayWindow::to_bytes)
//! floor       = sender fingerprint (32) || profile (1) || floor (u64 BE)
//! replay.log  = "MQSRLOG2" || record*
//! record      = body length (u32 BE) || body || check (first 8 bytes of SHA-256(length || body))
//! body        = sender fingerprint (32) || profile (1) || epoch (u32 BE) || seq (u64 BE)
//!               || topic (1..=65535)
//! profile     = 0x00 signed | 0x01 group-mac
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mqseal::{
    Fingerprint, MAX_TOPIC_LEN, Profile, REPLAY_WINDOW_BYTES, ReplayWindow, validate_topic,
};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::fsutil::{SECRET_MODE, io_err, read_required, sync_parent, write_atomic};

/// Magic of `state/replay.snap`.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"MQSRSNP3";
/// Magic of `state/replay.log`.
pub const LOG_MAGIC: &[u8; 8] = b"MQSRLOG2";
/// Length of a log record's check value.
const CHECK_LEN: usize = 8;
/// Fixed part of a log record body.
const BODY_FIXED: usize = 32 + 1 + 4 + 8;
/// Longest possible log record.
const MAX_RECORD: usize = 4 + BODY_FIXED + MAX_TOPIC_LEN + CHECK_LEN;

/// Identifies one replay window: (sender fingerprint, profile, epoch, topic).
pub type WindowId = (Fingerprint, Profile, u32, String);

/// Why the replay state is never optional.
pub(crate) const REPLAY_MISSING: &str = "the replay state is lost; a restarted subscriber would \
     accept replays of messages it already delivered. Restore state/ from the same machine, or \
     rotate the keys (new epoch) before opening again";

/// One journal record: `seq` was accepted in window (sender, profile, epoch, topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The sender's fingerprint.
    pub sender: Fingerprint,
    /// The profile of the accepted message (each profile has its own windows).
    pub profile: Profile,
    /// The key epoch.
    pub epoch: u32,
    /// The topic.
    pub topic: String,
    /// The accepted sequence number.
    pub seq: u64,
}

/// The content of a snapshot: every replay window and every eviction floor of an opener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySnapshot {
    /// The windows.
    pub windows: BTreeMap<WindowId, ReplayWindow>,
    /// The eviction floors, per (sender fingerprint, profile) (`mqseal-v2.md` 7.3).
    pub floors: BTreeMap<(Fingerprint, Profile), u64>,
}

/// Length of a floor entry: fingerprint, profile, floor.
const FLOOR_LEN: usize = 32 + 1 + 8;

/// Encodes a snapshot.
pub fn encode_snapshot(snapshot: &ReplaySnapshot) -> Vec<u8> {
    let windows = &snapshot.windows;
    let mut out = Vec::with_capacity(
        16 + windows.len() * (300 + 32) + snapshot.floors.len() * FLOOR_LEN + 32,
    );
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(
        &u32::try_from(windows.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for ((sender, profile, epoch, topic), window) in windows.iter().take(u32::MAX as usize) {
        out.extend_from_slice(&sender.0);
        out.push(profile.code());
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&u16::try_from(topic.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
        out.extend_from_slice(&window.to_bytes());
    }
    out.extend_from_slice(
        &u32::try_from(snapshot.floors.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for ((sender, profile), floor) in snapshot.floors.iter().take(u32::MAX as usize) {
        out.extend_from_slice(&sender.0);
        out.push(profile.code());
        out.extend_from_slice(&floor.to_be_bytes());
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Decodes and verifies a snapshot.
pub fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<ReplaySnapshot> {
    let bad = |reason: &str| StoreError::corrupt(path, None, reason);
    let (body, sum) = bytes
        .split_last_chunk::<32>()
        .ok_or_else(|| bad("shorter than its checksum (truncated?)"))?;
    if body.starts_with(b"MQSRSNP") && !body.starts_with(SNAPSHOT_MAGIC) {
        return Err(bad("unsupported format version"));
    }
    let rest = body
        .strip_prefix(SNAPSHOT_MAGIC.as_slice())
        .ok_or_else(|| bad("not a replay snapshot (bad magic)"))?;
    if Sha256::digest(body).as_slice() != sum {
        return Err(bad("checksum mismatch (truncated or damaged)"));
    }
    let (count, mut rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("missing entry count"))?;
    let count = u32::from_be_bytes(*count);
    let mut windows = BTreeMap::new();
    for _ in 0..count {
        let (fp, r) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("truncated entry"))?;
        let (&profile, r) = r.split_first().ok_or_else(|| bad("truncated entry"))?;
        let profile = profile_from_code(profile).ok_or_else(|| bad("unknown profile byte"))?;
        let (epoch, r) = r
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated entry"))?;
        let (len, r) = r
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("truncated entry"))?;
        let (topic, r) = r
            .split_at_checked(usize::from(u16::from_be_bytes(*len)))
            .ok_or_else(|| bad("truncated entry"))?;
        let (window, r) = r
            .split_at_checked(REPLAY_WINDOW_BYTES)
            .ok_or_else(|| bad("truncated entry"))?;
        let topic = std::str::from_utf8(topic)
            .ok()
            .filter(|t| validate_topic(t).is_ok())
            .ok_or_else(|| bad("entry with an invalid topic"))?;
        let window = ReplayWindow::from_bytes(window).map_err(|_| bad("invalid replay window"))?;
        let id = (
            Fingerprint(*fp),
            profile,
            u32::from_be_bytes(*epoch),
            topic.to_string(),
        );
        if windows.insert(id, window).is_some() {
            return Err(bad("duplicate window entry"));
        }
        rest = r;
    }
    let (count, mut rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("missing floor count"))?;
    let mut floors = BTreeMap::new();
    let mut last: Option<(Fingerprint, Profile)> = None;
    for _ in 0..u32::from_be_bytes(*count) {
        let (entry, r) = rest
            .split_first_chunk::<FLOOR_LEN>()
            .ok_or_else(|| bad("truncated floor"))?;
        let (fp, tail) = entry
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("truncated floor"))?;
        let (&profile, floor) = tail.split_first().ok_or_else(|| bad("truncated floor"))?;
        let profile = profile_from_code(profile).ok_or_else(|| bad("unknown profile byte"))?;
        let floor: [u8; 8] = floor.try_into().map_err(|_| bad("truncated floor"))?;
        let key = (Fingerprint(*fp), profile);
        if last.is_some_and(|l| key <= l) {
            return Err(bad("floors not in ascending order or repeated"));
        }
        last = Some(key);
        floors.insert(key, u64::from_be_bytes(floor));
        rest = r;
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the last floor"));
    }
    Ok(ReplaySnapshot { windows, floors })
}

/// Encodes one log record.
pub fn encode_record(record: &Accepted) -> Vec<u8> {
    let body_len = BODY_FIXED + record.topic.len();
    let mut out = Vec::with_capacity(4 + body_len + CHECK_LEN);
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&record.sender.0);
    out.push(record.profile.code());
    out.extend_from_slice(&record.epoch.to_be_bytes());
    out.extend_from_slice(&record.seq.to_be_bytes());
    out.extend_from_slice(record.topic.as_bytes());
    let check = Sha256::digest(&out);
    out.extend_from_slice(check.get(..CHECK_LEN).unwrap_or(&[]));
    out
}

/// A parsed log: its records and the length of its valid prefix (anything after it is a torn
/// final record left by a crash in the middle of an append that was never acknowledged).
#[derive(Debug)]
pub struct ParsedLog {
    /// The records, in order.
    pub records: Vec<Accepted>,
    /// Length of the valid prefix in bytes.
    pub valid_len: usize,
}

/// Decodes a log. A damaged or incomplete *final* record is a torn append (a crash in the middle
/// of a commit that was never acknowledged) and is dropped; so is a zero-filled tail. A damaged
/// record followed by more data is corruption (an error).
pub fn decode_log(path: &Path, bytes: &[u8]) -> Result<ParsedLog> {
    let corrupt = |offset: usize, reason: &str| {
        StoreError::corrupt(path, None, format!("{reason} at byte {offset}"))
    };
    if bytes.starts_with(b"MQSRLOG") && !bytes.starts_with(LOG_MAGIC) {
        return Err(corrupt(0, "unsupported format version"));
    }
    let mut rest = bytes
        .strip_prefix(LOG_MAGIC.as_slice())
        .ok_or_else(|| corrupt(0, "not a replay journal (bad magic)"))?;
    let mut records = Vec::new();
    let mut offset = LOG_MAGIC.len();
    while !rest.is_empty() {
        // A length that is impossible or runs past the end: a torn append if what is left is at
        // most one record long or all zero (a zero-filled tail after power loss).
        let torn_tail = rest.len() <= MAX_RECORD || rest.iter().all(|b| *b == 0);
        let framed = rest.split_first_chunk::<4>().and_then(|(len, after_len)| {
            let body_len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if !(BODY_FIXED + 1..=BODY_FIXED + MAX_TOPIC_LEN).contains(&body_len) {
                return None;
            }
            let total = body_len + 4 + CHECK_LEN;
            let (record, after) = rest.split_at_checked(total)?;
            Some((body_len, after_len, total, record, after))
        });
        let Some((body_len, after_len, total, record, after)) = framed else {
            if torn_tail {
                break;
            }
            return Err(corrupt(offset, "bad record length with more data after it"));
        };
        let (signed, check) = record
            .split_last_chunk::<CHECK_LEN>()
            .ok_or_else(|| corrupt(offset, "bad record"))?;
        let valid = Sha256::digest(signed).get(..CHECK_LEN) == Some(check.as_slice());
        let parsed = valid
            .then(|| parse_body(after_len.get(..body_len).unwrap_or(&[])))
            .flatten();
        // A torn append (a crash inside a commit that never returned) leaves the record's
        // tail zero-filled (filesystems extend a file with zeros, not stale data). A complete
        // final record with any other damage may have been acknowledged and delivered:
        // dropping it could let that message be replayed, so it is corruption.
        let zero_filled = check.iter().all(|b| *b == 0);
        match parsed {
            Some(r) => records.push(r),
            None if after.is_empty() && !valid && zero_filled => break, // torn final record
            None if after.is_empty() => {
                return Err(corrupt(
                    offset,
                    "damaged final record (not a torn append: it is complete and not \
                     zero-filled; it may have been delivered, so dropping it could accept a \
                     replay). Restore state/ from the same machine or rotate the keys",
                ));
            }
            None => return Err(corrupt(offset, "damaged record followed by more records")),
        }
        offset += total;
        rest = after;
    }
    Ok(ParsedLog {
        records,
        valid_len: offset,
    })
}

fn parse_body(body: &[u8]) -> Option<Accepted> {
    let (fp, r) = body.split_first_chunk::<32>()?;
    let (&profile, r) = r.split_first()?;
    let profile = profile_from_code(profile)?;
    let (epoch, r) = r.split_first_chunk::<4>()?;
    let (seq, topic) = r.split_first_chunk::<8>()?;
    let topic = std::str::from_utf8(topic).ok()?;
    validate_topic(topic).ok()?;
    Some(Accepted {
        sender: Fingerprint(*fp),
        profile,
        epoch: u32::from_be_bytes(*epoch),
        topic: topic.to_string(),
        seq: u64::from_be_bytes(*seq),
    })
}

/// The profile of a profile byte (0 signed, 1 group-mac), if valid.
fn profile_from_code(code: u8) -> Option<Profile> {
    match code {
        0 => Some(Profile::Signed),
        1 => Some(Profile::GroupMac),
        _ => None,
    }
}

/// What a snapshot and a log hold: apply the snapshot, then the records in order (each with the
/// window's accept rule and the floor rule, `mqseal-v2.md` 7.3).
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) snapshot: ReplaySnapshot,
    pub(crate) records: Vec<Accepted>,
    /// Length of the log's valid prefix.
    valid_len: usize,
}

/// Reads snapshot and log; returns them with the log file's length.
fn read_state(snapshot: &Path, log_path: &Path) -> Result<(Restored, u64)> {
    let snap = decode_snapshot(snapshot, &read_required(snapshot, true, REPLAY_MISSING)?)?;
    let bytes = read_required(log_path, true, REPLAY_MISSING)?;
    let parsed = decode_log(log_path, &bytes)?;
    let restored = Restored {
        snapshot: snap,
        records: parsed.records,
        valid_len: parsed.valid_len,
    };
    Ok((restored, bytes.len() as u64))
}

/// Creates an empty snapshot and log for a new store.
pub(crate) fn create_empty(snapshot: &Path, log: &Path) -> Result<()> {
    write_atomic(
        snapshot,
        &encode_snapshot(&ReplaySnapshot::default()),
        SECRET_MODE,
    )?;
    write_atomic(log, LOG_MAGIC, SECRET_MODE)
}

/// The open journal of a persistent opener.
#[derive(Debug)]
pub(crate) struct Journal {
    snapshot: PathBuf,
    log_path: PathBuf,
    log: File,
    log_len: u64,
    records: usize,
    pending: Vec<u8>,
    pending_records: usize,
    /// Test hook: the next commit's append fails (as on a full disk).
    #[cfg(test)]
    pub(crate) fail_next_append: bool,
}

impl Journal {
    /// Loads snapshot + log (truncating a torn final record), returning the journal and what
    /// they hold.
    pub(crate) fn open(snapshot: PathBuf, log_path: PathBuf) -> Result<(Journal, Restored)> {
        let (restored, file_len) = read_state(&snapshot, &log_path)?;
        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path, "open"))?;
        let valid_len = restored.valid_len as u64;
        if valid_len != file_len {
            log.set_len(valid_len)
                .map_err(io_err(&log_path, "truncate torn record"))?;
            log.sync_all().map_err(io_err(&log_path, "fsync"))?;
        }
        let journal = Journal {
            snapshot,
            log_path,
            log,
            log_len: valid_len,
            records: restored.records.len(),
            pending: Vec::new(),
            pending_records: 0,
            #[cfg(test)]
            fail_next_append: false,
        };
        Ok((journal, restored))
    }

    /// Reads back the durable state (snapshot + log as on disk), e.g. after a failed commit.
    pub(crate) fn reread(&self) -> Result<Restored> {
        read_state(&self.snapshot, &self.log_path).map(|(restored, _)| restored)
    }

    /// Queues a record for the next commit.
    pub(crate) fn push(&mut self, record: &Accepted) {
        self.pending.extend_from_slice(&encode_record(record));
        self.pending_records += 1;
    }

    /// Whether records are waiting for a commit.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records written since the last snapshot.
    pub(crate) fn records_since_snapshot(&self) -> usize {
        self.records
    }

    /// Appends the queued records and makes them durable (`fdatasync`). On failure the log is
    /// cut back to its previous length; `Err(true)` means even that failed.
    pub(crate) fn commit(&mut self) -> std::result::Result<(), (StoreError, bool)> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.append_pending();
        let written = self.pending.len() as u64;
        let records = self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        match result {
            Ok(()) => {
                self.log_len += written;
                self.records += records;
                Ok(())
            }
            Err(e) => {
                let undone = self.log.set_len(self.log_len).is_ok() && self.log.sync_all().is_ok();
                Err((e, !undone))
            }
        }
    }

    /// Appends the queued records and syncs them (the test hook: half of them reach the file,
    /// then the disk is full).
    fn append_pending(&mut self) -> Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_append) {
            let half = self.pending.get(..self.pending.len() / 2).unwrap_or(&[]);
            let _ = self.log.write_all(half);
            let e = io::Error::new(io::ErrorKind::StorageFull, "injected");
            return Err(io_err(&self.log_path, "append")(e));
        }
        self.log
            .write_all(&self.pending)
            .map_err(io_err(&self.log_path, "append"))
            .and_then(|()| {
                self.log
                    .sync_data()
                    .map_err(io_err(&self.log_path, "fsync"))
            })
    }

    /// Writes a snapshot of `windows` and starts an empty log. Crash-safe at every step: until
    /// the snapshot's rename the old snapshot + log hold the state; after it, the new snapshot
    /// holds everything and re-applying the old log changes nothing.
    pub(crate) fn compact(&mut self, snapshot: &ReplaySnapshot) -> Result<()> {
        write_atomic(&self.snapshot, &encode_snapshot(snapshot), SECRET_MODE)?;
        // The new log is opened before it replaces the old one, so appends never go to a
        // replaced file.
        self.log = replace_with_empty_log(&self.log_path)?;
        self.log_len = LOG_MAGIC.len() as u64;
        self.records = 0;
        sync_parent(&self.log_path)
    }
}

/// Writes an empty log beside `log`, fsyncs it and renames it over `log`; returns it open for
/// appending.
fn replace_with_empty_log(log: &Path) -> Result<File> {
    let tmp = log.with_file_name(".replay.log.tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp, "remove stale temporary file")(e)),
    }
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(SECRET_MODE);
    }
    let result = (|| {
        let mut f = options.open(&tmp).map_err(io_err(&tmp, "create"))?;
        f.write_all(LOG_MAGIC).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        fs::rename(&tmp, log).map_err(io_err(log, "rename"))?;
        Ok(f)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn rec(seq: u64) -> Accepted {
        Accepted {
            sender: Fingerprint([1; 32]),
            profile: Profile::Signed,
            epoch: 2,
            topic: "a/b".into(),
            seq,
        }
    }

    #[test]
    fn snapshot_round_trips_and_detects_damage() {
        let mut windows = BTreeMap::new();
        let mut w = ReplayWindow::new();
        w.accept(5).unwrap();
        windows.insert(
            (Fingerprint([1; 32]), Profile::Signed, 2, "a/b".to_string()),
            w.clone(),
        );
        windows.insert(
            (
                Fingerprint([1; 32]),
                Profile::GroupMac,
                2,
                "a/b".to_string(),
            ),
            w,
        );
        windows.insert(
            (Fingerprint([2; 32]), Profile::Signed, 1, "c".to_string()),
            ReplayWindow::new(),
        );
        let mut floors = BTreeMap::new();
        floors.insert((Fingerprint([1; 32]), Profile::Signed), 3);
        floors.insert((Fingerprint([3; 32]), Profile::GroupMac), 9);
        let snapshot = ReplaySnapshot { windows, floors };
        let bytes = encode_snapshot(&snapshot);
        let p = Path::new("replay.snap");
        assert_eq!(decode_snapshot(p, &bytes).unwrap(), snapshot);
        for n in 0..bytes.len() {
            assert!(decode_snapshot(p, &bytes[..n]).is_err(), "{n}");
        }
        for i in [0, 9, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode_snapshot(p, &bad).is_err(), "{i}");
        }
    }

    #[test]
    fn log_torn_tail_is_dropped_but_damage_in_the_middle_is_an_error() {
        let p = Path::new("replay.log");
        let mut bytes = LOG_MAGIC.to_vec();
        let mut ends = vec![bytes.len()];
        for s in 0..3 {
            bytes.extend_from_slice(&encode_record(&rec(s)));
            ends.push(bytes.len());
        }
        let full = decode_log(p, &bytes).unwrap();
        assert_eq!(full.records, vec![rec(0), rec(1), rec(2)]);
        assert_eq!(full.valid_len, bytes.len());
        // Any cut inside the last record: the first two survive, the rest is a torn tail.
        for n in ends[2]..ends[3] {
            let parsed = decode_log(p, &bytes[..n]).unwrap();
            assert_eq!(parsed.records.len(), 2);
            assert_eq!(parsed.valid_len, ends[2]);
        }
        // A flipped bit in the complete final record: damage, not a torn append (it may have
        // been acknowledged and delivered; dropping it would re-accept that message).
        let mut flipped = bytes.clone();
        flipped[ends[3] - 1] ^= 1;
        let err = decode_log(p, &flipped).unwrap_err();
        assert!(err.to_string().contains("damaged final record"), "{err}");
        // The same record with its tail zero-filled (a crash inside the append): torn.
        let mut torn = bytes.clone();
        torn[ends[3] - 12..ends[3]].fill(0);
        assert_eq!(decode_log(p, &torn).unwrap().records.len(), 2);
        // A flipped bit in a middle record: corruption.
        let mut bad = bytes.clone();
        bad[ends[1] + 10] ^= 1;
        let err = decode_log(p, &bad).unwrap_err();
        assert!(
            err.to_string().contains("followed by more records"),
            "{err}"
        );
        // A zero-filled tail (power loss) is torn, however long.
        let mut zeros = bytes.clone();
        zeros.extend(std::iter::repeat_n(0u8, 3 * MAX_RECORD));
        assert_eq!(decode_log(p, &zeros).unwrap().valid_len, bytes.len());
        // An impossible length with more than a record's worth of data after it: corruption.
        let mut long = LOG_MAGIC.to_vec();
        long.extend_from_slice(&[0xff; 4]);
        while long.len() < 2 * MAX_RECORD {
            long.extend_from_slice(&encode_record(&rec(7)));
        }
        assert!(decode_log(p, &long).is_err());
        // Bad magic.
        assert!(decode_log(p, b"MQSRLOG1").is_err());
        assert!(decode_log(p, b"MQSRLOX2").is_err());
        assert!(decode_log(p, b"").is_err());
    }
}
