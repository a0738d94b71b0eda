//! Sequence reservation and persisted replay windows, in process (the SIGKILL tests are in
//! crash.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use mqseal::{Delivery, Error, Identity, OpenPolicy, Profile};
use mqseal_store::{Roles, Store, StoreError, StoreOptions, layout};

fn options(block: u64, compact_after: usize) -> StoreOptions {
    StoreOptions {
        sequence_block: block,
        compact_after,
        ..StoreOptions::default()
    }
}

/// A sender store and a subscriber store sharing the key `t/#`.
fn pair(dir: &Path, opts: StoreOptions) -> (Store, Store) {
    let tx = Store::create_with(
        dir.join("tx"),
        "tx",
        Identity::from_seed([1; 32]),
        opts.clone(),
    )
    .unwrap();
    let rx = Store::create_with(dir.join("rx"), "rx", Identity::from_seed([2; 32]), opts).unwrap();
    tx.trust("rx", &rx.public(), Roles::SENDER).unwrap();
    rx.trust("tx", &tx.public(), Roles::BOTH).unwrap();
    tx.create_key("t/#", 0).unwrap();
    let g = tx.issue_grant("t/#", "rx").unwrap();
    rx.accept_grant_message(&g.topic, &g.payload, 0).unwrap();
    (tx, rx)
}

fn seq_of(m: &[u8]) -> u64 {
    mqseal::inspect(m).unwrap().seq
}

#[test]
fn reservations_are_durable_before_use_and_restarts_resume_above_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, _) = pair(tmp.path(), options(4, 100));
    let mut seen = HashSet::new();
    let mut expected_start = 0;
    for run in 0..5u64 {
        let mut sealer = tx.sealer(Profile::Signed).unwrap();
        assert_eq!(sealer.next_seq(), expected_start);
        // The reservation is on disk before the first number is used.
        assert_eq!(tx.reserved_sequence().unwrap(), expected_start + 4);
        for i in 0..(run * 3 + 1) {
            let m = sealer.seal("t/a", &i.to_be_bytes(), false).unwrap();
            let seq = seq_of(&m);
            assert!(seen.insert(seq), "sequence {seq} reused");
            // Every number used is below the durable reservation.
            assert!(seq < tx.reserved_sequence().unwrap());
            assert_eq!(sealer.reserved(), tx.reserved_sequence().unwrap());
        }
        expected_start = sealer.reserved();
        // "Crash": drop without any shutdown step.
    }
    let file = fs::read_to_string(tx.path(layout::SEQ)).unwrap();
    assert!(
        file.contains(&format!("\nreserved {expected_start}\n")),
        "{file}"
    );
    assert!(expected_start >= 4 * 5);
}

#[test]
fn a_failed_reservation_stops_sealing_instead_of_reusing() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, _) = pair(tmp.path(), options(2, 100));
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    sealer.seal("t/a", b"", false).unwrap();
    sealer.seal("t/a", b"", false).unwrap();
    // The next block cannot be written (a directory blocks the temporary file): sealing fails,
    // and keeps failing, without using number 2.
    let blocker = tx.path("state/.seq.tmp");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), b"").unwrap();
    for _ in 0..3 {
        let err = sealer.seal("t/a", b"", false).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert_eq!(sealer.next_seq(), 2);
        assert_eq!(tx.reserved_sequence().unwrap(), 2);
    }
    fs::remove_dir_all(&blocker).unwrap();
    let m = sealer.seal("t/a", b"", false).unwrap();
    assert_eq!(seq_of(&m), 2);
    assert_eq!(tx.reserved_sequence().unwrap(), 4);
}

#[test]
fn the_end_of_the_sequence_space_is_exhaustion_not_wraparound() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, _) = pair(tmp.path(), options(10, 100));
    tx.raise_sequence_floor(u64::MAX - 3).unwrap();
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    assert_eq!(sealer.reserved(), u64::MAX);
    for s in u64::MAX - 3..u64::MAX {
        assert_eq!(seq_of(&sealer.seal("t/a", b"", false).unwrap()), s);
    }
    let err = sealer.seal("t/a", b"", false).unwrap_err();
    assert_eq!(err.core(), Some(Error::SequenceExhausted));
    drop(sealer);
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    assert_eq!(
        sealer.seal("t/a", b"", false).unwrap_err().core(),
        Some(Error::SequenceExhausted)
    );
}

#[test]
fn restarted_subscriber_rejects_replays_and_accepts_new_and_late_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = pair(tmp.path(), options(8, 1000));
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    let msgs: Vec<Vec<u8>> = (0..10u8)
        .map(|i| sealer.seal("t/a", &[i], false).unwrap())
        .collect();
    {
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        // Deliver 0..=7 except 5 (late, still in flight).
        for (i, m) in msgs.iter().enumerate().take(8) {
            if i != 5 {
                assert_eq!(opener.open("t/a", m).unwrap().payload, [i as u8]);
            }
        }
    }
    let mut opener = rx.opener(OpenPolicy::default()).unwrap();
    for (i, m) in msgs.iter().enumerate().take(8) {
        if i != 5 {
            assert_eq!(
                opener.open("t/a", m).unwrap_err().core(),
                Some(Error::Replay),
                "{i}"
            );
        }
    }
    let dup = Delivery {
        duplicate: true,
        ..Delivery::default()
    };
    assert_eq!(
        opener
            .open_delivered("t/a", &msgs[0], &dup)
            .unwrap_err()
            .core(),
        Some(Error::Duplicate)
    );
    // The late one and the new ones are accepted.
    assert!(opener.open("t/a", &msgs[5]).is_ok());
    assert!(opener.open("t/a", &msgs[9]).is_ok());
    assert!(opener.open("t/a", &msgs[8]).is_ok());
    // A sender restart skips the rest of its block: the subscriber just sees a gap.
    drop(sealer);
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    let after = sealer.seal("t/a", b"after restart", false).unwrap();
    assert_eq!(seq_of(&after), 16);
    assert_eq!(
        opener.open("t/a", &after).unwrap().payload,
        b"after restart"
    );
    drop(opener);
    let mut opener = rx.opener(OpenPolicy::default()).unwrap();
    for m in msgs.iter().chain([&after]) {
        assert!(opener.open("t/a", m).is_err());
    }
    assert_eq!(opener.window_count(), 1);
}

