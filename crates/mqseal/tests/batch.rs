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

fn load(file: &str) -> serde_json::Value {
    let path = format!("{}/../../spec/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn tree_key(k: &serde_json::Value) -> TreeKey {
    let validity = mqseal::Validity::new(
        k["not_before"].as_u64().unwrap_or(0),
        k["not_after"].as_u64(),
    )
    .unwrap();
    TreeKey::from_secret(
        k["filter"].as_str().unwrap(),
        k["epoch"].as_u64().unwrap() as u32,
        bytes(&k["secret"]).try_into().unwrap(),
    )
    .unwrap()
    .with_validity(validity)
}

fn public(v: &serde_json::Value) -> mqseal::PublicIdentity {
    mqseal::PublicIdentity::from_slice(&bytes(v)).unwrap()
}

type Outcome = Result<(u64, Vec<u8>), Error>;

/// Opens `message` (with `delivery`) between two valid messages of another trusted sender,
/// once one by one and once as one batch (each valid message makes the batch path run, as
/// `open_batch` batches only two or more signatures), on two copies of `opener`. Returns both
/// outcomes, which must be identical.
fn both_paths(
    mut opener: Opener,
    topic: &str,
    message: &[u8],
    delivery: mqseal::Delivery,
) -> (Vec<Outcome>, Vec<Outcome>) {
    let honest = Identity::from_seed([0x77; 32]);
    let key = TreeKey::from_secret("batch/#", 1, [0x78; 32]).unwrap();
    opener.trust_sender(honest.public());
    opener.add_key(key.clone());
    let mut sealer = Sealer::new(honest, Profile::Signed, 0);
    sealer.add_key(key);
    let before = sealer.seal("batch/good", b"before", false).unwrap();
    let after = sealer.seal("batch/good", b"after", false).unwrap();
    let items = [
        BatchItem::live("batch/good", &before),
        BatchItem {
            topic,
            message,
            delivery,
        },
        BatchItem::live("batch/good", &after),
    ];
    let mut single = opener.clone();
    let one_by_one = items
        .iter()
        .map(|it| {
            single
                .open_delivered(it.topic, it.message, &it.delivery)
                .map(|o| (o.seq, o.payload))
        })
        .collect();
    let batched = opener
        .open_batch(&items)
        .into_iter()
        .map(|r| r.map(|o| (o.seq, o.payload)))
        .collect();
    (one_by_one, batched)
}

/// Every signature vector — each message of envelopes-negative.json (the signatures spec 7.6
/// refuses: small-order `R` in all 14 encodings, non-canonical or undecodable `R`, `S ≥ L`,
/// `S = L`, a mixed-order `R` with the wrong challenge; and every other refusal) and every
/// message of envelopes.json (including the mixed-order `R` ones, valid under the cofactored
/// equation only) — gives the same result opened one by one and in a batch next to valid
/// messages: the vector's expected error, or the vector's payload.
#[test]
fn every_vector_gives_the_same_result_one_by_one_and_batched() {
    let negative = load("envelopes-negative.json");
    let mut bad_signatures = 0;
    for v in negative["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let o = &v["opener"];
        let p = &o["policy"];
        let mut opener = Opener::with_policy(mqseal::OpenPolicy {
            max_age: p["max_age"].as_u64(),
            max_future_skew: p["max_future_skew"].as_u64().unwrap(),
            require_timestamp: p["require_timestamp"].as_bool().unwrap(),
            validity_grace: p["validity_grace"]
                .as_u64()
                .unwrap_or(mqseal::DEFAULT_VALIDITY_GRACE),
        });
        for t in o["trusted"].as_array().unwrap() {
            opener.trust_sender(public(t));
        }
        for g in o["group_mac"].as_array().unwrap() {
            opener
                .trust_group_mac_sender(public(&g["sender"]), g["filter"].as_str().unwrap())
                .unwrap();
        }
        for k in o["keys"].as_array().unwrap() {
            opener.add_key(tree_key(k));
        }
        for r in o["retired"].as_array().into_iter().flatten() {
            opener.retire_key(
                r["filter"].as_str().unwrap(),
                r["epoch"].as_u64().unwrap() as u32,
                r["not_after"].as_u64().unwrap(),
            );
        }
        let d = &v["delivery"];
        let now = d["now"].as_u64();
        for pre in v["preload"].as_array().unwrap() {
            let live = mqseal::Delivery {
                now,
                ..Default::default()
            };
            opener
                .open_delivered(
                    pre["topic"].as_str().unwrap(),
                    &bytes(&pre["sealed"]),
                    &live,
                )
                .unwrap();
        }
        let delivery = mqseal::Delivery {
            retained: d["retained"].as_bool().unwrap(),
            duplicate: d["duplicate"].as_bool().unwrap(),
            now,
        };
        let message = bytes(&v["sealed"]);
        let (single, batched) =
            both_paths(opener, v["topic"].as_str().unwrap(), &message, delivery);
        assert_eq!(single, batched, "{name}");
        assert_eq!(
            batched[1].as_ref().unwrap_err().name(),
            v["error"].as_str().unwrap(),
            "{name}"
        );
        assert!(batched[0].is_ok() && batched[2].is_ok(), "{name}");
        bad_signatures += usize::from(v["error"] == "bad_signature");
    }
    assert!(
        bad_signatures >= 22,
        "only {bad_signatures} bad_signature vectors"
    );

    let positive = load("envelopes.json");
    let signed = |v: &serde_json::Value| v["profile"].as_str().is_none_or(|p| p == "signed");
    let mut mixed = 0;
    for v in positive["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .chain(positive["mixed_order_r"].as_array().unwrap())
    {
        let name = v["name"].as_str().unwrap();
        let mut opener = Opener::new();
        if signed(v) {
            opener.trust_sender(public(&v["sender_public"]));
        } else {
            opener
                .trust_group_mac_sender(public(&v["sender_public"]), "#")
                .unwrap();
        }
        opener.add_key(tree_key(&v["opener_key"]));
        let delivery = mqseal::Delivery {
            retained: v["retain"].as_bool().unwrap_or(false),
            ..Default::default()
        };
        let message = bytes(&v["sealed"]);
        let (single, batched) =
            both_paths(opener, v["topic"].as_str().unwrap(), &message, delivery);
        assert_eq!(single, batched, "{name}");
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(batched[1], Ok((seq, bytes(&v["payload"]))), "{name}");
        mixed += usize::from(v.get("torsion_order").is_some());
    }
    assert_eq!(mixed, 3);
}

/// A batch of messages whose signatures all have a mixed-order `R` (valid under the
/// cofactored equation only), from one sender, with one bad signature among them: the batch
/// fails, and the fallback accepts every valid one and names the bad one, exactly as opening
/// them one by one.
#[test]
fn a_batch_of_mixed_order_signatures_agrees_with_single_opening() {
    let file = load("envelopes.json");
    let vectors = file["mixed_order_r"].as_array().unwrap();
    let v = &vectors[0];
    let mut opener = Opener::new();
    opener.trust_sender(public(&v["sender_public"]));
    opener.add_key(tree_key(&v["opener_key"]));
    let mut messages: Vec<(String, Vec<u8>)> = vectors
        .iter()
        .map(|v| {
            (
                v["topic"].as_str().unwrap().to_string(),
                bytes(&v["sealed"]),
            )
        })
        .collect();
    let items: Vec<BatchItem> = messages
        .iter()
        .map(|(t, m)| BatchItem::live(t, m))
        .collect();
    let mut batched = opener.clone();
    assert!(batched.open_batch(&items).iter().all(Result::is_ok));
    // One S changed: only that message fails, in both paths.
    let last = messages[1].1.len() - 1;
    messages[1].1[last] ^= 0x01;
    let items: Vec<BatchItem> = messages
        .iter()
        .map(|(t, m)| BatchItem::live(t, m))
        .collect();
    let mut single = opener.clone();
    let expected: Vec<Outcome> = items
        .iter()
        .map(|it| {
            single
                .open(it.topic, it.message)
                .map(|o| (o.seq, o.payload))
        })
        .collect();
    let got: Vec<Outcome> = opener
        .open_batch(&items)
        .into_iter()
        .map(|r| r.map(|o| (o.seq, o.payload)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got[1], Err(Error::BadSignature));
    assert!(got[0].is_ok() && got[2].is_ok());
}
