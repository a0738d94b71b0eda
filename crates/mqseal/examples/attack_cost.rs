//! What an attack costs the receiver, per attacker (issue 12's cost-of-attack table): the CPU
//! per attacking message, the refusal it gets, the receiver's resident memory growth over the
//! run, and the legitimate throughput that survives while the attack runs at full speed — all
//! in one run, against the cost of opening one legitimate message in the same run.
//!
//! ```sh
//! cargo run --release -p mqseal --example attack_cost -- 1000000 1.0
//! ```
//! Arguments: messages per cheap attack (default 1 000 000; attacks that cost a signature
//! verification, a sealed message each or a 64 KiB topic run a fraction of it, printed), and the
//! seconds of each throughput phase (default 1.0).
//!
//! One in-process receiver ([`Opener`]; no broker, no keystore) holding the root key `#` (so a
//! deep topic costs it the whole derivation: the worst case), trusting `sensor` (signed, the
//! legitimate traffic on `plant/7/temp`), `rogue` (signed: a trusted sender turned malicious)
//! and `alice` (signed, and group-mac on `meter/#`). Every row starts from a fresh receiver that
//! has accepted 1 000 of sensor's messages, in a process of its own (the example runs itself
//! once per row): its RSS growth is that process's resident memory growth over the sequential
//! run of the row's messages (built beforehand; counted after the first 1 %, which fault in the
//! code path), so memory freed by another row cannot hide it.
//!
//! **Throughput under attack**: a legitimate thread (sensor's pre-sealed messages) and an
//! attacker thread (its messages, pre-built and cycled, as fast as the channel takes them) feed
//! one bounded channel (1 024 messages: the socket buffer) that one receiver drains in arrival
//! order; legitimate messages opened per second, without the attacker and then with it, each
//! phase on a fresh receiver. On a 2-vCPU machine the attacker thread, the legitimate thread
//! and the receiver share the two vCPUs (a real attacker's CPU is elsewhere).
//!
//! The channel hands its free slots to the two blocked senders in turn, so the attacker gets
//! about one message in per legitimate one: the ratio then says what a 1:1 mix costs. The last
//! column says how many attacking messages per second the receiver would need to be sent to
//! spend half its time on them (0.5 s divided by the sequential cost), whatever the channel.
//!
//! The example asserts every outcome (refusal codes, accepted messages), not any timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mqseal::{
    Error, Identity, MAX_TOPIC_LEN, MAX_TOPIC_LEVELS, OpenPolicy, Opener, Profile, SealOptions,
    Sealer, TreeKey,
};

const TOPIC: &str = "plant/7/temp";
const METER: &str = "meter/1/kwh";
const T: u64 = 1_800_000_000;
const WARM: usize = 1_000;
const CHANNEL: usize = 1_024;

/// Resident set size of this process in KiB (Linux), 0 if unknown.
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

/// What an attacking message must get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Refused(Error),
    Accepted,
}

impl Expect {
    fn check(self, attacker: &str, got: Result<(), Error>) {
        match (self, got) {
            (Expect::Accepted, Ok(())) => {}
            (Expect::Refused(want), Err(e)) if e == want => {}
            (_, got) => panic!("{attacker}: got {got:?}"),
        }
    }

    fn name(self) -> String {
        match self {
            Expect::Refused(e) => format!("`{}`", e.name()),
            Expect::Accepted => "accepted".to_string(),
        }
    }
}

/// Topics shared (a 65 535-byte topic is not copied per message).
type Pool = Vec<(Arc<str>, Vec<u8>)>;

/// The `i`-th message of an attack.
type Make = Box<dyn Fn(usize) -> (Arc<str>, Vec<u8>)>;

/// Where the attacker's messages come from in the throughput phase.
#[derive(Clone, Copy)]
enum Flood {
    /// Cycled through (refusals are never cached, so a cycled topic is as new as a fresh one).
    Pool,
    /// The broker replays sensor's recent messages, just behind the receiver.
    ReplayRecent,
}

struct Attack {
    name: &'static str,
    expect: Expect,
    /// How many messages the sequential run opens, and the `i`-th of them (built just before
    /// the row, dropped after it).
    n: usize,
    make: Make,
    flood: Flood,
    /// Extra receiver set-up (e.g. the first forgery, accepted).
    prepare: Option<(String, Vec<u8>)>,
}

