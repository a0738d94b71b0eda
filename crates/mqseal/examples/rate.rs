//! Seal and open rate of the Rust API for one profile and payload size: the reference the
//! Python and C bindings are compared with (`scripts/bench/bindings.sh`, BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release -p mqseal --example rate -- signed 64 4000
//! # seal_per_s=36512 open_per_s=26010 seal_into_per_s=36801 open_into_per_s=26233
//! ```
//! Same set-up as `bindings/python/bench/bench_rate.py` and `bindings/c/bench/bench_rate.c`:
//! one topic, a fixed payload, `count` messages sealed back to back, then `count` fresh
//! messages opened back to back (each after a short warm-up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::Instant;

use mqseal::{Identity, Opener, Profile, Sealer, TreeKey};

const TOPIC: &str = "bench/rate/t";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: rate signed|group-mac SIZE COUNT";
    let profile = match args.first().map(String::as_str) {
        Some("signed") => Profile::Signed,
        Some("group-mac") => Profile::GroupMac,
        _ => return Err(usage.into()),
    };
    let size: usize = args.get(1).ok_or(usage)?.parse()?;
    let count: usize = args.get(2).ok_or(usage)?.parse()?;
    let warm = (count / 10).max(1);

    let me = Identity::from_seed([1; 32]);
    let key = TreeKey::from_secret("bench/#", 1, [2; 32])?;
    let mut sealer = Sealer::new(me.clone(), profile, 0);
    sealer.add_key(key.clone());
    let mut opener = Opener::new();
    opener.trust_group_mac_sender(me.public(), "#")?;
    opener.add_key(key);
    let payload = vec![0x42u8; size];
    let options = Default::default();
    let mut buf = vec![0u8; size + mqseal::MAX_OVERHEAD_SIGNED];

    let seal_per_s = rate(warm, count, || {
        black_box(sealer.seal(TOPIC, black_box(&payload), false).unwrap());
    });
    let seal_into_per_s = rate(warm, count, || {
        black_box(
            sealer
                .seal_into(TOPIC, black_box(&payload), &options, &mut buf)
                .unwrap(),
        );
    });

    let sealed: Vec<Vec<u8>> = (0..2 * (warm + count))
        .map(|_| sealer.seal(TOPIC, &payload, false))
        .collect::<Result<_, _>>()?;
    let (first, second) = sealed.split_at(warm + count);
    let mut it = first.iter();
    let open_per_s = rate(warm, count, || {
        black_box(opener.open(TOPIC, it.next().unwrap()).unwrap());
    });
    let mut it = second.iter();
    let open_into_per_s = rate(warm, count, || {
        black_box(
            opener
                .open_into(TOPIC, it.next().unwrap(), &Default::default(), &mut buf)
                .unwrap(),
        );
    });
    println!(
        "seal_per_s={seal_per_s:.0} open_per_s={open_per_s:.0} \
         seal_into_per_s={seal_into_per_s:.0} open_into_per_s={open_into_per_s:.0}"
    );
    Ok(())
}

/// Operations per second over `count` calls of `op`, after `warm` untimed calls.
fn rate(warm: usize, count: usize, mut op: impl FnMut()) -> f64 {
    for _ in 0..warm {
        op();
    }
    let t = Instant::now();
    for _ in 0..count {
        op();
    }
    count as f64 / t.elapsed().as_secs_f64()
}
