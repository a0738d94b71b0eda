//! Seal and open next to the raw primitives they are built from, measured in the same run, with
//! the ratios `seal / (sign + aead)` and `open / (verify + aead)` printed at the end.
//!
//! ```sh
//! cargo bench -p mqseal --bench seal_open            # full run
//! cargo bench -p mqseal --bench seal_open -- --quick # faster, noisier
//! ```
//!
//! Criterion measures one benchmark after another, minutes apart, so on a shared machine its
//! medians can come from different load levels. The run therefore ends with *paired* ratios:
//! the primitives and seal/open alternate in short bursts, round after round, and the ratio of
//! each round is taken before the median; slow drifts of the machine's load hit both sides of
//! a ratio alike. The targets are judged on these. Batch opening is paired the same way: each
//! round opens 64 fresh messages one by one and 64 as a batch (one sender, then 64 senders).
//! `primitive/ed25519_verify` is mqseal's verification (spec 7.6), the floor of the open ratios;
//! `primitive/ed25519_verify_strict` is ed25519-dalek's, for comparison.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};
use mqseal::{BatchItem, Identity, Opener, Profile, PublicIdentity, Sealer, TreeKey};
use sha2::{Digest, Sha512};

const SIZES: [usize; 4] = [16, 64, 1024, 64 * 1024];
/// Extra sizes for ChaCha20-Poly1305 alone: where poly1305's AVX2 backend starts to pay off.
const AEAD_ONLY_SIZES: [usize; 2] = [4096, 16 * 1024];
const TOPIC: &str = "plant/7/line/3/temp";

fn parties(profile: Profile) -> (Sealer, Opener) {
    let sender = Identity::from_seed([1; 32]);
    let key = TreeKey::from_secret("plant/#", 1, [2; 32]).unwrap();
    let mut sealer = Sealer::new(sender.clone(), profile, 0);
    sealer.add_key(key.derive("plant/7/#").unwrap());
    let mut opener = Opener::new();
    opener.trust_group_mac_sender(sender.public(), "#").unwrap();
    opener.add_key(key);
    (sealer, opener)
}

/// An Ed25519 key pair: ed25519-dalek's signing key and the same key as mqseal verifies it.
fn ed25519_pair() -> (SigningKey, PublicIdentity) {
    let seed = [7; 32];
    let (ed_secret, _) = mqseal::vectors_support::identity_secrets(&seed);
    (
        SigningKey::from_bytes(&ed_secret),
        Identity::from_seed(seed).public(),
    )
}

/// The verification `open` performs: mqseal's rule (spec 7.6, cofactored).
fn verify(key: &PublicIdentity, digest: &[u8; 64], signature: &[u8; 64]) {
    assert!(mqseal::vectors_support::ed25519_verify(
        key,
        black_box(digest),
        signature
    ));
}

fn primitives(c: &mut Criterion) {
    let (signing, public) = ed25519_pair();
    let verifying = signing.verifying_key();
    let digest = [9u8; 64];
    let signature = signing.sign(&digest);
    let mut g = c.benchmark_group("primitive");
    g.bench_function("ed25519_sign", |b| {
        b.iter(|| signing.sign(black_box(&digest)))
    });
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| verify(&public, &digest, &signature.to_bytes()))
    });
    // ed25519-dalek's cofactorless strict verification, for comparison.
    g.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&digest), &signature)
                .unwrap()
        })
    });
    let cipher = ChaCha20Poly1305::new(&Key::from([3u8; 32]));
    for size in SIZES.into_iter().chain(AEAD_ONLY_SIZES) {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size];
        g.bench_with_input(BenchmarkId::new("chacha20poly1305", size), &size, |b, _| {
            b.iter(|| {
                cipher
                    .encrypt_inout_detached(
                        &Nonce::from([0u8; 12]),
                        b"aad",
                        buf.as_mut_slice().into(),
                    )
                    .unwrap()
            })
        });
        if AEAD_ONLY_SIZES.contains(&size) {
            continue;
        }
        let data = vec![0u8; size];
        g.bench_with_input(BenchmarkId::new("sha512", size), &size, |b, _| {
            b.iter(|| Sha512::digest(black_box(&data)))
        });
    }
    g.finish();
}

