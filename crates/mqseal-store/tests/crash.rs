//! SIGKILL at random points: a real sealing process (and a real opening process) is killed with
//! `kill -9` over and over and restarted on the same store.
//!
//! Shown: no (sender, topic, epoch, seq) — i.e. no (key, nonce) pair — ever repeats across all
//! runs; each restart resumes above everything used before; a subscriber that persisted its
//! window accepts every later message and still rejects replays of earlier ones; a killed
//! subscriber never accepts a message twice after restarting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use mqseal::{Error, Identity, OpenPolicy, Profile};
use mqseal_store::{Roles, Store, StoreOptions};

const BIN: &str = env!("CARGO_BIN_EXE_mqseal-store-crashtest");

/// Deterministic xorshift64*, so a failing run can be reproduced.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn setup(dir: &Path) -> (Store, Store) {
    let tx = Store::create_with(
        dir.join("tx"),
        "tx",
        Identity::from_seed([1; 32]),
        StoreOptions::default(),
    )
    .unwrap();
    let rx = Store::create_with(
        dir.join("rx"),
        "rx",
        Identity::from_seed([2; 32]),
        StoreOptions::default(),
    )
    .unwrap();
    tx.trust_line(&rx.public_line(), Roles::SENDER).unwrap();
    rx.trust_line(&tx.public_line(), Roles::BOTH).unwrap();
    tx.create_key("crash/#", 0).unwrap();
    let g = tx.issue_grant("crash/#", "rx").unwrap();
    rx.accept_grant_message(&g.topic, &g.payload, 0).unwrap();
    (tx, rx)
}

/// Reads complete lines (ending in '\n') until `stop` says so or EOF; a torn last line (the
/// process died while printing it) is dropped.
fn read_lines(out: &mut impl BufRead, lines: &mut Vec<String>, mut stop: impl FnMut(&str) -> bool) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if out.read_until(b'\n', &mut buf).unwrap() == 0 || !buf.ends_with(b"\n") {
            return;
        }
        let line = String::from_utf8(buf[..buf.len() - 1].to_vec()).unwrap();
        let done = stop(&line);
        lines.push(line);
        if done {
            return;
        }
    }
}

