//! The key-less and replay rows of issue 12's cost-of-attack table through the keystore's
//! [`PersistentOpener`] (replay windows journalled to disk before delivery): CPU per refused
//! message, the receiver's resident memory growth, what the refusals wrote to the journal, and
//! the legitimate throughput that survives the flood — in one run.
//!
//! ```sh
//! cargo run --release -p mqseal-store --example attack_cost_store -- 1000000 1.0
//! ```
//! Arguments: messages per attack (default 1 000 000; the 65 535-byte topic runs a twentieth),
//! seconds per throughput phase (default 1.0).
//!
//! Each row runs in a process of its own (the example runs itself once per row) and uses a fresh
//! store in a temporary directory (the system's temp dir: a real disk
//! here, so `fdatasync` costs what it costs) whose opener holds the root key `#`, trusts
//! `sensor` (signed) and has accepted 1 000 of its messages on `plant/7/temp`. Legitimate
//! messages are opened with `open_uncommitted` and committed (one `fdatasync`) every 64, the
//! batch use the keystore documents; refused messages never reach a commit.
//!
//! **Throughput under attack**: as in `crates/mqseal/examples/attack_cost.rs`, a legitimate and
//! an attacking thread feed one bounded channel (1 024) that one receiver drains in arrival
//! order; the channel hands free slots to the two blocked senders in turn (about 1:1).
//!
//! The rows of trusted senders (windows on ever-new topics) wait for bounded replay windows and
//! are measured in the core example only. Outcomes are asserted, timings are not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mqseal::{
    Delivery, Error, Identity, MAX_TOPIC_LEN, MAX_TOPIC_LEVELS, OpenPolicy, Profile, SealOptions,
    Sealer, TreeKey,
};
use mqseal_store::{HeldKey, PersistentOpener, Store, TrustedSender, layout};

const TOPIC: &str = "plant/7/temp";
const T: u64 = 1_800_000_000;
const WARM: usize = 1_000;
const CHANNEL: usize = 1_024;
const COMMIT_EVERY: usize = 64;

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Topics shared (a 65 535-byte topic is not copied per message).
type Pool = Vec<(Arc<str>, Vec<u8>)>;

/// The `i`-th message of an attack.
type Make = Box<dyn Fn(usize) -> (Arc<str>, Vec<u8>)>;

struct World {
    key: TreeKey,
    sensor: Identity,
    warm: Vec<Vec<u8>>,
    legit: Vec<Vec<u8>>,
}

/// A fresh store under `dir` and its opener, with sensor's warm-up messages accepted.
fn receiver(world: &World, dir: &Path) -> (Store, PersistentOpener) {
    let store = Store::create(dir, "receiver").unwrap();
    let mut opener = store.opener(OpenPolicy::default()).unwrap();
    opener
        .set_senders(vec![TrustedSender {
            public: world.sensor.public(),
            group_mac: Vec::new(),
        }])
        .unwrap();
    opener.add_key(&HeldKey {
        key: world.key.clone(),
        not_after: None,
        issuer: None,
    });
    for m in &world.warm {
        opener
            .open_uncommitted(TOPIC, m, &Delivery::default())
            .unwrap();
    }
    opener.commit().unwrap();
    (store, opener)
}

fn refusal(got: mqseal_store::Result<mqseal::Opened>) -> Error {
    match got {
        Err(e) => e
            .core()
            .unwrap_or_else(|| panic!("not a core refusal: {e}")),
        Ok(_) => panic!("an attacking message was accepted"),
    }
}

/// Key-less junk: `real`'s header (a trusted sender id, the epoch) with a made-up key id.
fn junk(real: &[u8], i: usize) -> Vec<u8> {
    let mut m = real.to_vec();
    let made_up = (i as u32 | 1) ^ u32::from_be_bytes(m[6..10].try_into().unwrap());
    m[6..10].copy_from_slice(&made_up.to_be_bytes());
    m
}

fn deep_long_topic(i: usize) -> String {
    let levels = MAX_TOPIC_LEVELS;
    let per_level = (MAX_TOPIC_LEN - (levels - 1)) / levels;
    let mut parts: Vec<String> = (0..levels).map(|_| "x".repeat(per_level)).collect();
    parts[0].replace_range(..8, &format!("{i:08x}"));
    let extra = MAX_TOPIC_LEN - (levels - 1) - per_level * levels;
    parts[levels - 1].push_str(&"y".repeat(extra));
    parts.join("/")
}

#[derive(Clone, Copy)]
enum Flood {
    Pool,
    ReplayRecent,
}

struct Attack {
    name: &'static str,
    expect: Error,
    n: usize,
    make: Make,
    flood: Flood,
}