struct World {
    key: TreeKey,
    sensor: Identity,
    rogue: Identity,
    alice: Identity,
    warm: Vec<Vec<u8>>,
    legit: Vec<Vec<u8>>,
}

impl World {
    fn receiver(&self, prepare: Option<&(String, Vec<u8>)>) -> Opener {
        let mut opener = Opener::with_policy(OpenPolicy::default());
        opener.add_key(self.key.clone());
        opener.trust_sender(self.sensor.public());
        opener.trust_sender(self.rogue.public());
        opener
            .trust_group_mac_sender(self.alice.public(), "meter/#")
            .unwrap();
        for m in &self.warm {
            opener.open(TOPIC, m).unwrap();
        }
        if let Some((topic, m)) = prepare {
            opener.open(topic, m).unwrap();
        }
        opener
    }
}

fn sealer(id: &Identity, profile: Profile, start: u64, key: &TreeKey) -> Sealer {
    let mut s = Sealer::new(id.clone(), profile, start);
    s.add_key(key.clone());
    s
}

/// Key-less junk: `real`'s header (a trusted sender id, the epoch) with a made-up key id.
fn junk(real: &[u8], i: usize) -> Vec<u8> {
    let mut m = real.to_vec();
    let made_up = (i as u32 | 1) ^ u32::from_be_bytes(m[6..10].try_into().unwrap());
    m[6..10].copy_from_slice(&made_up.to_be_bytes());
    m
}

/// A never-seen topic of `MAX_TOPIC_LEVELS` levels totalling `MAX_TOPIC_LEN` bytes, distinct per
/// `i` in its first level.
fn deep_long_topic(i: usize) -> String {
    let levels = MAX_TOPIC_LEVELS;
    let per_level = (MAX_TOPIC_LEN - (levels - 1)) / levels;
    let mut parts: Vec<String> = (0..levels).map(|_| "x".repeat(per_level)).collect();
    parts[0].replace_range(..8, &format!("{i:08x}"));
    let extra = MAX_TOPIC_LEN - (levels - 1) - per_level * levels;
    parts[levels - 1].push_str(&"y".repeat(extra));
    let t = parts.join("/");
    assert_eq!((t.len(), t.split('/').count()), (MAX_TOPIC_LEN, levels));
    t
}

/// Opens every message of the attack once on a fresh receiver: ns per message, RSS growth.
/// Opens every message of the attack once on a fresh receiver: ns per message (all of them)
/// and the RSS growth after the first 1 % (at least 100: the first ones fault in the code and
/// stack pages of the path, which is no per-message cost).
fn sequential(world: &World, attack: &Attack, messages: &Pool) -> (f64, i64, Opener) {
    let mut opener = world.receiver(attack.prepare.as_ref());
    let warm_up = (messages.len() / 100).max(100).min(messages.len());
    let mut before = rss_kib();
    let start = Instant::now();
    for (i, (topic, m)) in messages.iter().enumerate() {
        if i == warm_up {
            before = rss_kib();
        }
        let got = black_box(opener.open(topic, m)).map(|_| ());
        attack.expect.check(attack.name, got);
    }
    let ns = start.elapsed().as_nanos() as f64 / messages.len() as f64;
    (ns, rss_kib() - before, opener)
}

enum Item {
    Legit(usize),
    Attack(usize),
}