#[test]
fn killed_sealer_never_reuses_a_nonce_and_subscribers_keep_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = setup(tmp.path());
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut history: Vec<(String, Vec<u8>)> = Vec::new();
    let mut used: HashSet<(String, u32, u64)> = HashSet::new();
    let mut seqs: HashSet<u64> = HashSet::new();
    let mut kills = 0;
    let mut highest: Option<u64> = None;
    for run in 0..24u64 {
        // Small blocks so that kills often land inside a reservation write.
        let block = [1u64, 2, 5, 16][(run % 4) as usize];
        let mut child = Command::new(BIN)
            .args(["seal", tx.dir().to_str().unwrap(), &block.to_string(), "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain stdout on a thread so the sealer never blocks on a full pipe; kill it once it
        // has sealed at least one message, after a random extra delay.
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let reader = thread::spawn(move || {
            let mut lines = Vec::new();
            read_lines(&mut BufReader::new(stdout), &mut lines, |_| {
                let _ = first_tx.send(());
                false
            });
            lines
        });
        if first_rx.recv().is_err() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("run {run}: sealer printed nothing: {err}");
        }
        thread::sleep(Duration::from_micros(rng.below(40_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "run {run}: the sealer was not killed");
        kills += 1;
        let lines = reader.join().unwrap();
        assert!(!lines.is_empty());

        // The reservation file survived the kill intact and covers every number used.
        let reserved = tx.reserved_sequence().unwrap();
        let mut run_msgs = Vec::new();
        for line in &lines {
            let (topic, hex_msg) = line.split_once(' ').unwrap();
            let sealed = hex::decode(hex_msg).unwrap();
            let h = mqseal::inspect(&sealed).unwrap();
            assert!(
                used.insert((topic.to_string(), h.epoch, h.seq)),
                "run {run}: (key, nonce) reused: {topic} seq {}",
                h.seq
            );
            assert!(seqs.insert(h.seq), "run {run}: sequence {} reused", h.seq);
            assert!(
                h.seq < reserved,
                "run {run}: {} used beyond the reservation {reserved}",
                h.seq
            );
            run_msgs.push((topic.to_string(), sealed, h.seq));
        }
        // Each restart resumes strictly above everything any earlier run used.
        let first = run_msgs[0].2;
        if let Some(h) = highest {
            assert!(first > h, "run {run}: restarted at {first}, not above {h}");
        }
        highest = Some(run_msgs.iter().map(|m| m.2).max().unwrap());

        // A subscriber restarted from its persisted state accepts every later message…
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        for (topic, sealed, seq) in &run_msgs {
            let opened = opener
                .open_uncommitted(topic, sealed, &mqseal::Delivery::default())
                .unwrap_or_else(|e| panic!("run {run}: new message seq {seq} refused: {e}"));
            assert_eq!(opened.seq, *seq);
        }
        opener.commit().unwrap();
        history.extend(run_msgs.into_iter().map(|(t, m, _)| (t, m)));
        drop(opener);
        // …and, restarted again, rejects replays of earlier ones (a sample across all runs).
        let mut opener = rx.opener(OpenPolicy::default()).unwrap();
        for _ in 0..8 {
            let (topic, sealed) = &history[rng.below(history.len() as u64) as usize];
            let err = opener.open(topic, sealed).unwrap_err().core();
            assert!(
                matches!(err, Some(Error::Replay | Error::TooOld)),
                "run {run}: replay accepted ({err:?})"
            );
        }
    }
    assert!(kills >= 20);
    assert_eq!(used.len(), history.len());
    eprintln!("{kills} kills, {} messages, no nonce reused", history.len());
}

#[test]
fn killed_subscriber_never_accepts_a_message_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, rx) = setup(tmp.path());
    // 240 messages on 4 topics, written as the broker would redeliver them after each restart.
    let file = tmp.path().join("messages");
    {
        let mut sealer = tx.sealer(Profile::Signed).unwrap();
        let text: String = (0..240u32)
            .map(|i| {
                let topic = format!("crash/{}", i % 4);
                let m = sealer.seal(&topic, &i.to_be_bytes(), false).unwrap();
                format!("{topic} {}\n", hex::encode(m))
            })
            .collect();
        std::fs::write(&file, text).unwrap();
    }
    let mut rng = Rng(0x5eed_cafe_f00d_0002);
    let mut accepted: HashMap<usize, u32> = HashMap::new();
    let mut kills = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        let mut child = Command::new(BIN)
            .args(["open", rx.dir().to_str().unwrap(), file.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let last = runs > 20;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        if !last {
            // Kill after a random number of new acceptances (plus a random short delay), or
            // at a random point before the first.
            let target = rng.below(12);
            let mut new_oks = 0;
            if target > 0 {
                read_lines(&mut out, &mut lines, |l| {
                    new_oks += u64::from(l.starts_with("ok "));
                    new_oks >= target
                });
            }
            thread::sleep(Duration::from_micros(rng.below(3_000)));
            child.kill().unwrap(); // SIGKILL on Unix
            kills += 1;
        }
        // Whatever it printed before dying (or everything, in the last run).
        read_lines(&mut out, &mut lines, |_| false);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!last || status.success(), "subscriber failed: {err}");
        for line in lines {
            let mut f = line.split(' ');
            let (kind, n, what) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let n: usize = n.parse().unwrap();
            match kind {
                "ok" => {
                    let count = accepted.entry(n).or_default();
                    *count += 1;
                    assert_eq!(*count, 1, "message {n} accepted twice (after a restart)");
                }
                "err" => assert_eq!(what, "replay", "message {n} refused with {what}"),
                _ => panic!("bad line {line}"),
            }
        }
        if last {
            break;
        }
    }
    // Every message was accepted exactly once, except at most one per kill: accepted and made
    // durable, but the process died before it could print "ok" (lost to the observer, never
    // replayed).
    let lost = 240 - accepted.len();
    assert!(lost <= kills, "{lost} messages lost with {kills} kills");
    assert!(kills >= 20);
    eprintln!(
        "{kills} kills, {} accepted once, {lost} accepted but unreported",
        accepted.len()
    );
}