enum Item {
    Legit(usize),
    Attack(usize),
}

fn phase(world: &World, attack: Option<(&Attack, &Pool)>, secs: f64) -> (f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let (_store, mut opener) = receiver(world, &tmp.path().join("rx"));
    let (tx, rx) = mpsc::sync_channel::<Item>(CHANNEL);
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let (mut legit, mut attacking, mut pending) = (0usize, 0usize, 0usize);
    std::thread::scope(|s| {
        let legit_tx = tx.clone();
        let stop_ref = &stop;
        s.spawn(move || {
            for i in 0..world.legit.len() {
                if stop_ref.load(Ordering::Relaxed) || legit_tx.send(Item::Legit(i)).is_err() {
                    return;
                }
            }
        });
        if let Some((a, pool)) = attack {
            let flood = a.flood;
            let attack_tx = tx.clone();
            let (stop, opened) = (&stop, &opened);
            s.spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let j = match flood {
                        Flood::Pool => i % pool.len(),
                        Flood::ReplayRecent => {
                            let done = opened.load(Ordering::Relaxed);
                            WARM + done - (1 + i % WARM)
                        }
                    };
                    if attack_tx.send(Item::Attack(j)).is_err() {
                        return;
                    }
                    i = i.wrapping_add(1);
                }
            });
        }
        drop(tx);
        let start = Instant::now();
        let deadline = Duration::from_secs_f64(secs);
        while start.elapsed() < deadline {
            let Ok(item) = rx.recv_timeout(Duration::from_millis(100)) else {
                eprintln!("warning: the legitimate pool ran out");
                break;
            };
            match item {
                Item::Legit(i) => {
                    black_box(opener.open_uncommitted(
                        TOPIC,
                        &world.legit[i],
                        &Delivery::default(),
                    ))
                    .unwrap();
                    pending += 1;
                    if pending == COMMIT_EVERY {
                        opener.commit().unwrap();
                        pending = 0;
                        legit += COMMIT_EVERY;
                        opened.store(legit, Ordering::Relaxed);
                    }
                }
                Item::Attack(j) => {
                    let (a, pool) = attack.unwrap();
                    let got = match a.flood {
                        Flood::Pool => {
                            let (topic, m) = &pool[j];
                            opener.open_uncommitted(topic, m, &Delivery::default())
                        }
                        Flood::ReplayRecent => {
                            let m = if j < WARM {
                                &world.warm[j]
                            } else {
                                &world.legit[j - WARM]
                            };
                            opener.open_uncommitted(TOPIC, m, &Delivery::default())
                        }
                    };
                    assert_eq!(refusal(black_box(got)), a.expect, "{}", a.name);
                    attacking += 1;
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        if legit + pending >= world.legit.len() {
            eprintln!("warning: the legitimate pool ran out: raise it for this machine");
        }
        (legit as f64 / elapsed, attacking as f64 / elapsed)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let secs: f64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1.0);
    // Internal: `--row K REFERENCE_NS` runs attack K alone, in its own process (see the core
    // example): memory freed by one row cannot hide another's growth.
    let row: Option<(usize, f64)> = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--row"), Some(k), Some(r)) => Some((k.parse()?, r.parse()?)),
        _ => None,
    };
    let load_before = load_average();
    let key = TreeKey::from_secret("#", 1, [2; 32])?;
    let sensor = Identity::from_seed([1; 32]);
    let opts = SealOptions::at(false, T);
    let mut s = Sealer::new(sensor.clone(), Profile::Signed, 0);
    s.add_key(key.clone());
    let warm: Vec<Vec<u8>> = (0..WARM)
        .map(|_| s.seal_with(TOPIC, b"21.5", &opts).unwrap())
        .collect();
    let legit_n = ((40_000.0 * secs) as usize).max(2_000);
    let legit: Vec<Vec<u8>> = (0..legit_n)
        .map(|_| s.seal_with(TOPIC, b"21.5", &opts).unwrap())
        .collect();
    let world = World {
        key,
        sensor,
        warm,
        legit,
    };

    // The reference: sensor's fresh messages, committed every 64.
    let reference = || -> Result<f64, Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let (_store, mut opener) = receiver(&world, &tmp.path().join("rx"));
        let n = world.legit.len().min(20_000);
        let start = Instant::now();
        for chunk in world.legit[..n].chunks(COMMIT_EVERY) {
            for m in chunk {
                black_box(opener.open_uncommitted(TOPIC, m, &Delivery::default())).unwrap();
            }
            opener.commit().unwrap();
        }
        Ok(start.elapsed().as_nanos() as f64 / n as f64)
    };

    let real = std::rc::Rc::new(world.warm[0].clone());
    let mut attacks = Vec::new();
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider: a trusted sender's id and the epoch, a made-up key id, the known topic",
        expect: Error::KeyNotFound,
        n: count,
        make: Box::new(move |i| (TOPIC.into(), junk(&r, i))),
        flood: Flood::Pool,
    });
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a new 3-level topic each time",
        expect: Error::KeyNotFound,
        n: count,
        make: Box::new(move |i| (format!("plant/junk/{i}").into(), junk(&r, i))),
        flood: Flood::Pool,
    });
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a never-seen 32-level topic of short levels",
        expect: Error::KeyNotFound,
        n: count,
        make: Box::new(move |i| {
            let mut t = format!("{i}");
            for _ in 1..MAX_TOPIC_LEVELS {
                t.push_str("/a");
            }
            (t.into(), junk(&r, i))
        }),
        flood: Flood::Pool,
    });
    let deep: std::rc::Rc<Vec<Arc<str>>> =
        std::rc::Rc::new((0..64).map(|i| deep_long_topic(i).into()).collect());
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a never-seen 32-level topic of 65 535 bytes",
        expect: Error::KeyNotFound,
        n: (count / 20).max(100),
        make: Box::new(move |i| (deep[i % deep.len()].clone(), junk(&r, i))),
        flood: Flood::Pool,
    });
    let warm = std::rc::Rc::new(world.warm.clone());
    attacks.push(Attack {
        name: "malicious broker replaying accepted messages (half with a broken signature)",
        expect: Error::Replay,
        n: count,
        make: Box::new(move |i| {
            let mut m = warm[i % WARM].clone();
            if i % 2 == 1 {
                let last = m.len() - 1;
                m[last - 3] ^= 0x10;
            }
            (TOPIC.into(), m)
        }),
        flood: Flood::ReplayRecent,
    });

    let Some((k, reference)) = row else {
        let reference = reference()?;
        let count_attacks = attacks.len();
        drop(attacks);
        println!(
            "| attacker | messages | refused as | ns per refused message | × opening a legitimate one | RSS growth | journal bytes written | windows before → after | legit opened/s alone | legit opened/s under attack | ratio | attacking messages handled/s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for k in 0..count_attacks {
            let out = std::process::Command::new(std::env::current_exe()?)
                .args([
                    count.to_string(),
                    secs.to_string(),
                    "--row".to_string(),
                    k.to_string(),
                    reference.to_string(),
                ])
                .stderr(std::process::Stdio::inherit())
                .output()?;
            assert!(out.status.success(), "row {k} failed");
            print!("{}", String::from_utf8(out.stdout)?);
        }
        println!();
        println!(
            "load average before {load_before}, after {}; reference: opening one of sensor's signed messages through the persistent opener, committed every {COMMIT_EVERY}: {reference:.0} ns",
            load_average()
        );
        return Ok(());
    };

    let attack = &attacks[k];
    let messages: Pool = (0..attack.n).map(&attack.make).collect();
    let tmp = tempfile::tempdir()?;
    let (store, mut opener) = receiver(&world, &tmp.path().join("rx"));
    let log = store.path(layout::REPLAY_LOG);
    let (log_before, windows_before) = (std::fs::metadata(&log)?.len(), opener.window_count());
    // RSS counted after the first 1 % (at least 100), which fault in the code path.
    let warm_up = (messages.len() / 100).max(100).min(messages.len());
    let mut before = rss_kib();
    let start = Instant::now();
    for (i, (topic, m)) in messages.iter().enumerate() {
        if i == warm_up {
            before = rss_kib();
        }
        let got = black_box(opener.open(topic, m));
        assert_eq!(refusal(got), attack.expect, "{}", attack.name);
    }
    let ns = start.elapsed().as_nanos() as f64 / messages.len() as f64;
    let rss = rss_kib() - before;
    opener.commit()?;
    let written = std::fs::metadata(&log)?.len() - log_before;
    assert_eq!(written, 0, "refusals wrote to the journal");
    let windows_after = opener.window_count();
    assert_eq!(windows_after, windows_before);
    drop(opener);
    drop(store);
    let (alone, _) = phase(&world, None, secs);
    let (attacked, attack_rate) = phase(&world, Some((attack, &messages)), secs);
    println!(
        "| {} | {} | `{}` | {:.0} | {:.3} | {} KiB | {} | {} → {} | {:.0} | {:.0} | {:.2} | {:.0} |",
        attack.name,
        messages.len(),
        attack.expect.name(),
        ns,
        ns / reference,
        rss,
        written,
        windows_before,
        windows_after,
        alone,
        attacked,
        attacked / alone,
        attack_rate
    );
    Ok(())
}
