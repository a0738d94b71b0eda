//! What a refused message costs the receiver, per attacker (issue 12's cost-of-attack table, in
//! part): CPU per refusal, the refusal it gets, and the receiver's resident memory growth over
//! the run, all against the cost of opening one legitimate message in the same run.
//!
//! ```sh
//! cargo run --release -p mqseal --example attack_cost -- 200000
//! ```
//! One in-process [`Opener`] (no broker, no keystore): the receiver side only. Attackers:
//!
//! - **key-less outsider**: junk carrying a trusted sender's id and the epoch (both visible on
//!   the wire) and a made-up key id, on the receiver's known topic;
//! - **malicious broker replaying real traffic**: messages the receiver already accepted;
//! - **trusted-but-malicious sender**: its own real signature replaced (fresh numbers), so the
//!   signature must be checked;
//! - **outsider on ever new topics**: junk spread over distinct topics (the state-growth case
//!   issue 12 reproduced on the persistent opener).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::Instant;

use mqseal::{Error, Identity, OpenPolicy, Opener, Profile, SealOptions, Sealer, TreeKey};

const TOPIC: &str = "plant/7/temp";
const T: u64 = 1_800_000_000;

/// Resident set size of this process in KiB (Linux), 0 if unknown.
fn rss_kib() -> u64 {
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

struct Row {
    attacker: &'static str,
    refused_as: Error,
    ns_per_message: f64,
    rss_growth_kib: i64,
}

fn run(
    attacker: &'static str,
    opener: &mut Opener,
    messages: &[(String, Vec<u8>)],
    expect: Error,
) -> Row {
    let before = rss_kib();
    let start = Instant::now();
    for (topic, m) in messages {
        let err = black_box(opener.open(topic, m)).unwrap_err();
        assert_eq!(err, expect, "{attacker}");
    }
    let elapsed = start.elapsed().as_nanos() as f64;
    Row {
        attacker,
        refused_as: expect,
        ns_per_message: elapsed / messages.len() as f64,
        rss_growth_kib: rss_kib() as i64 - before as i64,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let sensor = Identity::from_seed([1; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [2; 32])?;
    let mut sealer = Sealer::new(sensor.clone(), Profile::Signed, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::with_policy(OpenPolicy::default());
    opener.trust_sender(sensor.public());
    opener.add_key(key);
    let opts = SealOptions::at(false, T);

    // The legitimate reference, in the same run: opening fresh real messages.
    let legit: Vec<Vec<u8>> = (0..count.min(20_000))
        .map(|_| sealer.seal_with(TOPIC, b"21.5", &opts).unwrap())
        .collect();
    let start = Instant::now();
    for m in &legit {
        black_box(opener.open(TOPIC, m)).unwrap();
    }
    let legit_ns = start.elapsed().as_nanos() as f64 / legit.len() as f64;

    let real = &legit[0];
    let hl = mqseal::inspect(real)?.encoded_len();
    // Key-less junk: the real header with another key id, a random-looking body.
    let junk: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| {
            let mut m = real.clone();
            m[6..10].copy_from_slice(&(i as u32).to_be_bytes());
            m[hl] ^= i as u8;
            (TOPIC.to_string(), m)
        })
        .collect();
    // Replays of accepted messages still inside the window (older ones are too_old, cheaper).
    let recent = &legit[legit.len().saturating_sub(1_000)..];
    let replays: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (TOPIC.to_string(), recent[i % recent.len()].clone()))
        .collect();
    // A trusted sender's fresh numbers with a broken signature (full verification each).
    let forged_n = count.min(20_000);
    let forged: Vec<(String, Vec<u8>)> = (0..forged_n)
        .map(|_| {
            let mut m = sealer.seal_with(TOPIC, b"21.5", &opts).unwrap();
            let last = m.len() - 1;
            m[last] ^= 1;
            (TOPIC.to_string(), m)
        })
        .collect();
    // Key-less junk on ever new topics (topic key derived, never cached).
    let topics: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("plant/junk/{i}"), junk[i].1.clone()))
        .collect();

    let rows = [
        run(
            "key-less outsider (known topic)",
            &mut opener,
            &junk,
            Error::KeyNotFound,
        ),
        run(
            "key-less outsider (a new topic each time)",
            &mut opener,
            &topics,
            Error::KeyNotFound,
        ),
        run(
            "broker replaying accepted messages",
            &mut opener,
            &replays,
            Error::Replay,
        ),
        run(
            "trusted sender, broken signatures",
            &mut opener,
            &forged,
            Error::BadSignature,
        ),
    ];
    println!("opening one legitimate signed 4-byte message: {legit_ns:.0} ns (reference)");
    println!(
        "{:<45} {:>10} {:>12} {:>9} {:>14}",
        "attacker", "messages", "ns/message", "× legit", "RSS growth KiB"
    );
    for (r, n) in rows.iter().zip([count, count, count, forged_n]) {
        println!(
            "{:<45} {:>10} {:>12.0} {:>9.3} {:>14}   ({})",
            r.attacker,
            n,
            r.ns_per_message,
            r.ns_per_message / legit_ns,
            r.rss_growth_kib,
            r.refused_as.name()
        );
    }
    Ok(())
}
