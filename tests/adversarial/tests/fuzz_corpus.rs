//! Replays the committed fuzz seed corpus (`tests/fuzz/corpus/<target>/`) through the same bodies
//! the cargo-fuzz targets run, so every `cargo test` exercises them on stable Rust.
//!
//! The seeds are derived from `spec/vectors/` and from freshly written keystore files; regenerate
//! them with `MQSEAL_WRITE_CORPUS=1 cargo test -p mqseal-adversarial-tests --test fuzz_corpus`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../../fuzz/src/bodies.rs"]
mod bodies;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vectors(file: &str) -> Value {
    let text = std::fs::read_to_string(root().join("spec/vectors").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_field(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Seeds per target: name → bytes.
fn seeds() -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let mut out: BTreeMap<&'static str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let env = out.entry("open_envelope").or_default();
    for (i, s) in bodies::envelope_seeds().into_iter().enumerate() {
        env.push((format!("setup-{i}"), s));
    }
    for v in vectors("envelopes.json")["vectors"].as_array().unwrap() {
        let mut seed = vec![0x10];
        seed.extend(hex_field(&v["sealed"]));
        env.push((format!("vector-{}", v["name"].as_str().unwrap()), seed));
    }
    for v in vectors("envelopes-negative.json")["vectors"]
        .as_array()
        .unwrap()
    {
        let mut seed = vec![0x10];
        seed.extend(hex_field(&v["sealed"]));
        env.push((format!("negative-{}", v["name"].as_str().unwrap()), seed));
    }
    let grants = out.entry("grant").or_default();
    let g = vectors("grants.json");
    for (i, v) in g["positive"].as_array().unwrap().iter().enumerate() {
        grants.push((format!("positive-{i}"), hex_field(&v["grant"])));
    }
    for v in g["negative"].as_array().unwrap() {
        grants.push((
            format!("negative-{}", v["name"].as_str().unwrap()),
            hex_field(&v["grant"]),
        ));
    }
    let (issuer, receiver, key) = bodies::setup();
    let own = mqseal::Grant::issue_with_ikm(&issuer, &receiver.public(), &key, &[7; 32]).unwrap();
    grants.push(("setup".into(), own.as_bytes().to_vec()));

    // Keystore: real files written by a real store, each prefixed with its parser selector.
    let ks = out.entry("keystore").or_default();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = mqseal_store::Store::create(&store_dir, "fuzz").unwrap();
    let (sender, _, _) = bodies::setup();
    let roles = mqseal_store::Roles::parse("sender,issuer").unwrap();
    store.trust("sensor", &sender.public(), roles).unwrap();
    store.create_key("plant/#", 1_790_000_000).unwrap();
    store.issue_grant("plant/#", "sensor").unwrap();
    {
        let mut sealer = store.sealer(mqseal::Profile::Signed).unwrap();
        let sealed = sealer.seal("plant/1", b"x", false).unwrap();
        let mut opener = store.opener(mqseal::OpenPolicy::default()).unwrap();
        let _ = opener.open("plant/1", &sealed);
    }
    let files: [(u8, &str); 8] = [
        (0, "identity.key"),
        (1, "identity.pub"),
        (2, "trusted"),
        (3, "keys"),
        (4, "issued"),
        (5, "state/seq"),
        (6, "state/replay.snap"),
        (7, "state/replay.log"),
    ];
    for (selector, name) in files {
        if let Ok(bytes) = std::fs::read(store_dir.join(name)) {
            let mut seed = vec![selector];
            seed.extend(bytes);
            ks.push((name.replace('/', "-"), seed));
        }
    }
    out
}

#[test]
fn corpus_replays_without_panics() {
    let corpus = root().join("tests/fuzz/corpus");
    if std::env::var_os("MQSEAL_WRITE_CORPUS").is_some() {
        for (target, entries) in seeds() {
            let dir = corpus.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in entries {
                std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
            }
        }
    }
    let mut counts = BTreeMap::new();
    for (target, body) in [
        ("open_envelope", bodies::open_envelope as fn(&[u8])),
        ("grant", bodies::grant),
        ("keystore", bodies::keystore),
    ] {
        let dir = corpus.join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            body(&bytes);
            // Every truncation of a seed too: the cheapest mutations.
            for cut in 0..bytes.len().min(200) {
                body(&bytes[..cut]);
            }
            n += 1;
        }
        assert!(n > 0, "empty corpus for {target}");
        counts.insert(target, n);
    }
    println!("fuzz corpus replayed: {counts:?}");
}

#[test]
fn setup_seeds_really_open() {
    // The seeds must reach the deep end of the opener (accepted), or fuzzing would only ever
    // exercise the parser.
    let (sender, _, key) = bodies::setup();
    let mut opener = mqseal::Opener::new();
    opener.trust_group_mac_sender(sender.public(), "#").unwrap();
    opener.add_key(key);
    for seed in bodies::envelope_seeds() {
        let topic = bodies::TOPICS[usize::from(seed[0] & 3)];
        let delivery = mqseal::Delivery {
            retained: seed[0] & 4 != 0,
            ..mqseal::Delivery::default()
        };
        let result = opener.open_delivered(topic, &seed[1..], &delivery);
        assert!(result.is_ok(), "seed on {topic}: {result:?}");
    }
}