#[test]
fn batches_compaction_and_many_windows_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = pair(tmp.path(), options(64, 25));
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    let msgs: Vec<(String, Vec<u8>)> = (0..200u32)
        .map(|i| {
            let topic = format!("t/{}", i % 7);
            let m = sealer.seal(&topic, &i.to_be_bytes(), false).unwrap();
            (topic, m)
        })
        .collect();
    let mut delivered = 0;
    for chunk in msgs.chunks(30) {
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        for (t, m) in chunk {
            opener.open_uncommitted(t, m, &Delivery::default()).unwrap();
        }
        opener.commit().unwrap();
        delivered += chunk.len();
        drop(opener);
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        assert_eq!(opener.window_count(), 7.min(delivered));
        for (t, m) in &msgs[..delivered] {
            assert!(opener.open(t, m).is_err());
        }
    }
    // The journal was folded into the snapshot along the way.
    let log_len = fs::metadata(rx.path(layout::REPLAY_LOG)).unwrap().len();
    assert!(log_len < 30 * 60, "log not compacted: {log_len} bytes");
}

#[test]
fn uncommitted_acceptances_are_lost_not_replayable_and_torn_appends_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = pair(tmp.path(), options(64, 1000));
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    let m: Vec<Vec<u8>> = (0..4u8)
        .map(|i| sealer.seal("t/a", &[i], false).unwrap())
        .collect();
    {
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        opener.open("t/a", &m[0]).unwrap();
        // Opened but never committed (crash before commit): not delivered, so not persisted.
        opener
            .open_uncommitted("t/a", &m[1], &Delivery::default())
            .unwrap();
    }
    // Simulate a torn append: half a record after the last committed one.
    let log = rx.path(layout::REPLAY_LOG);
    let mut bytes = fs::read(&log).unwrap();
    let committed = bytes.len();
    let record = bytes[8..].to_vec();
    bytes.extend_from_slice(&record[..record.len() / 2]);
    fs::write(&log, &bytes).unwrap();
    let mut opener = rx.opener(OpenPolicy::default()).unwrap();
    assert_eq!(
        fs::metadata(&log).unwrap().len() as usize,
        committed,
        "torn tail truncated"
    );
    assert_eq!(
        opener.open("t/a", &m[0]).unwrap_err().core(),
        Some(Error::Replay)
    );
    assert!(
        opener.open("t/a", &m[1]).is_ok(),
        "never delivered, so accepted now"
    );
    assert!(opener.open("t/a", &m[2]).is_ok());
}

/// Bounded replay state (mqseal-v2.md 7.3, keystore.md 8): with small caps the opener evicts,
/// and after restarts — from the log alone, then from a snapshot — it still refuses every
/// message it ever delivered, holds no more windows than its caps, and compacts only once the
/// log holds as many records as it has windows.
#[test]
fn bounded_windows_and_their_floors_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(64, 5);
    opts.replay_limits = mqseal::ReplayLimits {
        per_sender: 8,
        total: 8,
    };
    let (tx, rx) = pair(tmp.path(), opts);
    let mut sealer = tx.sealer(Profile::Signed).unwrap();
    let msgs: Vec<(String, Vec<u8>)> = (0..120u32)
        .map(|i| {
            let topic = format!("t/{}", i % 20);
            let m = sealer.seal(&topic, &i.to_be_bytes(), false).unwrap();
            (topic, m)
        })
        .collect();
    let tx_fp = tx.fingerprint();
    for (round, chunk) in msgs.chunks(24).enumerate() {
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        for (t, m) in chunk {
            opener.open(t, m).unwrap();
        }
        let floor = opener.opener().replay_floor(&tx_fp, Profile::Signed);
        assert!(floor.is_some(), "20 topics under a cap of 8 evict");
        assert!(opener.window_count() <= 8);
        drop(opener);
        // Restarted: the same floor, no more windows than the cap, every delivered message
        // refused (replay on a held window, too_old below the floor).
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        assert_eq!(
            opener.opener().replay_floor(&tx_fp, Profile::Signed),
            floor,
            "round {round}"
        );
        assert!(opener.window_count() <= 8);
        let delivered = (round + 1) * 24;
        for (t, m) in &msgs[..delivered] {
            let err = opener.open(t, m).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Core(Error::Replay) | StoreError::Core(Error::TooOld)
                ),
                "{err:?}"
            );
        }
    }
    // compact_after is 5 but the opener holds 8 windows: compaction waited for 8 records, so
    // the log never held more than 8 + 1 records.
    let log_len = fs::metadata(rx.path(layout::REPLAY_LOG)).unwrap().len();
    assert!(log_len < 9 * 64, "log {log_len} bytes");
}