fn seal_open(c: &mut Criterion) {
    for profile in [Profile::Signed, Profile::GroupMac] {
        let mut g = c.benchmark_group(format!("mqseal_{}", profile.name()));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let payload = vec![0x42u8; size];
            let (mut sealer, mut opener) = parties(profile);
            g.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
                b.iter(|| sealer.seal(TOPIC, black_box(&payload), false).unwrap())
            });
            let mut out = vec![0u8; size + mqseal::MAX_OVERHEAD_SIGNED];
            g.bench_with_input(BenchmarkId::new("seal_into", size), &size, |b, _| {
                b.iter(|| {
                    sealer
                        .seal_into(TOPIC, black_box(&payload), &Default::default(), &mut out)
                        .unwrap()
                })
            });
            g.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
                b.iter_batched(
                    || sealer.seal(TOPIC, &payload, false).unwrap(),
                    |m| opener.open(TOPIC, &m).unwrap(),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

const BATCH: usize = 64;

/// `n` signed sealers and an opener trusting them all.
fn senders(n: usize) -> (Vec<Sealer>, Opener) {
    let key = TreeKey::from_secret("plant/#", 1, [2; 32]).unwrap();
    let mut opener = Opener::new();
    opener.add_key(key.clone());
    let sealers = (0..n)
        .map(|i| {
            let sender = Identity::from_seed([i as u8 + 10; 32]);
            opener.trust_sender(sender.public());
            let mut s = Sealer::new(sender, Profile::Signed, 0);
            s.add_key(key.clone());
            s
        })
        .collect();
    (sealers, opener)
}

/// [`BATCH`] fresh 64-byte signed messages, from the sealers in turn.
fn fresh_batch(sealers: &mut [Sealer]) -> Vec<Vec<u8>> {
    let n = sealers.len();
    (0..BATCH)
        .map(|i| sealers[i % n].seal(TOPIC, &[0x42; 64], false).unwrap())
        .collect()
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("mqseal_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut sealer, mut opener) = parties(Profile::Signed);
    let mut fresh = move || -> Vec<Vec<u8>> {
        (0..BATCH)
            .map(|_| sealer.seal(TOPIC, &[0x42; 64], false).unwrap())
            .collect()
    };
    let mut single_opener = opener.clone();
    g.bench_function("open_one_by_one_64x64B", |b| {
        b.iter_batched(
            &mut fresh,
            |msgs| {
                for m in &msgs {
                    single_opener.open(TOPIC, m).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("open_batch_64x64B", |b| {
        b.iter_batched(
            &mut fresh,
            |msgs| {
                let items: Vec<BatchItem> =
                    msgs.iter().map(|m| BatchItem::live(TOPIC, m)).collect();
                assert!(opener.open_batch(&items).iter().all(Result::is_ok));
            },
            BatchSize::SmallInput,
        )
    });
    // The same with every message from another sender: no two signatures share a key term.
    let (mut sealers, mut opener) = senders(BATCH);
    let mut fresh = move || fresh_batch(&mut sealers);
    let mut single_opener = opener.clone();
    g.bench_function("open_one_by_one_64_senders", |b| {
        b.iter_batched(
            &mut fresh,
            |msgs| {
                for m in &msgs {
                    single_opener.open(TOPIC, m).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("open_batch_64_senders", |b| {
        b.iter_batched(
            &mut fresh,
            |msgs| {
                let items: Vec<BatchItem> =
                    msgs.iter().map(|m| BatchItem::live(TOPIC, m)).collect();
                assert!(opener.open_batch(&items).iter().all(Result::is_ok));
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Median in nanoseconds of a finished benchmark, read from criterion's output.
fn median_ns(id: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let text =
        std::fs::read_to_string(dir.join("criterion").join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report() {
    let sign = median_ns("primitive/ed25519_sign");
    let verify = median_ns("primitive/ed25519_verify");
    println!(
        "\npoly1305 backend: {}",
        if cfg!(poly1305_backend = "soft") {
            "soft (--cfg poly1305_backend=\"soft\", see .cargo/config.toml)"
        } else {
            "autodetected (AVX2 when the CPU has it)"
        }
    );
    println!("ratios (medians of this run):");
    println!(
        "{:<10} {:>7} {:>11} {:>11} {:>12} {:>12}",
        "profile", "bytes", "seal ns", "open ns", "seal ratio", "open ratio"
    );
    for profile in [Profile::Signed, Profile::GroupMac] {
        for size in SIZES {
            let aead = median_ns(&format!("primitive/chacha20poly1305/{size}"));
            let seal = median_ns(&format!("mqseal_{}/seal/{size}", profile.name()));
            let open = median_ns(&format!("mqseal_{}/open/{size}", profile.name()));
            let (Some(aead), Some(seal), Some(open), Some(sign), Some(verify)) =
                (aead, seal, open, sign, verify)
            else {
                continue;
            };
            let (seal_floor, open_floor) = match profile {
                Profile::Signed => (sign + aead, verify + aead),
                Profile::GroupMac => (aead, aead),
            };
            println!(
                "{:<10} {:>7} {:>11.0} {:>11.0} {:>12.3} {:>12.3}",
                profile.name(),
                size,
                seal,
                open,
                seal / seal_floor,
                open / open_floor
            );
        }
    }
    println!(
        "signed: seal / (sign + aead), open / (verify + aead); group-mac: seal / aead, open / aead"
    );
    for (what, single, batched) in [
        ("one sender", "open_one_by_one_64x64B", "open_batch_64x64B"),
        (
            "64 senders",
            "open_one_by_one_64_senders",
            "open_batch_64_senders",
        ),
    ] {
        if let (Some(single), Some(batched)) = (
            median_ns(&format!("mqseal_batch/{single}")),
            median_ns(&format!("mqseal_batch/{batched}")),
        ) {
            println!(
                "batch opening, {BATCH} x 64 B signed, {what}: {:.0} msg/s one by one, {:.0} msg/s batched, speed-up {:.2}x",
                BATCH as f64 * 1e9 / single,
                BATCH as f64 * 1e9 / batched,
                single / batched
            );
        }
    }
}

/// Length of one burst of one operation in the paired measurement.
const BURST: Duration = Duration::from_millis(2);
/// Rounds of the paired measurement (odd: a true median).
const ROUNDS: usize = 31;

/// Nanoseconds per call of `op`, called for about [`BURST`].
fn burst(mut op: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < BURST {
        for _ in 0..8 {
            op();
        }
        n += 8;
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Nanoseconds per call of `op` over every item.
fn burst_over<T>(items: &[T], mut op: impl FnMut(&T)) -> f64 {
    let t = Instant::now();
    for item in items {
        op(item);
    }
    t.elapsed().as_nanos() as f64 / items.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seal and open against the primitives, alternated in short bursts (see the module docs).
fn paired_ratios() {
    let (signing, public) = ed25519_pair();
    let digest = [9u8; 64];
    let signature = signing.sign(&digest).to_bytes();
    let cipher = ChaCha20Poly1305::new(&Key::from([3u8; 32]));
    println!(
        "\npaired ratios ({ROUNDS} rounds of {} ms bursts per operation; medians of the per-round ratios):",
        BURST.as_millis()
    );
    println!(
        "{:>7} {:>13} {:>13} {:>16} {:>16} {:>18} {:>18}",
        "bytes",
        "signed seal",
        "signed open",
        "group-mac seal",
        "group-mac open",
        "seal (+sha512)",
        "open (+sha512)"
    );
    for size in SIZES {
        let payload = vec![0x42u8; size];
        let mut buf = vec![0u8; size];
        let data = vec![0u8; size];
        let (mut signed, mut signed_opener) = parties(Profile::Signed);
        let (mut group, mut group_opener) = parties(Profile::GroupMac);
        let mut ratios: [Vec<f64>; 6] = Default::default();
        for _ in 0..ROUNDS {
            let sign = burst(|| {
                black_box(signing.sign(black_box(&digest)));
            });
            let verify = burst(|| verify(&public, &digest, &signature));
            let aead = burst(|| {
                black_box(
                    cipher
                        .encrypt_inout_detached(
                            &Nonce::from([0u8; 12]),
                            b"aad",
                            buf.as_mut_slice().into(),
                        )
                        .unwrap(),
                );
            });
            let sha = burst(|| {
                black_box(Sha512::digest(black_box(&data)));
            });
            let seal_s = burst(|| {
                black_box(signed.seal(TOPIC, black_box(&payload), false).unwrap());
            });
            let pool: Vec<Vec<u8>> = (0..(BURST.as_nanos() as f64 / verify) as usize + 8)
                .map(|_| signed.seal(TOPIC, &payload, false).unwrap())
                .collect();
            let open_s = burst_over(&pool, |m| {
                black_box(signed_opener.open(TOPIC, m).unwrap());
            });
            let seal_g = burst(|| {
                black_box(group.seal(TOPIC, black_box(&payload), false).unwrap());
            });
            let pool: Vec<Vec<u8>> = (0..(BURST.as_nanos() as f64 / seal_g) as usize + 8)
                .map(|_| group.seal(TOPIC, &payload, false).unwrap())
                .collect();
            let open_g = burst_over(&pool, |m| {
                black_box(group_opener.open(TOPIC, m).unwrap());
            });
            ratios[0].push(seal_s / (sign + aead));
            ratios[1].push(open_s / (verify + aead));
            ratios[2].push(seal_g / aead);
            ratios[3].push(open_g / aead);
            ratios[4].push(seal_s / (sign + aead + sha));
            ratios[5].push(open_s / (verify + aead + sha));
        }
        let [a, b, c, d, e, f] = ratios.map(median);
        println!("{size:>7} {a:>13.3} {b:>13.3} {c:>16.3} {d:>16.3} {e:>18.3} {f:>18.3}");
    }
    println!(
        "signed: seal / (sign + aead), open / (verify + aead); group-mac: seal / aead, open / aead \
         (the AEAD of that size with a 3-byte AAD); (+sha512): signed, with SHA-512 of the \
         payload size in the floor too (the signature covers a SHA-512 transcript of the message)"
    );
    println!("target (64 B, signed): both ratios <= 1.15");
}

/// `open_batch` against `open` one by one, alternated round after round on fresh messages (see
/// the module docs): the speed-up of each round is taken before the median.
fn paired_batch() {
    println!(
        "\npaired batch opening ({ROUNDS} rounds of {BATCH} x 64 B signed messages each way; medians):"
    );
    for (what, n) in [("one sender", 1), ("64 senders", BATCH)] {
        let (mut sealers, opener) = senders(n);
        let mut single = opener.clone();
        let mut batched = opener;
        let (mut ratios, mut one_rates, mut batch_rates) = (vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            let for_single = fresh_batch(&mut sealers);
            let for_batch = fresh_batch(&mut sealers);
            let mut time_single = || {
                let t = Instant::now();
                for m in &for_single {
                    black_box(single.open(TOPIC, m).unwrap());
                }
                t.elapsed().as_secs_f64()
            };
            let mut time_batch = || {
                let t = Instant::now();
                let items: Vec<BatchItem> = for_batch
                    .iter()
                    .map(|m| BatchItem::live(TOPIC, m))
                    .collect();
                assert!(batched.open_batch(&items).iter().all(Result::is_ok));
                t.elapsed().as_secs_f64()
            };
            // Alternate which goes first.
            let (one, batch) = if round % 2 == 0 {
                let one = time_single();
                (one, time_batch())
            } else {
                let batch = time_batch();
                (time_single(), batch)
            };
            ratios.push(one / batch);
            one_rates.push(BATCH as f64 / one);
            batch_rates.push(BATCH as f64 / batch);
        }
        println!(
            "{what:>10}: {:.0} msg/s one by one, {:.0} msg/s batched, speed-up {:.2}x",
            median(one_rates),
            median(batch_rates),
            median(ratios)
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    primitives(&mut c);
    seal_open(&mut c);
    batch(&mut c);
    c.final_summary();
    report();
    // Not when cargo runs the bench as a test (`cargo test --benches`) or lists it.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        paired_ratios();
        paired_batch();
    }
}
