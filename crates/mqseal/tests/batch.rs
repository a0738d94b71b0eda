//! `Opener::open_batch` gives exactly the results of opening the same messages one by one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mqseal::{BatchItem, Error, Identity, Opener, Profile, Sealer, TreeKey};
use proptest::prelude::*;

fn setup() -> (Vec<Sealer>, Opener) {
    let key = TreeKey::from_secret("s/#", 1, [9; 32]).unwrap();
    let mut opener = Opener::new();
    opener.add_key(key.clone());
    let sealers = (0..3u8)
        .map(|i| {
            let id = Identity::from_seed([i + 1; 32]);
            // The third sender is a stranger; the second uses group-mac.
            if i == 0 {
                opener.trust_sender(id.public());
            } else if i == 1 {
                opener.trust_group_mac_sender(id.public(), "s/#").unwrap();
            }
            let profile = if i == 1 {
                Profile::GroupMac
            } else {
                Profile::Signed
            };
            let mut s = Sealer::new(id, profile, 0);
            s.add_key(key.clone());
            s
        })
        .collect();
    (sealers, opener)
}

/// Each op: (which sealer, topic index, tamper?, repeat an earlier message?)
fn messages(ops: &[(u8, u8, bool, bool)]) -> (Vec<(String, Vec<u8>)>, Opener) {
    let (mut sealers, opener) = setup();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for &(who, topic, tamper, repeat) in ops {
        if repeat && !out.is_empty() {
            let again = out[usize::from(who) % out.len()].clone();
            out.push(again);
            continue;
        }
        let topic = format!("s/{}", topic % 3);
        let mut m = sealers[usize::from(who % 3)]
            .seal(&topic, b"payload", false)
            .unwrap();
        if tamper {
            let i = m.len() / 2;
            m[i] ^= 0x20;
        }
        out.push((topic, m));
    }
    (out, opener)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn batch_equals_one_by_one(ops in proptest::collection::vec((0u8..3, 0u8..3, proptest::bool::weighted(0.1), proptest::bool::weighted(0.1)), 0..40)) {
        let (msgs, opener) = messages(&ops);
        let mut single = opener.clone();
        let mut batched = opener;
        let expected: Vec<Result<(u64, Vec<u8>), Error>> = msgs
            .iter()
            .map(|(t, m)| single.open(t, m).map(|o| (o.seq, o.payload)))
            .collect();
        let items: Vec<BatchItem> = msgs.iter().map(|(t, m)| BatchItem::live(t, m)).collect();
        let got: Vec<Result<(u64, Vec<u8>), Error>> = batched
            .open_batch(&items)
            .into_iter()
            .map(|r| r.map(|o| (o.seq, o.payload)))
            .collect();
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_bad_signature_in_a_large_batch_is_pinpointed() {
    let (mut sealers, mut opener) = setup();
    let mut msgs: Vec<Vec<u8>> = (0..64)
        .map(|_| sealers[0].seal("s/a", b"x", false).unwrap())
        .collect();
    msgs[17][12] ^= 1;
    let n = msgs[40].len();
    msgs[40].truncate(n - 1);
    let items: Vec<BatchItem> = msgs.iter().map(|m| BatchItem::live("s/a", m)).collect();
    let results = opener.open_batch(&items);
    for (i, r) in results.iter().enumerate() {
        match i {
            17 | 40 => assert_eq!(r.as_ref().unwrap_err(), &Error::BadSignature, "{i}"),
            _ => assert!(r.is_ok(), "{i}: {r:?}"),
        }
    }
    // The same messages again: all replays (the bad ones still bad).
    let again = opener.open_batch(&items);
    assert!(again.iter().enumerate().all(|(i, r)| match i {
        17 | 40 => r.as_ref().unwrap_err() == &Error::BadSignature,
        _ => r.as_ref().unwrap_err() == &Error::Replay,
    }));
}

/// Every signature the strict rules refuse (spec 7.6: small-order `R`, `S ≥ L`, `S = L`, and
/// every other `bad_signature` vector) is refused in a batch too, next to a valid message that
/// makes the batch path run: a batch accepts exactly what one-by-one opening accepts.
#[test]
fn batches_refuse_every_signature_the_strict_rules_refuse() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/vectors/envelopes-negative.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hex32 = |v: &serde_json::Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let mut tried = 0;
    for v in file["vectors"].as_array().unwrap() {
        if v["error"] != "bad_signature" || !v["preload"].as_array().unwrap().is_empty() {
            continue;
        }
        let o = &v["opener"];
        let mut opener = Opener::new();
        for t in o["trusted"].as_array().unwrap() {
            let bytes: [u8; 64] = hex::decode(t.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            opener.trust_sender(mqseal::PublicIdentity::from_bytes(&bytes).unwrap());
        }
        let k = &o["keys"][0];
        let key = TreeKey::from_secret(
            k["filter"].as_str().unwrap(),
            k["epoch"].as_u64().unwrap() as u32,
            hex32(&k["secret"]),
        )
        .unwrap();
        opener.add_key(key.clone());
        let honest = Identity::from_seed([0x77; 32]);
        opener.trust_sender(honest.public());
        let mut sealer = Sealer::new(honest, Profile::Signed, 0);
        sealer.add_key(key);
        let topic = v["topic"].as_str().unwrap();
        let good = sealer.seal(topic, b"fine", false).unwrap();
        let bad = hex::decode(v["sealed"].as_str().unwrap()).unwrap();
        let items = [BatchItem::live(topic, &bad), BatchItem::live(topic, &good)];
        let results = opener.open_batch(&items);
        assert_eq!(
            results[0].as_ref().unwrap_err(),
            &Error::BadSignature,
            "{}",
            v["name"]
        );
        assert_eq!(
            results[1].as_ref().unwrap().payload,
            b"fine",
            "{}",
            v["name"]
        );
        tried += 1;
    }
    assert!(tried >= 8, "only {tried} bad_signature vectors");
}