/// One throughput phase: legitimate messages opened per second and attacking messages handled
/// per second, over `secs`.
fn phase(world: &World, attack: Option<(&Attack, &Pool)>, secs: f64) -> (f64, f64) {
    let mut opener = world.receiver(attack.and_then(|(a, _)| a.prepare.as_ref()));
    let (tx, rx) = mpsc::sync_channel::<Item>(CHANNEL);
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let (mut legit, mut attacking) = (0usize, 0usize);
    let mut exhausted = false;
    std::thread::scope(|s| {
        let legit_tx = tx.clone();
        s.spawn(|| {
            let legit_tx = legit_tx;
            for i in 0..world.legit.len() {
                if stop.load(Ordering::Relaxed) || legit_tx.send(Item::Legit(i)).is_err() {
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
                        // The recent messages the receiver accepted: sensor's warm ones, then
                        // the live ones just behind it.
                        Flood::ReplayRecent => {
                            let done = opened.load(Ordering::Relaxed);
                            let back = 1 + i % WARM.min(WARM + done);
                            WARM + done - back
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
                exhausted = true;
                break;
            };
            match item {
                Item::Legit(i) => {
                    black_box(opener.open(TOPIC, &world.legit[i])).unwrap();
                    legit += 1;
                    opened.store(legit, Ordering::Relaxed);
                }
                Item::Attack(j) => {
                    let (a, pool) = attack.unwrap();
                    let got = match a.flood {
                        Flood::Pool => {
                            let (topic, m) = &pool[j];
                            black_box(opener.open(topic, m)).map(|_| ())
                        }
                        Flood::ReplayRecent => {
                            let m = if j < WARM {
                                &world.warm[j]
                            } else {
                                &world.legit[j - WARM]
                            };
                            black_box(opener.open(TOPIC, m)).map(|_| ())
                        }
                    };
                    a.expect.check(a.name, got);
                    attacking += 1;
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        if legit == world.legit.len() {
            exhausted = true;
        }
        if exhausted {
            eprintln!(
                "warning: the legitimate pool ran out ({legit} opened): raise it for this machine"
            );
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
    // Internal: `--row K REFERENCE_NS` runs attack K alone (the parent runs each row in its own
    // process, so that memory freed by one row's messages does not hide the next row's growth).
    let row: Option<(usize, f64)> = match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--row"), Some(k), Some(r)) => Some((k.parse()?, r.parse()?)),
        _ => None,
    };
    let expensive = (count / 50).max(100); // a verification or a seal each
    let deep_n = (count / 20).max(100); // a 64 KiB topic each
    let load_before = load_average();

    let key = TreeKey::from_secret("#", 1, [2; 32])?;
    let sensor = Identity::from_seed([1; 32]);
    let rogue = Identity::from_seed([4; 32]);
    let alice = Identity::from_seed([5; 32]);
    let opts = SealOptions::at(false, T);

    // Sensor's traffic: the warm-up every receiver accepted, then the live stream. Sized for
    // the unattacked receiver's rate (~25 000/s here) over one phase.
    let mut s = sealer(&sensor, Profile::Signed, 0, &key);
    let warm: Vec<Vec<u8>> = (0..WARM)
        .map(|_| s.seal_with(TOPIC, b"21.5", &opts).unwrap())
        .collect();
    let legit_n = ((40_000.0 * secs) as usize).max(2_000);
    let legit: Vec<Vec<u8>> = (0..legit_n)
        .map(|_| s.seal_with(TOPIC, b"21.5", &opts).unwrap())
        .collect();
    let real = warm[0].clone();

    let world = World {
        key: key.clone(),
        sensor: sensor.clone(),
        rogue: rogue.clone(),
        alice: alice.clone(),
        warm,
        legit,
    };

    // The reference: opening sensor's fresh messages on the known topic.
    let reference = || {
        let mut opener = world.receiver(None);
        let n = world.legit.len().min(20_000);
        let start = Instant::now();
        for m in &world.legit[..n] {
            black_box(opener.open(TOPIC, m)).unwrap();
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };

    // The node-key cache on legitimate traffic: alice's group-mac messages (no signature, so the
    // derivation shows), each on a new 7-level topic under one prefix, with and without it.
    let new_topics = || {
        let mut gm = sealer(&alice, Profile::GroupMac, 0, &key);
        let msgs: Pool = (0..20_000)
            .map(|i| {
                let t = format!("meter/site/a/hall/b/{i}/kwh");
                let m = gm.seal_with(&t, b"1", &opts).unwrap();
                (t.into(), m)
            })
            .collect();
        let run = |limits: mqseal::KeyCacheLimits| {
            let mut opener = world.receiver(None);
            opener.set_key_cache_limits(limits);
            let start = Instant::now();
            for (t, m) in &msgs {
                black_box(opener.open(t, m)).unwrap();
            }
            start.elapsed().as_nanos() as f64 / msgs.len() as f64
        };
        // Alternated, best of three each: the first run also pays the page faults of the heap's
        // growth (the new topics' replay windows), later runs reuse that memory.
        let off = mqseal::KeyCacheLimits {
            topic_keys: 0,
            node_keys: 0,
        };
        let nodes_only = mqseal::KeyCacheLimits {
            topic_keys: 0,
            ..mqseal::KeyCacheLimits::DEFAULT
        };
        let mut best = [f64::MAX; 3];
        for _ in 0..3 {
            for (b, limits) in
                best.iter_mut()
                    .zip([off, nodes_only, mqseal::KeyCacheLimits::DEFAULT])
            {
                *b = b.min(run(limits));
            }
        }
        format!(
            "legitimate group-mac messages, each on a new 7-level topic under meter/site/a/hall/b (best of 3 alternated runs of 20 000): {:.0} ns per message with both caches off (7 levels derived), {:.0} ns with the node cache only (2 levels derived, 1 node cached per topic), {:.0} ns with the defaults (the topic key cached too, never hit here)",
            best[0], best[1], best[2]
        )
    };
    let real = Rc::new(real);
    let mut attacks = Vec::new();
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider: a trusted sender's id and the epoch (on the wire), a made-up key id, the known topic",
        expect: Expect::Refused(Error::KeyNotFound),
        n: count,
        make: Box::new(move |i| (TOPIC.into(), junk(&r, i))),
        flood: Flood::Pool,
        prepare: None,
    });
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a new 3-level topic each time",
        expect: Expect::Refused(Error::KeyNotFound),
        n: count,
        make: Box::new(move |i| (format!("plant/junk/{i}").into(), junk(&r, i))),
        flood: Flood::Pool,
        prepare: None,
    });
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a never-seen 32-level topic of short levels",
        expect: Expect::Refused(Error::KeyNotFound),
        n: count,
        make: Box::new(move |i| {
            let mut t = format!("{i}");
            for _ in 1..MAX_TOPIC_LEVELS {
                t.push_str("/a");
            }
            (t.into(), junk(&r, i))
        }),
        flood: Flood::Pool,
        prepare: None,
    });
    let deep: Rc<Vec<Arc<str>>> = Rc::new((0..64).map(|i| deep_long_topic(i).into()).collect());
    let r = real.clone();
    attacks.push(Attack {
        name: "key-less outsider, a never-seen 32-level topic of 65 535 bytes (2 047-byte levels)",
        expect: Expect::Refused(Error::KeyNotFound),
        n: deep_n,
        make: Box::new(move |i| (deep[i % deep.len()].clone(), junk(&r, i))),
        flood: Flood::Pool,
        prepare: None,
    });
    // Replays of accepted messages inside the window; every other one with its signature
    // broken too: still `replay`, so no signature was verified (spec 7.1 step 4).
    let warm = Rc::new(world.warm.clone());
    attacks.push(Attack {
        name: "malicious broker replaying accepted messages (half with a broken signature)",
        expect: Expect::Refused(Error::Replay),
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
        prepare: None,
    });
    // A trusted sender's fresh number whose ciphertext no longer matches its (canonical, real)
    // signature: a full verification each.
    let rogue_real = sealer(&rogue, Profile::Signed, 0, &key)
        .seal_with(TOPIC, b"21.5", &opts)
        .unwrap();
    let hl = mqseal::inspect(&rogue_real)?.encoded_len();
    attacks.push(Attack {
        name: "trusted-but-malicious sender, broken signatures (fresh number, altered ciphertext)",
        expect: Expect::Refused(Error::BadSignature),
        n: expensive,
        make: Box::new(move |i| {
            let mut m = rogue_real.clone();
            m[hl..hl + 4].copy_from_slice(&(i as u32 + 1).to_be_bytes());
            (TOPIC.into(), m)
        }),
        flood: Flood::Pool,
        prepare: None,
    });
    let mut r = sealer(&rogue, Profile::Signed, 0, &key);
    let rogue_valid: Rc<Pool> = Rc::new(
        (0..expensive.max(legit_n))
            .map(|i| {
                let t = format!("plant/rogue/{}/{i}", i % 64);
                let m = r.seal_with(&t, b"x", &opts).unwrap();
                (t.into(), m)
            })
            .collect(),
    );
    attacks.push(Attack {
        name: "trusted-but-malicious sender, valid messages on ever-new topics",
        expect: Expect::Accepted,
        n: rogue_valid.len(),
        make: Box::new(move |i| rogue_valid[i].clone()),
        flood: Flood::Pool,
        prepare: None,
    });
    // Group-mac key holder (holds `#`): forges senders (no private key needed in group-mac;
    // the sealers below use their seeds only for convenience, never for a signature).
    let mut forge_sensor = sealer(&sensor, Profile::GroupMac, 0, &key);
    let sensor_forgeries: Rc<Vec<Vec<u8>>> = Rc::new(
        (0..4_096)
            .map(|_| forge_sensor.seal_with(TOPIC, b"6", &opts).unwrap())
            .collect(),
    );
    attacks.push(Attack {
        name: "group-mac key holder forging a sender trusted for signed only",
        expect: Expect::Refused(Error::ProfileNotAllowed),
        n: count,
        make: Box::new(move |i| {
            let m = &sensor_forgeries[i % sensor_forgeries.len()];
            (TOPIC.into(), m.clone())
        }),
        flood: Flood::Pool,
        prepare: None,
    });
    let forge_alice = |opts: &SealOptions| {
        sealer(&alice, Profile::GroupMac, u64::MAX - 2, &key)
            .seal_with(METER, b"0", opts)
            .unwrap()
    };
    let first_forgery = (METER.to_string(), forge_alice(&opts));
    let alice_forgeries: Rc<Vec<Vec<u8>>> =
        Rc::new((0..4_096).map(|_| forge_alice(&opts)).collect());
    attacks.push(Attack {
        name: "group-mac key holder forging a group-mac sender at seq 2^64-2 (the first accepted, then these)",
        expect: Expect::Refused(Error::Replay),
        n: count,
        make: Box::new(move |i| {
            let m = &alice_forgeries[i % alice_forgeries.len()];
            (METER.into(), m.clone())
        }),
        flood: Flood::Pool,
        prepare: Some(first_forgery),
    });

    let count_attacks = attacks.len();
    let Some((k, reference)) = row else {
        // The parent: the reference, the node-cache note, then each row in a child process.
        let reference = reference();
        let new_topics = new_topics();
        drop(attacks);
        let mut lines = Vec::new();
        let mut notes = vec![new_topics];
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
            let text = String::from_utf8(out.stdout)?;
            for line in text.lines() {
                match line.strip_prefix("- ") {
                    Some(note) => notes.push(note.to_string()),
                    None => lines.push(line.to_string()),
                }
            }
        }
        println!(
            "load average before {load_before}, after {}; reference: opening one of sensor's signed 4-byte messages on the known topic: {reference:.0} ns",
            load_average()
        );
        println!();
        println!(
            "| attacker | messages | outcome | ns per message | × opening a legitimate one | RSS growth | legit opened/s alone | legit opened/s under attack | ratio | attacking messages handled/s | attack rate that halves legit traffic |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for l in &lines {
            println!("{l}");
        }
        println!();
        for n in &notes {
            println!("- {n}");
        }
        return Ok(());
    };

    // A child: one row.
    let attack = &attacks[k];
    let messages: Pool = (0..attack.n).map(&attack.make).collect();
    let (ns, rss, opener) = sequential(&world, attack, &messages);
    if attack.expect == Expect::Accepted {
        let (t, n) = opener.cached_key_counts();
        let limits = opener.key_cache_limits();
        println!(
            "- after {} valid messages on new topics: {t} topic keys and {n} node keys cached (limits {} and {})",
            messages.len(),
            limits.topic_keys,
            limits.node_keys
        );
        assert!(t <= limits.topic_keys && n <= limits.node_keys);
    }
    if attack.prepare.is_some() {
        // The forged 2^64-2 sits in alice's group-mac window only: her signed messages open.
        let mut opener = opener;
        let mut real = sealer(&alice, Profile::Signed, 7, &key);
        let m = real.seal_with(METER, b"real", &opts).unwrap();
        assert_eq!(opener.open(METER, &m).unwrap().profile, Profile::Signed);
        let fp = alice.fingerprint();
        assert_eq!(opener.high_water_mark(&fp, Profile::Signed), Some(7));
        assert_eq!(
            opener.high_water_mark(&fp, Profile::GroupMac),
            Some(u64::MAX - 2)
        );
        println!(
            "- after the 2^64-2 forgeries: alice's signed message (seq 7) on the same topic opened; her signed high-water mark is 7"
        );
    } else {
        drop(opener);
    }
    let (alone, _) = phase(&world, None, secs);
    let (attacked, attack_rate) = phase(&world, Some((attack, &messages)), secs);
    println!(
        "| {} | {} | {} | {:.0} | {:.3} | {} KiB | {:.0} | {:.0} | {:.2} | {:.0} | {:.0}/s |",
        attack.name,
        messages.len(),
        attack.expect.name(),
        ns,
        ns / reference,
        rss,
        alone,
        attacked,
        attacked / alone,
        attack_rate,
        // Half of the receiver's time on attacking messages: 0.5 s / (ns per message).
        0.5e9 / ns
    );
    Ok(())
}
